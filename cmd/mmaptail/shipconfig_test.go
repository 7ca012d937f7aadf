package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	lumber "github.com/elastic/go-lumber/server/v2"
	"golang.org/x/sys/unix"

	"github.com/mmaplog/mmaplog/internal/peers"
	"github.com/mmaplog/mmaplog/tail"
)

func writeConfig(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestShipConfigErrors: a mistake in the file is one line on stderr naming
// the file and line, exit 1, before anything runs; the same value on the
// command line is a usage error (exit 2).
func TestShipConfigErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ship.yml")
	head := "inputs:\n  - logs: [" + filepath.Join(dir, "log") + "]\noutput:\n  to: file://" + filepath.Join(dir, "out") + "\n"
	for _, c := range []struct{ name, text, want string }{
		{"unknown output key", head + "  wokers: 2\n", path + `:5: unknown key "wokers" in output`},
		{"unknown top-level key", head + "metric: 127.0.0.1:1\n", path + `:5: unknown key "metric" at the top level`},
		{"unknown input key", "inputs:\n  - logs: /a\n    feilds: {a: b}\noutput: {to: stdout}\n", path + `:3: input 1: unknown key "feilds"`},
		{"value out of range", head + "  workers: 200\n", path + `:5: output.workers: "200": want 1 to 64`},
		{"value of the wrong kind", head + "  timeout: 30\n", path + `:5: output.timeout: "30": want a duration`},
		{"nested value refused", head + "  kafka:\n    acks: some\n", path + `:6: output.kafka.acks: "some": want one of all, leader, none`},
		{"bad URL", "inputs: [{logs: /a}]\noutput:\n  to: nope://x\n", path + `:3: output.to: output nope://x: unknown scheme "nope"`},
		{"bad top-level value", head + "batch: 0\n", path + `:5: batch: "0": want 1 to 65536 events`},
		{"bad field", head + "fields: {a: 1, a.b: 2}\n", `input 1: field "a.b": "a" is a string already`},
		{"no output", "inputs: [{logs: /a}]\n", `--to (or output.to in the file of -c) is required`},
	} {
		t.Run(c.name, func(t *testing.T) {
			writeConfig(t, path, c.text)
			code, stdout, stderr := runCLI("ship", "-c", path)
			if code == 0 || !strings.Contains(stderr, c.want) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 || stdout != "" {
				t.Fatalf("exit %d, stderr %q; want one line with %q", code, stderr, c.want)
			}
		})
	}
	// On the command line the same mistake is a usage error, without a line.
	writeConfig(t, path, head)
	if code, _, stderr := runCLI("ship", "-c", path, "--workers", "200"); code != 2 || !strings.Contains(stderr, "--workers 200: want 1 to 64") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
}

// TestShipConfigFlagsOverride: the file's inputs, fields and output are
// used, and the command line overrides them: --to, --field (key by key).
func TestShipConfigFlagsOverride(t *testing.T) {
	root := t.TempDir()
	logDir := filepath.Join(root, "log")
	writeLog(t, logDir, 0, 30)
	fileOut, flagOut := filepath.Join(root, "file.ndjson"), filepath.Join(root, "flag.ndjson")
	path := filepath.Join(root, "ship.yml")
	writeConfig(t, path, fmt.Sprintf(`inputs:
  - logs: [%q]
    fields: {service: {name: checkout}}
fields: {env: prod, team: a}
output:
  to: file://%s
  workers: 1
host: from-file
`, logDir, fileOut))
	cmd, _, stderr := startMmaptail(t, "ship", "-c", path, "--to", "file://"+flagOut, "--field", "team=b")
	waitLines(t, flagOut, 30)
	cmd.Process.Signal(unix.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("ship: %v: %s", err, stderr)
	}
	if _, err := os.Stat(fileOut); err == nil {
		t.Fatal("events went to the file's output.to, which --to overrides")
	}
	evs := readEvents(t, flagOut)
	ev := evs[0]
	if ev["env"] != "prod" || ev["team"] != "b" || ev["service"].(map[string]any)["name"] != "checkout" || ev["host"].(map[string]any)["name"] != "from-file" {
		t.Fatalf("event %v: want env prod (file), team b (--field over the file), service.name checkout (the input's), host from-file", ev)
	}
	// The cursor is named from the URL that was used.
	if _, err := tail.LoadCursor(tail.CursorPath(logDir, cursorName("file://"+flagOut))); err != nil {
		t.Fatal(err)
	}
}

// startLumber starts go-lumber's server on a loopback port, acknowledging
// every window.
func startLumber(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := lumber.NewWithListener(l)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	go func() {
		for b := range srv.ReceiveChan() {
			b.ACK()
		}
	}()
	return l.Addr().String()
}

// TestShipCheck: --check against a live go-lumber receiver (exit 0), a
// dead port (exit 1), both at once (exit 1, each host on its own), and a
// live redis-server with its password: every step printed.
func TestShipCheck(t *testing.T) {
	root := t.TempDir()
	logDir := filepath.Join(root, "apps", "a")
	writeLog(t, logDir, 0, 3)
	live, dead := startLumber(t), peers.FreePort(t)
	path := filepath.Join(root, "ship.yml")
	conf := func(to string) {
		writeConfig(t, path, fmt.Sprintf("inputs:\n  - logs: [%q]\noutput:\n  to: %s\n  timeout: 10s\n", filepath.Join(root, "apps", "*"), to))
	}
	conf("beats://" + live)
	code, stdout, stderr := runBuilt(t, "ship", "-c", path, "--check")
	t.Logf("--check against a live output (exit %d):\n%s", code, stdout)
	want := fmt.Sprintf(`config %s: OK
input 1: %s: 1 directory now
output beats://%s
  %s
    resolve... OK an address: 127.0.0.1
    connect... OK to %s
    TLS handshake... OK none: TLS is not configured
    handshake... OK none in lumberjack v2 (a receiver answers only windows of events): connected is all that can be seen
check: OK
`, path, filepath.Join(root, "apps", "*"), live, live, live)
	if code != 0 || stdout != want || stderr != "" {
		t.Fatalf("exit %d, stdout\n%s\nwant\n%s\nstderr %s", code, stdout, want, stderr)
	}

	conf("beats://" + dead)
	code, stdout, _ = runBuilt(t, "ship", "-c", path, "--check")
	t.Logf("--check against a dead output (exit %d):\n%s", code, stdout)
	if code != 1 || !strings.Contains(stdout, "    connect... ERROR dial tcp "+dead+": connect: connection refused\n") || !strings.HasSuffix(stdout, "check: FAILED: output beats://"+dead+": 1 check(s) failed\n") {
		t.Fatalf("exit %d:\n%s", code, stdout)
	}

	conf("beats://" + live + "," + dead)
	code, stdout, _ = runBuilt(t, "ship", "-c", path, "--check")
	t.Logf("--check against a live and a dead host (exit %d):\n%s", code, stdout)
	if code != 1 || strings.Count(stdout, "connect... OK") != 1 || strings.Count(stdout, "connect... ERROR") != 1 {
		t.Fatalf("exit %d:\n%s", code, stdout)
	}

	r := peers.StartRedis(t, "s3cret")
	conf("redis://:s3cret@" + r.Addr + "/events")
	code, stdout, _ = runBuilt(t, "ship", "-c", path, "--check")
	t.Logf("--check against redis (exit %d):\n%s", code, stdout)
	if code != 0 || !strings.Contains(stdout, "    handshake... OK AUTH OK, PING: PONG, list events does not exist yet") {
		t.Fatalf("exit %d:\n%s", code, stdout)
	}
	conf("redis://:wrong@" + r.Addr + "/events")
	code, stdout, _ = runBuilt(t, "ship", "-c", path, "--check")
	if code != 1 || !strings.Contains(stdout, "    handshake... ERROR AUTH: redis: WRONGPASS") {
		t.Fatalf("exit %d:\n%s", code, stdout)
	}
}

// TestShipReload: the real binary with a configuration file and SIGHUP:
// an input added starts; a removed one stops with its cursor saved after
// its last record, and is not shipped while away; when it comes back it
// goes on from its cursor; a change of a key that does not reload (an
// output flag) is reported; a broken file changes nothing. No record is
// lost or shipped twice, and every cursor ends after its log's last
// record.
func TestShipReload(t *testing.T) {
	root := t.TempDir()
	a, b := filepath.Join(root, "a"), filepath.Join(root, "b")
	writeLog(t, a, 0, 10)
	writeLog(t, b, 0, 20)
	out := filepath.Join(root, "events.ndjson")
	path := filepath.Join(root, "ship.yml")
	inA := fmt.Sprintf("  - logs: [%q]\n    fields: {app: a}\n", a)
	inB := fmt.Sprintf("  - logs: [%q]\n    fields: {app: b}\n", b)
	conf := func(inputs string, workers int) {
		writeConfig(t, path, fmt.Sprintf("inputs:\n%soutput:\n  to: file://%s\n  workers: %d\ncursor_name: c\n", inputs, out, workers))
	}
	conf(inA, 1)
	cmd := exec.Command(builtMmaptail(t), "ship", "-c", path)
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	waitStderr := func(what string) {
		t.Helper()
		deadline := time.Now().Add(3 * time.Minute)
		for !strings.Contains(stderr.String(), what) {
			if time.Now().After(deadline) {
				t.Fatalf("stderr lacks %q:\n%s", what, stderr.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	hup := func() {
		t.Helper()
		if err := cmd.Process.Signal(unix.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	waitLines(t, out, 10)

	conf(inA+inB, 1) // b added
	hup()
	waitStderr("read again: 2 input(s)")
	waitLines(t, out, 30)

	conf(inB, 4) // a removed; workers does not reload
	hup()
	waitStderr(a + ": no input names it any more: stopped at record 10")
	waitStderr(path + ":6: output.workers changed to \"4\": not reloaded")
	if c, err := tail.LoadCursor(tail.CursorPath(a, "c")); err != nil || c.NextSeq != 11 {
		t.Fatalf("a's cursor after its input went: %+v, %v", c, err)
	}
	writeLog(t, a, 10, 15) // not shipped while a's input is away
	writeLog(t, b, 20, 23)
	waitLines(t, out, 33)

	writeConfig(t, path, "inputs: [\n") // broken: nothing changes
	hup()
	waitStderr("the configuration stays as it was")

	conf(inB+inA, 4) // a back: it goes on from its cursor
	hup()
	waitLines(t, out, 38)
	cmd.Process.Signal(unix.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("ship: %v\n%s", err, stderr.String())
	}
	seen := map[string]map[float64]int{}
	for _, ev := range readEvents(t, out) {
		lg := ev["log"].(map[string]any)
		p := lg["file"].(map[string]any)["path"].(string)
		if seen[p] == nil {
			seen[p] = map[float64]int{}
		}
		seen[p][lg["offset"].(float64)]++
		if want := filepath.Base(p); ev["app"] != want {
			t.Fatalf("event of %s has app %v", p, ev["app"])
		}
	}
	for dir, n := range map[string]int{a: 15, b: 23} {
		if len(seen[dir]) != n {
			t.Fatalf("%s: %d distinct records shipped, want %d", dir, len(seen[dir]), n)
		}
		for off, k := range seen[dir] {
			if k != 1 {
				t.Fatalf("%s: record %v shipped %d times", dir, off, k)
			}
		}
		if c, err := tail.LoadCursor(tail.CursorPath(dir, "c")); err != nil || c.NextSeq != uint64(n+1) {
			t.Fatalf("%s: cursor %+v, %v; want it at %d", dir, c, err, n+1)
		}
	}
	t.Logf("stderr of the reloads:\n%s", stderr.String())
}
