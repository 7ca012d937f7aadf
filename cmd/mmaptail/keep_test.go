package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mmaplog/mmaplog/internal/cursorfile"
	"github.com/mmaplog/mmaplog/rotate"
	"github.com/mmaplog/mmaplog/ship"
	"github.com/mmaplog/mmaplog/tail"
)

// pipeWriter is `mmaptail write` running as a process, fed through a pipe.
type pipeWriter struct {
	t      *testing.T
	dir    string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *syncBuffer
	lines  uint64 // written so far
}

func startPipeWriter(t *testing.T, dir string, args ...string) *pipeWriter {
	t.Helper()
	cmd := exec.Command(os.Args[0], append(append([]string{"write"}, args...), dir)...)
	cmd.Env = append(os.Environ(), "MMAPTAIL_AS_MAIN=1")
	w := &pipeWriter{t: t, dir: dir, cmd: cmd, stderr: &syncBuffer{}}
	cmd.Stderr = w.stderr
	var err error
	if w.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return w
}

// feed writes n lines (about 200 bytes each) and waits until the log
// holds them.
func (w *pipeWriter) feed(n int) {
	w.t.Helper()
	var b bytes.Buffer
	for i := 0; i < n; i++ {
		w.lines++
		fmt.Fprintf(&b, "line %06d %s\n", w.lines, strings.Repeat("x", 190))
	}
	if _, err := w.stdin.Write(b.Bytes()); err != nil {
		w.t.Fatalf("feeding the writer: %v (%s)", err, w.stderr)
	}
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(5 * time.Millisecond) { // a hang only
		if e, err := tail.End(w.dir); err == nil && e.NextSeq == w.lines+1 {
			return
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("the writer did not write %d lines in two minutes (%s)", w.lines, w.stderr)
		}
	}
}

// close ends the writer's input and waits for it to exit.
func (w *pipeWriter) close() {
	w.t.Helper()
	w.stdin.Close()
	if err := w.cmd.Wait(); err != nil {
		w.t.Fatalf("mmaptail write: %v: %s", err, w.stderr)
	}
}

// shipUntil runs `mmaptail ship` with args until the cursor at cpath
// says next, then stops it with SIGTERM and returns its standard error.
func shipUntil(t *testing.T, cpath string, next uint64, args ...string) string {
	t.Helper()
	cmd, _, stderr := startMmaptail(t, append([]string{"ship"}, args...)...)
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(10 * time.Millisecond) { // a hang only
		if c, err := tail.LoadCursor(cpath); err == nil && c.NextSeq == next {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cursor %s did not reach %d in two minutes: %s", cpath, next, stderr)
		}
	}
	cmd.Process.Signal(unix.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("ship exited with %v: %s", err, stderr)
	}
	return stderr.String()
}

var removedLine = regexp.MustCompile(`removed \S+ holding records (\d+) to (\d+) \((\d+)\) that cursor\(s\) (\S+) \(next (\d+), cursor (\S+)\) had not passed`)

// TestBuiltKeepUnshipped: `mmaptail write --keep-unshipped --max-backups 1`
// and `mmaptail ship --cursor-dir`, real processes. The shipper registers
// its cursor kept elsewhere; while it is stopped the writer keeps what it
// has not shipped (stat shows which segments it needs), and the shipper
// back ships every record, none lost. Past --max-total-size the writer
// removes unshipped records, saying which on standard error (exit status
// 0), and the shipper back counts exactly as many lost.
func TestBuiltKeepUnshipped(t *testing.T) {
	root := t.TempDir()
	dir, cdir := filepath.Join(root, "log"), filepath.Join(root, "state")
	real := filepath.Join(cdir, "s", ship.CursorFileName(dir))
	shipArgs := func(out string) []string {
		return []string{"--log", dir, "--to", "file://" + filepath.Join(root, out), "--cursor-dir", cdir, "--cursor-name", "s"}
	}
	const seg = 16 << 10
	w := startPipeWriter(t, dir, "--segment-size", "16KiB", "--max-backups", "1", "--max-total-size", "320KiB", "--keep-unshipped")
	w.feed(100)
	shipUntil(t, real, 101, shipArgs("out1.ndjson")...)
	ents, err := cursorfile.List(dir)
	if err != nil || len(ents) != 1 || !strings.HasPrefix(ents[0].Name, "s@") || ents[0].Cursor.CursorFile != real || ents[0].Cursor.NextSeq != 101 {
		t.Fatalf("cursors under the log: %+v %v; want the registration of %s at 101", ents, err, real)
	}

	// The shipper away, twelve segments more: within the cap.
	w.feed(800)
	code, so, se := runCLI("stat", dir)
	if code != 0 || !strings.Contains(so, "registers "+real) || !regexp.MustCompile(`needs rolled segment\(s\) 2 to \d+ \(\d+, `).MatchString(so) {
		t.Fatalf("stat: %d %s %s", code, so, se)
	}
	if l, err := rotate.List(dir); err != nil || l.Segments[0].Num != 2 || len(l.Segments) < 10 {
		t.Fatalf("segments %+v %v: want 2 on (1 passed by the cursor), far more than --max-backups", l.Segments, err)
	}
	shipUntil(t, real, 901, shipArgs("out2.ndjson")...)
	if n := len(readEvents(t, filepath.Join(root, "out2.ndjson"))); n != 800 {
		t.Fatalf("the shipper back shipped %d events, want 800", n)
	}
	if c, err := tail.LoadCursor(real); err != nil || c.Lost != 0 {
		t.Fatalf("cursor %+v %v: records lost", c, err)
	}

	// The shipper away again, past the cap.
	w.feed(2100)
	w.close()
	next, removed := uint64(901), uint64(0)
	for _, line := range strings.Split(strings.TrimSpace(w.stderr.String()), "\n") {
		m := removedLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("the writer says %q", line)
		}
		from, _ := strconv.ParseUint(m[1], 10, 64)
		to, _ := strconv.ParseUint(m[2], 10, 64)
		n, _ := strconv.ParseUint(m[3], 10, 64)
		if from != next || to < from || n != to-from+1 || !strings.HasPrefix(m[4], "s@") || m[5] != "901" || m[6] != real {
			t.Fatalf("removal %q: want records from %d on, needed by the registration of %s at 901", line, next, real)
		}
		next, removed = to+1, removed+n
	}
	if removed == 0 {
		t.Fatal("nothing reported removed past the cap")
	}
	if n := dirSize(t, dir); n > 320<<10 {
		t.Fatalf("the log takes %d bytes, over --max-total-size", n)
	}
	se = shipUntil(t, real, w.lines+1, shipArgs("out3.ndjson")...)
	c, err := tail.LoadCursor(real)
	if err != nil || c.Lost != removed || !strings.Contains(se, fmt.Sprintf("; %d record(s) lost", removed)) {
		t.Fatalf("cursor %+v %v, shipper said %q: want %d records lost, as the writer said", c, err, se, removed)
	}
	if n, want := uint64(len(readEvents(t, filepath.Join(root, "out3.ndjson")))), w.lines-900-removed; n != want {
		t.Fatalf("the shipper back shipped %d events, want %d", n, want)
	}
}

func dirSize(t *testing.T, dir string) int64 {
	t.Helper()
	l, err := rotate.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	return l.DiskUsage()
}

// TestBuiltWriteRetentionFlags: the retention flags of `mmaptail write`
// take effect, and bad values are one-line usage errors.
func TestBuiltWriteRetentionFlags(t *testing.T) {
	input := strings.Repeat(strings.Repeat("y", 200)+"\n", 1000) // about 14 segments of 16 KiB
	write := func(dir string, args ...string) (int, string) {
		cmd := exec.Command(os.Args[0], append(append([]string{"write", "--segment-size", "16KiB"}, args...), dir)...)
		cmd.Env = append(os.Environ(), "MMAPTAIL_AS_MAIN=1")
		cmd.Stdin = strings.NewReader(input)
		var errb bytes.Buffer
		cmd.Stderr = &errb
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), errb.String()
		} else if err != nil {
			t.Fatal(err)
		}
		return 0, errb.String()
	}
	rolled := func(dir string) (n int, compressed int) {
		l, err := rotate.List(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range l.Segments[:len(l.Segments)-1] {
			n++
			if s.Compressed {
				compressed++
			}
		}
		return n, compressed
	}
	dir := filepath.Join(t.TempDir(), "a")
	if code, errs := write(dir, "--max-backups", "2", "--compress"); code != 0 {
		t.Fatalf("write: %d %s", code, errs)
	}
	if n, c := rolled(dir); n != 2 || c != 2 {
		t.Fatalf("--max-backups 2 --compress: %d rolled segments, %d compressed", n, c)
	}
	dir = filepath.Join(t.TempDir(), "b")
	if code, errs := write(dir, "--max-backups", "-1", "--max-total-size", "128KiB"); code != 0 {
		t.Fatalf("write: %d %s", code, errs)
	}
	if n := dirSize(t, dir); n > 128<<10 || n < 64<<10 {
		t.Fatalf("--max-total-size 128KiB: the log takes %d bytes", n)
	}
	dir = filepath.Join(t.TempDir(), "c")
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--max-backups", "0"}, 2, "mmaptail write: --max-backups 0: want a count of at least 1, or -1 to keep every segment; run 'mmaptail write --help'\n"},
		{[]string{"--max-backups", "-2"}, 2, "mmaptail write: --max-backups -2: want a count of at least 1, or -1 to keep every segment; run 'mmaptail write --help'\n"},
		{[]string{"--max-total-size", "12XB"}, 2, "mmaptail write: --max-total-size: "},
		{[]string{"--keep-unshipped"}, 2, "mmaptail write: --keep-unshipped needs --max-total-size: the most disk the log may take while a shipper lags; run 'mmaptail write --help'\n"},
		{[]string{"--max-total-size", "32KiB"}, 1, "mmaptail write: mmaplog: MaxTotalSize 32768 is less than 4 segments"},
	} {
		code, errs := write(dir, tc.args...)
		if code != tc.code || !strings.HasPrefix(errs, tc.want) || strings.Count(errs, "\n") != 1 {
			t.Errorf("write %v: exit %d, %q; want exit %d and %q", tc.args, code, errs, tc.code, tc.want)
		}
	}
}
