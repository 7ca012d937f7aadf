package peers

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// VictoriaLogsInstall is how to install VictoriaLogs, the receiver the
// elasticsearch:// output is tested and benchmarked against (scripts/test
// runs it where victoria-logs is missing).
const VictoriaLogsInstall = "go install github.com/VictoriaMetrics/VictoriaLogs/app/victoria-logs@v1.52.2"

// VictoriaLogsBinary finds victoria-logs: on PATH, or in the go command's
// bin directory (GOBIN, else GOPATH/bin, else ~/go/bin).
func VictoriaLogsBinary() (string, error) {
	if p, err := exec.LookPath("victoria-logs"); err == nil {
		return p, nil
	}
	var dirs []string
	if d := os.Getenv("GOBIN"); d != "" {
		dirs = append(dirs, d)
	}
	if out, err := exec.Command("go", "env", "GOBIN", "GOPATH").Output(); err == nil {
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				dirs = append(dirs, l, filepath.Join(l, "bin"))
			}
		}
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go", "bin"))
	}
	for _, d := range dirs {
		p := filepath.Join(d, "victoria-logs")
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", fmt.Errorf("victoria-logs is not installed (not on PATH nor in the go command's bin directory): %s (scripts/test does)", VictoriaLogsInstall)
}

// VictoriaLogs is a victoria-logs server on a loopback port, keeping its
// data in a directory of its own. It takes Elasticsearch's _bulk API at
// BulkPath.
type VictoriaLogs struct {
	Addr   string
	Dir    string
	scheme string
	user   string
	pass   string
	cmd    *exec.Cmd
	done   chan struct{}
}

// BulkPath is the path prefix of VictoriaLogs' Elasticsearch API, and
// BulkQuery the query that makes it take the events as mmaptail ships
// them: the message in "message", the time in "@timestamp".
const (
	BulkPath  = "/insert/elasticsearch"
	BulkQuery = "_msg_field=message&_time_field=@timestamp"
)

// VictoriaLogsOptions are extra settings of LaunchVictoriaLogs.
type VictoriaLogsOptions struct {
	User, Password string // HTTP basic authentication of every request
	Cert, Key      string // serve HTTPS with this certificate
}

// LaunchVictoriaLogs starts victoria-logs with its data in dir (made if
// missing) and waits until it answers. Stop stops it.
func LaunchVictoriaLogs(dir string, o VictoriaLogsOptions) (*VictoriaLogs, error) {
	bin, err := VictoriaLogsBinary()
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	v := &VictoriaLogs{Addr: addr, Dir: dir, scheme: "http", user: o.User, pass: o.Password, done: make(chan struct{})}
	args := []string{"-storageDataPath=" + filepath.Join(dir, "data"), "-httpListenAddr=" + addr,
		"-retentionPeriod=100y", "-loggerLevel=ERROR", "-search.maxQueryDuration=60s"}
	if o.User != "" {
		args = append(args, "-httpAuth.username="+o.User, "-httpAuth.password="+o.Password)
	}
	if o.Cert != "" {
		args = append(args, "-tls", "-tlsCertFile="+o.Cert, "-tlsKeyFile="+o.Key)
		v.scheme = "https"
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "victoria-logs.log"))
	if err != nil {
		return nil, err
	}
	v.cmd = exec.Command(bin, args...)
	v.cmd.Stdout, v.cmd.Stderr = logf, logf
	if err := v.cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	go func() { v.cmd.Wait(); logf.Close(); close(v.done) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return v, nil
		}
		select {
		case <-v.done:
			log, _ := os.ReadFile(filepath.Join(dir, "victoria-logs.log"))
			return nil, fmt.Errorf("victoria-logs exited before listening on %s: %s", addr, strings.TrimSpace(string(log)))
		case <-time.After(30 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			v.Stop()
			return nil, fmt.Errorf("victoria-logs did not listen on %s within a minute", addr)
		}
	}
}

// StartVictoriaLogs starts victoria-logs for a test, stopped by its
// cleanup; the test fails if it is not installed.
func StartVictoriaLogs(t testing.TB, o VictoriaLogsOptions) *VictoriaLogs {
	t.Helper()
	v, err := LaunchVictoriaLogs(t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Stop)
	return v
}

// Stop stops the server (SIGINT, then SIGKILL if it has not exited within
// hangLimit).
func (v *VictoriaLogs) Stop() {
	if v.cmd.Process == nil {
		return
	}
	select {
	case <-v.done:
		return
	default:
	}
	v.cmd.Process.Signal(os.Interrupt)
	select {
	case <-v.done:
	case <-time.After(hangLimit):
		v.cmd.Process.Kill()
		<-v.done
	}
}

// Query runs a LogsQL query over all time and returns its rows (each a
// JSON object of strings). client may be nil (plain HTTP).
func (v *VictoriaLogs) Query(client *http.Client, logsql string) ([]map[string]string, error) {
	if client == nil {
		client = http.DefaultClient
	}
	form := url.Values{"query": {logsql}}
	req, err := http.NewRequest(http.MethodPost, v.scheme+"://"+v.Addr+"/select/logsql/query", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if v.user != "" {
		req.SetBasicAuth(v.user, v.pass)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1000))
		return nil, fmt.Errorf("query %q: HTTP %d: %s", logsql, resp.StatusCode, b)
	}
	var rows []map[string]string
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var row map[string]string
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
			return nil, fmt.Errorf("query %q: row %q: %w", logsql, sc.Bytes(), err)
		}
		rows = append(rows, row)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return rows, nil
}

// ErrNotYet is returned by WaitCount while fewer rows than wanted are
// searchable.
var ErrNotYet = errors.New("not there yet")

// WaitRows queries logsql until it returns at least want rows (the server
// makes what it ingested searchable within a second or so), for at most
// a minute, and returns the rows.
func (v *VictoriaLogs) WaitRows(client *http.Client, logsql string, want int) ([]map[string]string, error) {
	deadline := time.Now().Add(60 * time.Second)
	for {
		rows, err := v.Query(client, logsql)
		if err != nil {
			return nil, err
		}
		if len(rows) >= want {
			return rows, nil
		}
		if time.Now().After(deadline) {
			return rows, fmt.Errorf("%w: %d of %d rows after a minute", ErrNotYet, len(rows), want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Pid is the server's process id.
func (v *VictoriaLogs) Pid() int { return v.cmd.Process.Pid }
