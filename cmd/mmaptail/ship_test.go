package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mmaplog/mmaplog/internal/peers"
	"github.com/mmaplog/mmaplog/mmaplog"
	"github.com/mmaplog/mmaplog/tail"
)

// TestMain lets the tests run this binary as mmaptail itself.
func TestMain(m *testing.M) {
	if os.Getenv("MMAPTAIL_AS_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	code := m.Run()
	removeBuilt()
	os.Exit(code)
}

// startMmaptail starts this test binary as mmaptail with args.
func startMmaptail(t *testing.T, args ...string) (*exec.Cmd, *syncBuffer, *syncBuffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "MMAPTAIL_AS_MAIN=1")
	var out, errb syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd, &out, &errb
}

// syncBuffer is a bytes.Buffer that a child's output can be copied into
// while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func writeLog(t *testing.T, dir string, from, to int) {
	t.Helper()
	w, err := mmaplog.Open(dir, &mmaplog.Options{SegmentSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for i := from; i < to; i++ {
		if i%3 == 0 {
			fmt.Fprintf(w, "plain line %d\n", i)
		} else {
			fmt.Fprintf(w, `{"level":"info","i":%d,"message":"json line %d"}`+"\n", i, i)
		}
	}
}

// TestShipCommand runs `mmaptail ship` as a process to a file, with
// metrics, stops it with SIGTERM, and checks the events, the cursor, the
// metrics and `mmaptail stat`; a second run goes on from the cursor.
func TestShipCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	out := filepath.Join(t.TempDir(), "events.ndjson")
	writeLog(t, dir, 0, 3000)
	maddr := peers.FreePort(t)
	cmd, _, stderr := startMmaptail(t, "ship", "--log", dir, "--to", "file://"+out, "--metrics", maddr, "--field", "service.name=checkout", "--host", "h1")
	waitLines(t, out, 3000)
	// The lines are in the file before the shipper has handled their
	// acknowledgement: the counters catch up a moment later.
	wants := []string{
		fmt.Sprintf(`mmaptail_events_shipped_total{log=%q} 3000`, dir),
		fmt.Sprintf(`mmaptail_acked_sequence{log=%q} 3000`, dir),
		fmt.Sprintf(`mmaptail_lag_records{log=%q} 0`, dir),
		fmt.Sprintf(`mmaptail_cursor_beyond_end{log=%q} 0`, dir),
		fmt.Sprintf(`mmaptail_output_connected{host=%q} 1`, "file://"+out),
		fmt.Sprintf(`mmaptail_output_events_acked_total{host=%q} 3000`, "file://"+out),
		"mmaptail_logs 1", "mmaptail_batch_latency_seconds_count"}
	var missing []string
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get("http://" + maddr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		missing = missing[:0]
		for _, want := range wants {
			if !strings.Contains(string(body), want) {
				missing = append(missing, want)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
	}
	for _, want := range missing {
		t.Errorf("metrics lack %q", want)
	}
	cmd.Process.Signal(unix.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("ship exited with %v: %s", err, stderr)
	}
	evs := readEvents(t, out)
	for i, ev := range evs {
		lg := ev["log"].(map[string]any)
		if lg["offset"].(float64) != float64(i+1) {
			t.Fatalf("event %d has log.offset %v", i, lg["offset"])
		}
		if ev["host"].(map[string]any)["name"] != "h1" || ev["service"].(map[string]any)["name"] != "checkout" || ev["agent"].(map[string]any)["type"] != "mmaptail" ||
			ev["agent"].(map[string]any)["name"] != "h1" || ev["ecs"].(map[string]any)["version"] == nil {
			t.Fatalf("event %d metadata: %v", i, ev)
		}
		if i%3 == 0 && ev["message"] != fmt.Sprintf("plain line %d", i) || i%3 != 0 && ev["i"].(float64) != float64(i) {
			t.Fatalf("event %d: %v", i, ev)
		}
	}
	// stat shows the cursor, caught up.
	code, so, se := runCLI("stat", dir)
	if code != 0 || !strings.Contains(so, "next 3001  lag 0 record(s)") || !strings.Contains(so, "records:  1 to 3000") {
		t.Fatalf("stat: %d %s %s", code, so, se)
	}
	// More records; stat shows the lag; a new shipper goes on from the cursor.
	writeLog(t, dir, 3000, 3500)
	code, so, _ = runCLI("stat", dir)
	if code != 0 || !strings.Contains(so, "lag 500 record(s)") {
		t.Fatalf("stat after 500 more: %s", so)
	}
	cmd, _, stderr = startMmaptail(t, "ship", "--log", dir, "--to", "file://"+out)
	waitLines(t, out, 3500)
	cmd.Process.Signal(unix.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("ship exited with %v: %s", err, stderr)
	}
	if evs := readEvents(t, out); len(evs) != 3500 {
		t.Fatalf("%d events after the second run, want 3500 (no duplicates after a clean stop)", len(evs))
	}
	// A cursor of another log is refused, in one line.
	other := filepath.Join(t.TempDir(), "other")
	writeLog(t, other, 0, 10)
	cur := tail.CursorPath(dir, cursorName("file://"+out))
	if _, err := tail.LoadCursor(cur); err != nil {
		t.Fatal(err)
	}
	cmd, _, stderr = startMmaptail(t, "ship", "--log", other, "--to", "file://"+out, "--cursor", cur)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(3 * time.Minute): // a hang only
		t.Fatal("ship with another log's cursor did not stop")
	}
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(stderr.String(), "another log") {
		t.Fatalf("another log's cursor: %v %s", err, stderr)
	}
	if n := strings.Count(strings.TrimSpace(stderr.String()), "\n"); n > 3 {
		t.Fatalf("error output is not short: %s", stderr)
	}
}

func waitLines(t *testing.T, path string, n int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(path)
		if bytes.Count(b, []byte("\n")) >= n {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s did not get %d lines", path, n)
}

func readEvents(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var evs []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %d: %v", len(evs)+1, err)
		}
		evs = append(evs, m)
	}
	return evs
}

// TestCatFollow: `mmaptail cat -f` prints records as they are written,
// across rotations, and exits 0 on SIGTERM.
func TestCatFollow(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	writeLog(t, dir, 0, 100)
	cmd, stdout, stderr := startMmaptail(t, "cat", "-f", dir)
	writeLog(t, dir, 100, 2000)
	deadline := time.Now().Add(3 * time.Minute)
	for strings.Count(stdout.String(), "\n") < 2000 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Signal(unix.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("cat -f: %v %s", err, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != 2000 || lines[1999] != `{"level":"info","i":1999,"message":"json line 1999"}` {
		t.Fatalf("cat -f printed %d lines, last %q", len(lines), lines[len(lines)-1])
	}
}

func TestCLIErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"ship", "--help"}, 0, ""},
		{[]string{"stat", "--help"}, 0, ""},
		{[]string{"ship"}, 2, "--log and --to are required"},
		{[]string{"ship", "--log", "/nonexistent", "--to", "ftp://x:1"}, 1, "unknown scheme"},
		{[]string{"ship", "--log", "/x", "--to", "stdout", "--field", "novalue"}, 2, "KEY=VALUE"},
		{[]string{"ship", "--log", "/x", "--to", "stdout", "--from", "middle"}, 1, "from"},
		{[]string{"stat", "/nonexistent"}, 1, "no such file"},
		{[]string{"cat", "--from", "x", "/tmp"}, 2, "--from"},
	} {
		code, _, stderr := runCLI(c.args...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", c.args, code, stderr, c.code, c.want)
		}
		if strings.Contains(stderr, "goroutine ") || strings.Contains(stderr, "panic") {
			t.Errorf("%v: a panic trace: %s", c.args, stderr)
		}
	}
}

func TestCursorName(t *testing.T) {
	for in, want := range map[string]string{
		"beats://logstash:5044":        "beats_logstash_5044",
		"redis://:pw@127.0.0.1:6379/k": "redis_127.0.0.1_6379_k",
		"file:///var/log/x.ndjson":     "var_log_x.ndjson",
		"stdout":                       "stdout",
	} {
		if got := cursorName(in); got != want {
			t.Errorf("cursorName(%q) = %q, want %q", in, got, want)
		}
	}
}
