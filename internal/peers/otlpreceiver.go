package peers

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The otlp:// output's receiver in tests and benchmarks is peers/otlpreceiver
// (a module of its own, beside this repository's root): the OpenTelemetry
// Collector's OTLP receiver, writing each record it decodes as a JSON line.
// It is built with the go command on first use, into a directory under
// the system's temporary one named by the hash of its sources, so that
// later runs reuse the binary until the sources change. MMAPLOG_OTLPRECEIVER
// names a binary built already instead.

// OTLPReceiverDir returns the directory of the receiver's sources.
func OTLPReceiverDir() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("peers: cannot find the source directory")
	}
	dir := filepath.Join(filepath.Dir(file), "..", "..", "peers", "otlpreceiver")
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		return "", fmt.Errorf("peers: the OTLP receiver's sources: %w", err)
	}
	return filepath.Clean(dir), nil
}

var otlpBuild struct {
	once sync.Once
	bin  string
	err  error
}

// OTLPReceiverBinary builds the receiver (once per process; reused across
// processes while its sources are unchanged) and returns its path.
func OTLPReceiverBinary() (string, error) {
	if p := os.Getenv("MMAPLOG_OTLPRECEIVER"); p != "" {
		return p, nil
	}
	otlpBuild.once.Do(func() { otlpBuild.bin, otlpBuild.err = buildOTLPReceiver() })
	return otlpBuild.bin, otlpBuild.err
}

func buildOTLPReceiver() (string, error) {
	dir, err := OTLPReceiverDir()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, f := range []string{"go.mod", "go.sum", "main.go"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %d\n", f, len(b))
		h.Write(b)
	}
	goBin := "go"
	if p := filepath.Join(runtime.GOROOT(), "bin", "go"); fileExists(p) {
		goBin = p
	}
	ver, _ := exec.Command(goBin, "env", "GOVERSION").Output()
	h.Write(ver)
	cache := filepath.Join(os.TempDir(), "mmaplog-peers")
	if err := os.MkdirAll(cache, 0o700); err != nil {
		return "", err
	}
	bin := filepath.Join(cache, "otlpreceiver-"+hex.EncodeToString(h.Sum(nil))[:16])
	if fileExists(bin) {
		return bin, nil
	}
	tmp := fmt.Sprintf("%s.%d.tmp", bin, os.Getpid())
	cmd := exec.Command(goBin, "build", "-o", tmp, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=readonly", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("building the OTLP receiver (go build in %s): %w\n%s", dir, err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		return "", err
	}
	return bin, nil
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// OTLPReceiver is a running receiver.
type OTLPReceiver struct {
	Addr string
	Out  string // its records, one JSON line each ("" with -discard)
	cmd  *exec.Cmd
	done chan struct{}
	last string // the last line it printed (the count, with -discard)
	mu   sync.Mutex
}

// LaunchOTLPReceiver starts the receiver on a free loopback port, writing
// its records to dir/records.ndjson, with extra flags (-discard,
// -throttle N, -unavailable N, -tls-cert F -tls-key F), and waits until
// it listens. Stop stops it.
func LaunchOTLPReceiver(dir string, flags ...string) (*OTLPReceiver, error) {
	bin, err := OTLPReceiverBinary()
	if err != nil {
		return nil, err
	}
	for try := 0; ; try++ {
		r, err := launchOTLPReceiver(bin, dir, flags)
		if err == nil || try == 3 {
			return r, err
		}
	}
}

func launchOTLPReceiver(bin, dir string, flags []string) (*OTLPReceiver, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	r := &OTLPReceiver{Addr: addr, done: make(chan struct{})}
	args := append([]string{"-endpoint", addr}, flags...)
	discard := false
	for _, f := range flags {
		discard = discard || f == "-discard"
	}
	if !discard {
		r.Out = filepath.Join(dir, "records.ndjson")
		args = append(args, "-out", r.Out)
	}
	r.cmd = exec.Command(bin, args...)
	r.cmd.Stderr = os.Stderr
	stdout, err := r.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := r.cmd.Start(); err != nil {
		return nil, err
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		first := true
		for sc.Scan() {
			r.mu.Lock()
			r.last = sc.Text()
			r.mu.Unlock()
			if first && sc.Text() == "ready" {
				close(ready)
				first = false
			}
		}
		io.Copy(io.Discard, stdout)
		r.cmd.Wait()
		close(r.done)
	}()
	select {
	case <-ready:
		return r, nil
	case <-r.done:
		return nil, fmt.Errorf("the OTLP receiver exited before it listened on %s", addr)
	case <-time.After(60 * time.Second):
		r.Stop()
		return nil, fmt.Errorf("the OTLP receiver did not listen on %s within a minute", addr)
	}
}

// StartOTLPReceiver starts the receiver for a test, stopped by its
// cleanup; the test fails if it cannot be built or started.
func StartOTLPReceiver(t testing.TB, flags ...string) *OTLPReceiver {
	t.Helper()
	r, err := LaunchOTLPReceiver(t.TempDir(), flags...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Stop() })
	return r
}

// Stop stops the receiver (SIGINT, then SIGKILL if it has not exited
// within hangLimit) and returns the count it printed when run with -discard.
func (r *OTLPReceiver) Stop() int64 {
	select {
	case <-r.done:
	default:
		r.cmd.Process.Signal(os.Interrupt)
		select {
		case <-r.done:
		case <-time.After(hangLimit):
			r.cmd.Process.Kill()
			<-r.done
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	n, _ := strconv.ParseInt(strings.TrimSpace(r.last), 10, 64)
	return n
}

// Pid is the receiver's process id.
func (r *OTLPReceiver) Pid() int { return r.cmd.Process.Pid }

// OTLPRecord is a record as the receiver wrote it.
type OTLPRecord struct {
	Resource       map[string]any `json:"resource"`
	Scope          struct{ Name, Version string }
	Time           uint64            `json:"time_unix_nano"`
	ObservedTime   uint64            `json:"observed_time_unix_nano"`
	SeverityNumber int32             `json:"severity_number"`
	SeverityText   string            `json:"severity_text"`
	Body           any               `json:"body"`
	BodyType       string            `json:"body_type"`
	Attributes     map[string]any    `json:"attributes"`
	AttributeTypes map[string]string `json:"attribute_types"`
}

// Records reads the records the receiver wrote so far (whole lines only).
func (r *OTLPReceiver) Records() ([]OTLPRecord, error) {
	b, err := os.ReadFile(r.Out)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, err
	}
	if i := strings.LastIndexByte(string(b), '\n'); i >= 0 {
		b = b[:i+1]
	} else {
		b = nil
	}
	var recs []OTLPRecord
	for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if line == "" {
			continue
		}
		var rec OTLPRecord
		d := json.NewDecoder(strings.NewReader(line))
		d.UseNumber()
		if err := d.Decode(&rec); err != nil {
			return nil, fmt.Errorf("%s: %q: %w", r.Out, line, err)
		}
		recs = append(recs, rec)
	}
	return recs, nil
}

// WaitRecords reads the records until there are at least n (for at most a
// minute).
func (r *OTLPReceiver) WaitRecords(n int) ([]OTLPRecord, error) {
	deadline := time.Now().Add(60 * time.Second)
	for {
		recs, err := r.Records()
		if err != nil || len(recs) >= n {
			return recs, err
		}
		if time.Now().After(deadline) {
			return recs, fmt.Errorf("the OTLP receiver wrote %d of %d records in a minute", len(recs), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
