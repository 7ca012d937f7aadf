// Package peers starts real receivers for tests: syslog-ng reading
// newline-delimited JSON on TCP (as Logstash's tcp input with json_lines
// does) and redis-server, each on a free loopback port, stopped by the
// test's cleanup. .ci/run installs them (Debian's syslog-ng-core and
// redis-server).
package peers

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// FreePort returns a loopback address nothing listens on right now.
func FreePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func need(t testing.TB, bin, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(bin)
	if err != nil {
		for _, d := range []string{"/usr/sbin", "/usr/bin", "/sbin"} {
			if _, err := os.Stat(filepath.Join(d, bin)); err == nil {
				return filepath.Join(d, bin)
			}
		}
		t.Fatalf("%s is not installed: this test runs against the real thing; apt-get install %s (.ci/run does)", bin, pkg)
	}
	return p
}

// hangLimit bounds the waits for a peer to start or stop: only a hang
// takes this long, however busy the machine.
const hangLimit = time.Minute

// waitListening waits until addr accepts connections.
func waitListening(t testing.TB, addr string, cmd *exec.Cmd) {
	t.Helper()
	deadline := time.Now().Add(hangLimit)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if cmd.ProcessState != nil {
			break
		}
		time.Sleep(30 * time.Millisecond)
	}
	t.Fatalf("%s did not start listening on %s in %v", cmd.Path, addr, hangLimit)
}

func stop(cmd *exec.Cmd) {
	if cmd.Process == nil {
		return
	}
	cmd.Process.Signal(unix.SIGTERM)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(hangLimit):
		cmd.Process.Kill()
		<-done
	}
}

// SyslogNG is a syslog-ng that parses every line it receives on Addr as
// JSON (json-parser: a line that is not a JSON object is dropped) and writes
// its log.offset and message fields to a file.
type SyslogNG struct {
	Addr string
	Out  string
	cmd  *exec.Cmd
}

// StartSyslogNG starts syslog-ng with a network() TCP source
// (flags(no-parse)), json-parser() and a file destination, with
// flow-control so that it never drops what it read.
func StartSyslogNG(t testing.TB) *SyslogNG { return startSyslogNG(t, "", "") }

// StartSyslogNGTLS is StartSyslogNG with a TLS source using the server
// certificate and key files (client certificates not required).
func StartSyslogNGTLS(t testing.TB, cert, key string) *SyslogNG { return startSyslogNG(t, cert, key) }

func startSyslogNG(t testing.TB, cert, key string) *SyslogNG {
	t.Helper()
	bin := need(t, "syslog-ng", "syslog-ng-core")
	dir := t.TempDir()
	addr := FreePort(t)
	_, port, _ := net.SplitHostPort(addr)
	s := &SyslogNG{Addr: addr, Out: filepath.Join(dir, "out.txt")}
	transport := `transport("tcp")`
	if cert != "" {
		transport = fmt.Sprintf(`transport("tls") tls(key-file(%q) cert-file(%q) peer-verify(optional-untrusted))`, key, cert)
	}
	conf := fmt.Sprintf(`@version: 3.38
options { stats_freq(0); threaded(yes); };
source s_net { network(ip("127.0.0.1") port(%s) `+transport+` flags(no-parse) log-msg-size(1048576) max-connections(16) log-iw-size(200000)); };
parser p_json { json-parser(prefix(".json.")); };
destination d_file { file("%s" template("${.json.log.offset} ${.json.message}\n") flush-lines(10000)); };
log { source(s_net); parser(p_json); destination(d_file); flags(flow-control); };
`, port, s.Out)
	cf := filepath.Join(dir, "syslog-ng.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	s.cmd = exec.Command(bin, "-F", "-f", cf, "--persist-file="+filepath.Join(dir, "persist"),
		"--pidfile="+filepath.Join(dir, "pid"), "--control="+filepath.Join(dir, "ctl"), "--no-caps")
	s.cmd.Stdout, s.cmd.Stderr = os.Stderr, os.Stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stop(s.cmd) })
	waitListening(t, addr, s.cmd)
	return s
}

// Lines returns what syslog-ng wrote so far, one "OFFSET MESSAGE" per event.
func (s *SyslogNG) Lines() []string {
	f, err := os.Open(s.Out)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

// Redis is a redis-server on a loopback port, without persistence.
type Redis struct {
	Addr string
	cli  string
	cmd  *exec.Cmd
}

// StartRedis starts redis-server; requirepass sets a password if not "".
func StartRedis(t testing.TB, requirepass string) *Redis {
	t.Helper()
	bin := need(t, "redis-server", "redis-server")
	dir := t.TempDir()
	addr := FreePort(t)
	_, port, _ := net.SplitHostPort(addr)
	args := []string{"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir, "--daemonize", "no", "--loglevel", "warning", "--logfile", filepath.Join(dir, "redis.log")}
	if requirepass != "" {
		args = append(args, "--requirepass", requirepass)
	}
	r := &Redis{Addr: addr, cli: need(t, "redis-cli", "redis-tools")}
	r.cmd = exec.Command(bin, args...)
	r.cmd.Stdout, r.cmd.Stderr = os.Stderr, os.Stderr
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stop(r.cmd) })
	waitListening(t, addr, r.cmd)
	return r
}

// Cli runs redis-cli against the server and returns its output lines.
func (r *Redis) Cli(t testing.TB, args ...string) []string {
	t.Helper()
	host, port, _ := net.SplitHostPort(r.Addr)
	out, err := exec.Command(r.cli, append([]string{"-h", host, "-p", port, "--no-auth-warning"}, args...)...).Output()
	if err != nil {
		t.Fatalf("redis-cli %v: %v", args, err)
	}
	s := strings.TrimRight(string(out), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// LLen returns the length of a list.
func (r *Redis) LLen(t testing.TB, key string, auth ...string) int {
	t.Helper()
	args := append(append([]string{}, auth...), "LLEN", key)
	l := r.Cli(t, args...)
	if len(l) != 1 {
		t.Fatalf("LLEN: %v", l)
	}
	n, err := strconv.Atoi(l[0])
	if err != nil {
		t.Fatalf("LLEN: %v", l)
	}
	return n
}
