package main

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mmaplog/mmaplog/tail"
)

// waitExit waits for a started mmaptail and returns its exit status.
func waitExit(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(3 * time.Minute):
		t.Fatalf("mmaptail %v did not exit", cmd.Args[1:])
	}
	return -1
}

func waitStderr(t *testing.T, b *syncBuffer, sub string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for !strings.Contains(b.String(), sub) {
		if time.Now().After(deadline) {
			t.Fatalf("stderr never said %q: %s", sub, b)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestShipWaitsForLog: `ship --log DIR` where DIR does not exist yet says,
// in one line, that it waits for it, and ships the log once a writer
// creates it.
func TestShipWaitsForLog(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "later")
	out := filepath.Join(t.TempDir(), "events.ndjson")
	cmd, _, stderr := startMmaptail(t, "ship", "--log", dir, "--to", "file://"+out)
	waitStderr(t, stderr, dir+" does not exist yet: waiting for it to appear")
	writeLog(t, dir, 0, 500)
	waitLines(t, out, 500)
	cmd.Process.Signal(unix.SIGTERM)
	if code := waitExit(t, cmd); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if n := strings.Count(stderr.String(), "waiting for it to appear"); n != 1 {
		t.Fatalf("the waiting message %d times: %s", n, stderr)
	}
}

// TestShipManyLogs: two --log flags, one a pattern; a directory that
// matches later is picked up; every log gets its own cursor and its own
// log.file.path.
func TestShipManyLogs(t *testing.T) {
	root := t.TempDir()
	one := filepath.Join(root, "one")
	writeLog(t, one, 0, 100)
	writeLog(t, filepath.Join(root, "apps", "a"), 0, 200)
	out := filepath.Join(t.TempDir(), "events.ndjson")
	cmd, _, stderr := startMmaptail(t, "ship", "--log", one, "--log", filepath.Join(root, "apps", "*"), "--to", "file://"+out, "--cursor-name", "many")
	waitLines(t, out, 300)
	writeLog(t, filepath.Join(root, "apps", "b"), 0, 50)
	waitLines(t, out, 350)
	cmd.Process.Signal(unix.SIGTERM)
	if code := waitExit(t, cmd); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	perLog := map[string]int{}
	for _, ev := range readEvents(t, out) {
		perLog[ev["log"].(map[string]any)["file"].(map[string]any)["path"].(string)]++
	}
	for d, n := range map[string]int{one: 100, filepath.Join(root, "apps", "a"): 200, filepath.Join(root, "apps", "b"): 50} {
		if perLog[d] != n {
			t.Errorf("%s: %d events, want %d (%v)", d, perLog[d], n, perLog)
		}
		if c, err := tail.LoadCursor(tail.CursorPath(d, "many")); err != nil || c.NextSeq != uint64(n)+1 {
			t.Errorf("%s: cursor %+v %v", d, c, err)
		}
	}
	if !strings.Contains(stderr.String(), filepath.Join(root, "apps", "b")+": picked up") {
		t.Errorf("no word of the new log: %s", stderr)
	}
}

// TestShipSecondShipper: a second `ship` on the same cursor stops with one
// line naming the first one's pid.
func TestShipSecondShipper(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	writeLog(t, dir, 0, 100)
	out := filepath.Join(t.TempDir(), "events.ndjson")
	first, _, ferr := startMmaptail(t, "ship", "--log", dir, "--to", "file://"+out)
	waitLines(t, out, 100)
	second, _, stderr := startMmaptail(t, "ship", "--log", dir, "--to", "file://"+out)
	if code := waitExit(t, second); code != 1 {
		t.Fatalf("second shipper: exit %d: %s", code, stderr)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		if strings.Contains(l, "held by") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 1 || !strings.Contains(lines[0], fmt.Sprintf("held by process %d", first.Process.Pid)) {
		t.Fatalf("second shipper's stderr: %s", stderr)
	}
	first.Process.Signal(unix.SIGTERM)
	if code := waitExit(t, first); code != 0 {
		t.Fatalf("first shipper: exit %d: %s", code, ferr)
	}
	if evs := readEvents(t, out); len(evs) != 100 {
		t.Fatalf("%d events, want 100", len(evs))
	}
}

// TestShipCLIMessages: mistakes in ship's flags get one clear line, with
// no doubled punctuation and no runtime trace; the help of ship and
// counters lists every output with its URL form.
func TestShipCLIMessages(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"ship", "--log", "/x", "--to", "beats://"}, 1, `output "beats://": no host: want beats://HOST:PORT[,HOST:PORT...]`},
		{[]string{"ship", "--log", "/x", "--to", "beats://h1:5044,h2"}, 1, `host "h2": want HOST:PORT`},
		{[]string{"ship", "--log", "/x", "--to", "kafka://b:9092"}, 1, "want kafka://BROKER:PORT[,BROKER:PORT...]/TOPIC"},
		{[]string{"ship", "--log", "/x", "--to", "stdout", "--batch", "99999999999"}, 2, "--batch 99999999999: want 1 to 65536 events"},
		{[]string{"ship", "--log", "/x", "--to", "stdout", "--window", "99999999999"}, 2, "--window 99999999999: want 1 to 1048576 events"},
		{[]string{"ship", "--log", "/x", "--to", "stdout", "--workers", "0"}, 2, "--workers 0: want 1 to 64"},
		{[]string{"ship", "--log", "/x", "--to", "stdout", "--kafka-acks", "some"}, 2, `--kafka-acks "some": want one of all, leader, none`},
		{[]string{"ship", "--log", "/x/*", "--to", "stdout", "--cursor", "/tmp/c"}, 2, "--cursor is the cursor file of a single --log DIR"},
	} {
		cmd, _, stderr := startMmaptail(t, c.args...)
		code := waitExit(t, cmd)
		msg := stderr.String()
		if code != c.code || !strings.Contains(msg, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", c.args[1:], code, msg, c.code, c.want)
		}
		for _, bad := range []string{"::", ": :", "..", ";;", "goroutine ", "panic"} {
			if strings.Contains(strings.ReplaceAll(msg, "...", ""), bad) {
				t.Errorf("%v: %q in %q", c.args[1:], bad, msg)
			}
		}
		if n := strings.Count(strings.TrimSpace(msg), "\n"); n > 1 {
			t.Errorf("%v: %d lines: %q", c.args[1:], n+1, msg)
		}
	}
	for _, name := range []string{"ship", "counters"} {
		cmd, stdout, stderr := startMmaptail(t, name, "--help")
		if code := waitExit(t, cmd); code != 0 {
			t.Fatalf("%s --help: exit %d", name, code)
		}
		help := stdout.String() + stderr.String()
		for _, form := range []string{"beats://HOST:PORT[,HOST:PORT...]", "tcp://HOST:PORT", "redis://[:PASSWORD@]HOST:PORT", "kafka://[USER:PASSWORD@]BROKER:PORT", "file://PATH", "stdout", "kafka-key", "kafka-sasl", "loadbalance", "workers", "backoff-max"} {
			if !strings.Contains(help, form) {
				t.Errorf("%s --help does not list %s", name, form)
			}
		}
	}
}
