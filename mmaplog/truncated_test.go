package mmaplog_test

// Segment files truncated by another process under a writer: each case runs
// the writer in a child process (the test binary started again), because
// before the writer guarded its touches of those mappings a truncated file
// killed the process with SIGBUS. The parent truncates the files (it is the
// other process), lets the child go on, and checks that the child exited
// normally, reported the damage naming the file, and lost no record whose
// Append returned.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mmaplog/mmaplog/flush"
	"github.com/mmaplog/mmaplog/internal/testutil"
	"github.com/mmaplog/mmaplog/mmaplog"
	"github.com/mmaplog/mmaplog/rotate"
	"github.com/mmaplog/mmaplog/tail"
)

// truncChildren are the child modes of these tests (see runChild).
var truncChildren = map[string]func(dir string){
	"truncprepared": truncPreparedChild,
	"closetrunc":    closeTruncatedChild,
	"finishtrunc":   finishTruncatedChild,
}

// truncChild is a child process started by a test here.
type truncChild struct {
	cmd    *exec.Cmd
	out    *bufio.Scanner
	in     io.WriteCloser
	stderr strings.Builder
	timer  *time.Timer
}

func startTruncChild(t *testing.T, mode, dir string, env ...string) *truncChild {
	t.Helper()
	c := &truncChild{cmd: exec.Command(os.Args[0], "-test.run=^$")}
	c.cmd.Env = append(append(os.Environ(), childEnv+"="+mode, "MMAPLOG_TEST_DIR="+dir), env...)
	c.cmd.Stderr = &c.stderr
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if c.in, err = c.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// A deadline only for a child that hangs.
	c.timer = time.AfterFunc(2*time.Minute, func() { c.cmd.Process.Kill() })
	t.Cleanup(func() {
		c.timer.Stop()
		if c.cmd.ProcessState == nil {
			c.cmd.Process.Kill()
			c.cmd.Wait()
		}
	})
	c.out = bufio.NewScanner(stdout)
	return c
}

// line returns the child's next line of output.
func (c *truncChild) line(t *testing.T) string {
	t.Helper()
	if !c.out.Scan() {
		c.cmd.Wait()
		t.Fatalf("child ended early (%v); stderr:\n%s", c.cmd.ProcessState, c.stderr.String())
	}
	return c.out.Text()
}

// goOn tells the child to go on.
func (c *truncChild) goOn(t *testing.T) {
	t.Helper()
	if _, err := io.WriteString(c.in, "go\n"); err != nil {
		t.Fatal(err)
	}
}

// finish reads the rest of the child's output and checks that it exited
// normally (status 0).
func (c *truncChild) finish(t *testing.T) []string {
	t.Helper()
	var lines []string
	for c.out.Scan() {
		lines = append(lines, c.out.Text())
	}
	err := c.cmd.Wait()
	if err != nil {
		t.Fatalf("child: %v, want a normal exit; stdout:\n%s\nstderr:\n%s", err, strings.Join(lines, "\n"), headOf(c.stderr.String(), 2000))
	}
	return lines
}

func headOf(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// childWait reads the parent's "go" line.
func childWait() {
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		childFail("reading stdin: %v", err)
	}
}

func childFail(format string, a ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", a...)
	os.Exit(1)
}

// errorLog collects what OnError is told.
type errorLog struct {
	mu   sync.Mutex
	errs []error
}

func (l *errorLog) add(err error) {
	l.mu.Lock()
	l.errs = append(l.errs, err)
	l.mu.Unlock()
}

// print prints each error told, on a line of its own after "told:".
func (l *errorLog) print() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, err := range l.errs {
		fmt.Println("told:", oneLineErr(err))
	}
}

func oneLineErr(err error) string {
	if err == nil {
		return "<nil>"
	}
	return strings.ReplaceAll(err.Error(), "\n", " | ")
}

// linesWith returns the lines that start with prefix.
func linesWith(lines []string, prefix string) []string {
	var out []string
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return out
}

// readSeqs reads the log and checks that records from..to are there, each
// with its payload (seqPayload); records outside that range may be
// missing. It returns the damage the reader reported.
func readSeqs(t *testing.T, dir string, from, to uint64) []tail.Damage {
	t.Helper()
	r, err := tail.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	next := from
	for r.Next() {
		rec := r.Record()
		if rec.Seq < from || rec.Seq > to {
			continue
		}
		if rec.Seq != next {
			t.Fatalf("record %d follows record %d: records %d to %d are missing", rec.Seq, next-1, next, rec.Seq-1)
		}
		if string(rec.Payload) != string(seqPayload(rec.Seq)) {
			t.Fatalf("record %d reads %.40q", rec.Seq, rec.Payload)
		}
		next++
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if next != to+1 {
		t.Fatalf("read records %d to %d, want to %d", from, next-1, to)
	}
	return r.Damage()
}

// TestTruncatedPreparedSegment: another process truncates both segments the
// writer prepared ahead (to nothing, or to half). Rolling over into each
// must not write into its mapping (SIGBUS, or faulting Appends): the writer
// discards it, makes the segment again, and says so (OnError, Sync). Every
// Append succeeds, and the log reads back whole and clean.
func TestTruncatedPreparedSegment(t *testing.T) {
	for _, to := range []string{"0", "half"} {
		t.Run("to="+to, func(t *testing.T) {
			dir := t.TempDir()
			c := startTruncChild(t, "truncprepared", dir)
			f := strings.Fields(c.line(t))
			if len(f) != 3 || f[0] != "prepared" {
				t.Fatalf("child: %q", f)
			}
			size := int64(0)
			if to == "half" {
				size = 32 << 10
			}
			for _, p := range f[1:] {
				if err := os.Truncate(p, size); err != nil {
					t.Fatal(err)
				}
			}
			c.goOn(t)
			lines := c.finish(t)
			var last uint64
			if w := linesWith(lines, "written "); len(w) != 1 {
				t.Fatalf("child printed %q", lines)
			} else if last, _ = strconv.ParseUint(strings.TrimPrefix(w[0], "written "), 10, 64); last == 0 {
				t.Fatalf("child printed %q", lines)
			}
			told := strings.Join(linesWith(lines, "told:"), "\n")
			for _, p := range f[1:] {
				if !strings.Contains(told, "prepared segment "+p) {
					t.Errorf("OnError was not told about %s:\n%s", p, told)
				}
			}
			if s := linesWith(lines, "sync:"); len(s) != 1 || !strings.Contains(s[0], f[1]) {
				t.Errorf("Sync did not return the error about %s: %q", f[1], s)
			}
			if s := linesWith(lines, "close:"); len(s) != 1 || s[0] != "close: <nil>" {
				t.Errorf("Close: %q", s)
			}
			if d := readSeqs(t, dir, 1, last); len(d) != 0 {
				t.Errorf("damage: %v", d)
			}
			rep, err := tail.Verify(dir)
			if err != nil || !rep.Clean() {
				t.Errorf("verify: %v %v", err, rep.Findings)
			}
			t.Logf("%d records written; told:\n%s", last, told)
		})
	}
}

// TestTruncatedPreparedSegmentOnAFullDisk: as TestTruncatedPreparedSegment,
// but the disk is full when the writer makes the discarded segment again.
// The Write that needed it fails with ENOSPC; once there is room again it
// succeeds, with the same segment number (the numbers stay consecutive)
// and the sequence number it would have had.
func TestTruncatedPreparedSegmentOnAFullDisk(t *testing.T) {
	dir := testutil.Tmpfs(t, "1m")
	c := startTruncChild(t, "truncprepared", dir, "MMAPLOG_TEST_FULL=1")
	f := strings.Fields(c.line(t))
	if len(f) != 3 || f[0] != "prepared" {
		t.Fatalf("child: %q", f)
	}
	for _, p := range f[1:] {
		if err := os.Truncate(p, 0); err != nil {
			t.Fatal(err)
		}
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(dir, "filler")
	if err := os.WriteFile(filler, make([]byte, int64(fs.Bavail)*fs.Bsize), 0o600); err != nil {
		t.Fatal(err)
	}
	c.goOn(t)
	full := c.line(t)
	if !strings.HasPrefix(full, "full ") || !strings.Contains(full, "no space left on device") || !strings.Contains(full, f[1]) {
		t.Fatalf("child: %q; want the failed Write's error (a full disk) naming %s", full, f[1])
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	c.goOn(t)
	lines := c.finish(t)
	var last uint64
	if w := linesWith(lines, "written "); len(w) != 1 {
		t.Fatalf("child printed %q", lines)
	} else if last, _ = strconv.ParseUint(strings.TrimPrefix(w[0], "written "), 10, 64); last == 0 {
		t.Fatalf("child printed %q", lines)
	}
	told := strings.Join(linesWith(lines, "told:"), "\n")
	for _, p := range f[1:] {
		if !strings.Contains(told, "prepared segment "+p) {
			t.Errorf("OnError was not told about %s:\n%s", p, told)
		}
	}
	if d := readSeqs(t, dir, 1, last); len(d) != 0 {
		t.Errorf("damage: %v", d)
	}
	rep, err := tail.Verify(dir)
	if err != nil || !rep.Clean() {
		t.Errorf("verify: %v %v", err, rep.Findings)
	}
	l, err := rotate.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range l.Segments {
		if s.Num != l.Segments[0].Num+uint64(i) {
			t.Fatalf("segment %d follows segment %d", s.Num, l.Segments[i-1].Num)
		}
	}
	t.Logf("%s\n%d records written; told:\n%s", full, last, told)
}

// truncPreparedChild waits until the two segments after the active one are
// prepared, prints "prepared PATH PATH" and waits for the parent to
// truncate them; then it writes records 1, 2, ... until it has rolled over
// past both, and prints "written N", Sync's and Close's errors and what
// OnError was told. With MMAPLOG_TEST_FULL=1, a Write that fails for a
// full disk makes it print "full I ERROR" and wait for the parent to make
// room, then retry that record until it succeeds.
func truncPreparedChild(dir string) {
	const segSize = 64 << 10
	var told errorLog
	// No pre-faulting: the preparer then never touches a mapping itself,
	// so the parent may truncate a file as soon as it is in place.
	w, err := mmaplog.Open(dir, &mmaplog.Options{SegmentSize: segSize, MaxBackups: -1, NoPrefault: true, OnError: told.add})
	if err != nil {
		childFail("open: %v", err)
	}
	active := w.Stats().Segment
	paths := []string{filepath.Join(dir, rotate.SegmentName(active+1)), filepath.Join(dir, rotate.SegmentName(active+2))}
	deadline := time.Now().Add(time.Minute) // a hang only
	for _, p := range paths {
		for {
			if st, err := os.Stat(p); err == nil && st.Size() == segSize {
				break
			}
			if time.Now().After(deadline) {
				childFail("%s was not prepared", p)
			}
			time.Sleep(time.Millisecond)
		}
	}
	fmt.Println("prepared", paths[0], paths[1])
	childWait()
	deadline = time.Now().Add(time.Minute) // a hang only
	full := os.Getenv("MMAPLOG_TEST_FULL") == "1"
	freed := false
	var last uint64
	for i := uint64(1); w.Stats().Segment <= active+2 || i%100 != 0; i++ {
		if i > 10000 {
			childFail("no rotation past segment %d after %d records: %+v", active+2, i, w.Stats())
		}
		seq, err := w.Append(0, seqPayload(i))
		if err != nil && full && errors.Is(err, unix.ENOSPC) {
			// The parent filled the disk: the segment cannot be made
			// again. Once it made room, retry until it can.
			if !freed {
				fmt.Println("full", i, oneLineErr(err))
				childWait()
				freed = true
			} else if time.Now().After(deadline) {
				childFail("record %d: still %v", i, err)
			} else {
				time.Sleep(5 * time.Millisecond)
			}
			i--
			continue
		}
		if err != nil {
			childFail("record %d: %v", i, err)
		}
		if seq != i {
			childFail("record %d got sequence number %d", i, seq)
		}
		last = seq
	}
	fmt.Println("written", last)
	fmt.Println("sync:", oneLineErr(w.Sync()))
	fmt.Println("close:", oneLineErr(w.Close()))
	told.print()
}

// TestCloseAfterActiveSegmentTruncated: a writer opens a log, appends
// nothing, and another process truncates its active segment, to nothing or
// into its header page. Close must not touch the lost part of the mapping
// (SIGBUS), nor say nothing: it returns an error naming the file that says
// it was truncated, and the process lives on.
func TestCloseAfterActiveSegmentTruncated(t *testing.T) {
	for _, size := range []int64{0, 100} {
		t.Run(fmt.Sprintf("to=%d", size), func(t *testing.T) {
			dir := t.TempDir()
			w, err := mmaplog.Open(dir, &mmaplog.Options{SegmentSize: 64 << 10})
			if err != nil {
				t.Fatal(err)
			}
			for i := uint64(1); i <= 10; i++ {
				if _, err := w.Append(0, seqPayload(i)); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			c := startTruncChild(t, "closetrunc", dir)
			f := strings.Fields(c.line(t))
			if len(f) != 2 || f[0] != "active" {
				t.Fatalf("child: %q", f)
			}
			if err := os.Truncate(f[1], size); err != nil {
				t.Fatal(err)
			}
			c.goOn(t)
			lines := c.finish(t)
			cl := linesWith(lines, "close:")
			if len(cl) != 1 || !strings.Contains(cl[0], f[1]) || !strings.Contains(cl[0], "truncated by another process") {
				t.Fatalf("Close after the truncation: %q; want an error naming %s that says it was truncated", lines, f[1])
			}
			t.Log(cl[0])
		})
	}
}

// closeTruncatedChild opens the log, prints "active PATH", waits for the
// parent to truncate it and closes the writer, printing Close's error.
func closeTruncatedChild(dir string) {
	w, err := mmaplog.Open(dir, &mmaplog.Options{SegmentSize: 64 << 10})
	if err != nil {
		childFail("open: %v", err)
	}
	fmt.Println("active", filepath.Join(dir, rotate.SegmentName(w.Stats().Segment)))
	childWait()
	fmt.Println("close:", oneLineErr(w.Close()))
}

// TestFinishTruncatedSegment: another process truncates the active segment
// to nothing while it is written. The Appends into it fail with ErrFault
// (not acknowledged); the writer rolls over, and finishing the truncated
// segment (marking it sealed, flushing it) reports the fault instead of
// killing the process. Every record acknowledged after it is kept.
func TestFinishTruncatedSegment(t *testing.T) {
	for _, policy := range []string{"write", "none"} {
		t.Run(policy, func(t *testing.T) {
			dir := t.TempDir()
			c := startTruncChild(t, "finishtrunc", dir, "MMAPLOG_TEST_POLICY="+policy)
			f := strings.Fields(c.line(t))
			if len(f) != 2 || f[0] != "active" {
				t.Fatalf("child: %q", f)
			}
			if err := os.Truncate(f[1], 0); err != nil {
				t.Fatal(err)
			}
			c.goOn(t)
			lines := c.finish(t)
			var failed, first, last uint64
			if a := linesWith(lines, "acked "); len(a) != 1 {
				t.Fatalf("child printed %q", lines)
			} else if n, _ := fmt.Sscanf(a[0], "acked %d failed %d first %d last %d", new(uint64), &failed, &first, &last); n != 4 || failed == 0 || last < first {
				t.Fatalf("child printed %q", a[0])
			}
			told := strings.Join(linesWith(lines, "told:"), "\n")
			if !strings.Contains(told, "finishing "+f[1]) || !strings.Contains(told, "truncated by another process") {
				t.Errorf("OnError was not told that %s was truncated:\n%s", f[1], told)
			}
			d := readSeqs(t, dir, first, last)
			t.Logf("%d Appends failed; records %d to %d acknowledged after them; damage %v; told:\n%s", failed, first, last, d, told)
		})
	}
}

// finishTruncatedChild opens a new log, prints "active PATH" and waits for
// the parent to truncate it; then it appends until the writer has rolled
// over and 100 more records were acknowledged. Every failed Append must
// wrap ErrFault. It prints "acked N failed M first F last L" (the
// sequence numbers acknowledged after the last failure), then Sync's and
// Close's errors and what OnError was told.
func finishTruncatedChild(dir string) {
	var told errorLog
	o := &mmaplog.Options{SegmentSize: 64 << 10, MaxBackups: -1, OnError: told.add}
	if os.Getenv("MMAPLOG_TEST_POLICY") == "write" {
		o.Flush = flush.Write()
	}
	w, err := mmaplog.Open(dir, o)
	if err != nil {
		childFail("open: %v", err)
	}
	fmt.Println("active", filepath.Join(dir, rotate.SegmentName(w.Stats().Segment)))
	childWait()
	var acked, failed, first, last uint64
	for i := uint64(1); w.Stats().Rotations == 0 || acked < 100; i++ {
		if i > 10000 {
			childFail("no rotation after %d records: %+v", i, w.Stats())
		}
		seq, err := w.Append(0, seqPayload(i))
		if err != nil {
			if !errors.Is(err, mmaplog.ErrFault) || !strings.Contains(err.Error(), "not written to") {
				childFail("record %d: %v, want ErrFault saying it was not written", i, err)
			}
			failed++
			acked, first = 0, 0
			continue
		}
		if seq != i {
			childFail("record %d got sequence number %d", i, seq)
		}
		if acked++; first == 0 {
			first = seq
		}
		last = seq
	}
	fmt.Printf("acked %d failed %d first %d last %d\n", acked, failed, first, last)
	// Let the finisher finish the truncated segment before Close does.
	deadline := time.Now().Add(time.Minute) // a hang only
	for w.Stats().BackgroundErrs == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	fmt.Println("sync:", oneLineErr(w.Sync()))
	fmt.Println("close:", oneLineErr(w.Close()))
	told.print()
}
