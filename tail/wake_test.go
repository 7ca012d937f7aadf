package tail_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mmaplog/mmaplog/mmaplog"
	"github.com/mmaplog/mmaplog/ring"
	"github.com/mmaplog/mmaplog/rotate"
	"github.com/mmaplog/mmaplog/tail"
)

const followerEnv = "MMAPLOG_TEST_FOLLOWER"

// followerChild follows the log in dir from its end, printing "read N" for
// every record, until it is killed.
func followerChild(dir string) int {
	r, err := tail.Open(dir, &tail.Options{Follow: true, FromEnd: true})
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	fmt.Println("following")
	out := bufio.NewWriter(os.Stdout)
	for {
		for r.Next() {
			fmt.Fprintln(out, "read", r.Record().Seq)
		}
		out.Flush()
		if err := r.Err(); err != nil {
			fmt.Println("error:", err)
			return 1
		}
		r.Wait(context.Background())
	}
}

// startFollower starts a follower process on dir and waits until it reads.
func startFollower(t *testing.T, dir string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), followerEnv+"="+dir)
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() || sc.Text() != "following" {
		t.Fatalf("follower: %q", sc.Text())
	}
	go func() {
		for sc.Scan() {
		}
	}()
	return cmd
}

// activeHeader maps the log's active segment read-only, to watch its wake
// deadline.
func activeHeader(t *testing.T, dir string, w *mmaplog.Writer) *rotate.View {
	t.Helper()
	v, err := rotate.OpenSegment(dir, w.Stats().Segment, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}

// writeTimed appends n records in batches of 100 with a pause of a
// millisecond after each (so that they span well over the 100 ms a dead
// reader may cost: a second or more), and returns the futex wake-ups the writer paid for them
// and the time stamps of the records.
func writeTimed(t *testing.T, w *mmaplog.Writer, n int) (wakes uint64, first uint64) {
	t.Helper()
	before := w.Stats().Wakeups
	first = w.Stats().NextSeq
	p := []byte(`{"level":"info","message":"a record of some hundred bytes, written while nobody reads the log ..."}`)
	for i := 0; i < n; i++ {
		if _, err := w.Append(mmaplog.LevelInfo, p); err != nil {
			t.Fatal(err)
		}
		if i%100 == 99 {
			time.Sleep(time.Millisecond)
		}
	}
	return w.Stats().Wakeups - before, first
}

// recordTime returns the time stamp of record seq.
func recordTime(t *testing.T, dir string, seq uint64) int64 {
	t.Helper()
	r, err := tail.Open(dir, &tail.Options{FromSeq: seq})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if !r.Next() || r.Record().Seq != seq {
		t.Fatalf("record %d not found: %v", seq, r.Err())
	}
	return r.Record().Time
}

// stampedBefore counts the records from sequence number first on whose time
// stamp lies before limit (Unix ns).
func stampedBefore(t *testing.T, dir string, first uint64, limit int64) (before, total int) {
	t.Helper()
	r, err := tail.Open(dir, &tail.Options{FromSeq: first})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for r.Next() {
		total++
		if r.Record().Time < limit {
			before++
		}
	}
	return before, total
}

// TestDeadFollowerCostsTheWriterAlmostNothing: a follower process killed
// with SIGKILL while it sleeps, waiting to be woken, leaves its wake
// deadline in the segment header. The writer then pays a futex wake-up only
// for the records stamped before that deadline (at most 100 ms after the
// kill), over 100,000 records: at most 100 ms of records, or 1% of them,
// whichever is more. After a writer restart (recovery disarms the
// deadline), and with no reader at all, it pays none; with a live follower
// asleep it does wake it.
func TestDeadFollowerCostsTheWriterAlmostNothing(t *testing.T) {
	const n = 100000
	dir := filepath.Join(t.TempDir(), "log")
	opts := &mmaplog.Options{SegmentSize: 64 << 20}
	w, err := mmaplog.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { w.Close() }()

	// No reader at all: no wake-up.
	if wakes, _ := writeTimed(t, w, n); wakes != 0 {
		t.Fatalf("no reader: the writer paid %d wake-ups for %d records", wakes, n)
	}

	// A live follower, asleep: the writer wakes it.
	f := startFollower(t, dir)
	v := activeHeader(t, dir, w)
	deadline := ring.WakeUntil(v.Data)
	waitArmed := func() int64 {
		t.Helper()
		limit := time.Now().Add(time.Minute)
		for {
			if d := deadline.Load(); d > time.Now().UnixNano() {
				return d
			}
			if time.Now().After(limit) {
				t.Fatal("the follower never asked to be woken")
			}
			time.Sleep(time.Millisecond)
		}
	}
	// The writer wakes it for a record stamped before the deadline it
	// asked for. The deadline may pass between looking at it and writing
	// (a busy machine): then look again, as many times as that takes.
	for tries := 1; w.Stats().Wakeups == 0; tries++ {
		d := waitArmed()
		seq, err := w.Append(mmaplog.LevelInfo, []byte("wake up"))
		if err != nil {
			t.Fatal(err)
		}
		if w.Stats().Wakeups > 0 {
			break
		}
		if stamp := recordTime(t, dir, seq); stamp < d {
			t.Fatalf("a follower asked to be woken until %d, the writer did not wake it for a record stamped %d", d, stamp)
		}
		if tries == 1000 {
			t.Fatal("the follower's deadline passed before each of 1000 records written right after it was seen")
		}
	}

	// Killed in its sleep: the deadline stays, the writer pays until it.
	waitArmed()
	time.Sleep(20 * time.Millisecond) // well into its sleep
	d := waitArmed()
	f.Process.Signal(unix.SIGKILL)
	f.Wait()
	killed := time.Now() // it is dead: it raises the deadline no more
	if deadline.Load() < d {
		t.Fatalf("deadline went down from %d to %d", d, deadline.Load())
	}
	wakes, first := writeTimed(t, w, n)
	due, total := stampedBefore(t, dir, first, deadline.Load())
	window, _ := stampedBefore(t, dir, first, killed.Add(100*time.Millisecond).UnixNano())
	bound := max(window, n/100)
	t.Logf("dead follower: %d wake-ups over %d records; %d stamped before its deadline, %d within 100 ms of the kill; bound %d", wakes, total, due, window, bound)
	if wakes > uint64(due) || wakes > uint64(bound) {
		t.Fatalf("the dead follower cost %d wake-ups over %d records: more than the %d records before its deadline, or the bound %d", wakes, total, due, bound)
	}

	// Killed in its sleep, then the writer restarts: recovery disarms.
	f = startFollower(t, dir)
	waitArmed()
	time.Sleep(20 * time.Millisecond)
	waitArmed()
	f.Process.Signal(unix.SIGKILL)
	f.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if w, err = mmaplog.Open(dir, opts); err != nil {
		t.Fatal(err)
	}
	if deadline.Load() != 0 {
		t.Fatalf("recovery left the dead follower's deadline armed: %d", deadline.Load())
	}
	if wakes, _ := writeTimed(t, w, n); wakes != 0 {
		t.Fatalf("after a restart, the dead follower still cost %d wake-ups over %d records", wakes, n)
	}
	if !strings.Contains(v.Path, rotate.SegmentName(w.Stats().Segment)) {
		t.Fatalf("the writer moved to another segment (%d); the test wants it to stay in %s", w.Stats().Segment, v.Path)
	}
}
