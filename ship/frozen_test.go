package ship_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mmaplog/mmaplog/internal/frozenwriter"
	"github.com/mmaplog/mmaplog/rotate"
	"github.com/mmaplog/mmaplog/ship"
	"github.com/mmaplog/mmaplog/tail"
)

// This test binary is also the frozen writer process (see frozenwriter).
func init() {
	if dir := os.Getenv(frozenwriter.Env); dir != "" {
		os.Exit(frozenwriter.Child(dir))
	}
}

// TestShipFrozenWriter: a shipper follows a log whose writer process is
// stopped (SIGSTOP) between reserving record 11 and writing it, with 12 to
// 20 written after it. The shipper ships 1 to 10 and saves its cursor at 11,
// and then nothing more, however long the writer stays stopped: its reader
// reports the stall, naming the writer's pid and record 11, again and
// again, and neither the output nor the cursor passes 11. Once the writer
// is continued (SIGCONT) the shipper ships 11 to 30, each once, nothing
// lost, and the cursor goes to 31.
func TestShipFrozenWriter(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	cmd, stdin := frozenwriter.Start(t, dir)
	out := filepath.Join(t.TempDir(), "events.ndjson")
	stalls := make(chan tail.Stall, 64)
	r := runShipper(t, ship.Config{Dir: dir, Output: openOutput(t, "file://"+out), CursorName: "frozen", SaveInterval: time.Millisecond,
		Reader: tail.Options{HoleWait: 20 * time.Millisecond, OnStall: func(s tail.Stall) { stalls <- s }}})
	cpath := tail.CursorPath(dir, "frozen")
	cursorAt := func() uint64 {
		c, err := tail.LoadCursor(cpath)
		if err != nil {
			return 0
		}
		return c.NextSeq
	}
	// shippedOnly fails if anything but records 1 to n was shipped, or
	// one twice; it reports whether all of them were.
	shippedOnly := func(n uint64) bool {
		got := shipped(t, out)[dir]
		for seq, k := range got {
			if seq < 1 || seq > n || k != 1 {
				t.Fatalf("record %d shipped %d times, with the writer stopped before writing record %d (shipped %v)", seq, k, frozenwriter.Seq, got)
			}
		}
		return uint64(len(got)) == n
	}
	waitFor(t, "records 1 to 10 shipped, the cursor at 11", hangLimit, func() bool {
		return shippedOnly(frozenwriter.Before) && cursorAt() == frozenwriter.Seq
	})
	for n := 0; n < 3; {
		select {
		case s := <-stalls:
			if s.Seq != frozenwriter.Seq || s.PID != cmd.Process.Pid || s.Over {
				t.Fatalf("stall %+v: want record %d, pid %d", s, frozenwriter.Seq, cmd.Process.Pid)
			}
			n++
		case <-time.After(20 * time.Millisecond):
			shippedOnly(frozenwriter.Before)
		}
	}
	if !shippedOnly(frozenwriter.Before) || cursorAt() != frozenwriter.Seq {
		t.Fatalf("with the writer stopped: the cursor at %d, want %d", cursorAt(), frozenwriter.Seq)
	}

	if err := cmd.Process.Signal(unix.SIGCONT); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "records 1 to 30 shipped, the cursor at 31", hangLimit, func() bool {
		return shippedOnly(frozenwriter.Last) && cursorAt() == frozenwriter.Last+1
	})
	if err := r.finish(t); err != nil {
		t.Fatal(err)
	}
	if st := r.s.Stats(); st.Lost != 0 || st.Acked != frozenwriter.Last {
		t.Fatalf("stats %+v, want %d acknowledged, none lost", st, frozenwriter.Last)
	}
	var last tail.Stall
	for len(stalls) > 0 {
		last = <-stalls
	}
	if !last.Over || !last.Published || last.Seq != frozenwriter.Seq {
		t.Fatalf("last stall report %+v (%s): want the wait for %d over, the record written", last, last, frozenwriter.Seq)
	}
	// The operator is told too, through Logf: the warnings while the
	// writer was stopped, and the note when the record came.
	for _, want := range []string{
		fmt.Sprintf("warning: %s: record %d at offset", filepath.Join(dir, rotate.SegmentName(1)), frozenwriter.Seq),
		fmt.Sprintf("(process %d)", cmd.Process.Pid),
		fmt.Sprintf("note: %s: record %d at offset", filepath.Join(dir, rotate.SegmentName(1)), frozenwriter.Seq),
	} {
		if !r.logs.has(want) {
			t.Fatalf("the shipper's log does not say %q:\n%s", want, strings.Join(r.logs.lines, "\n"))
		}
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("frozen writer: %v", err)
	}
}
