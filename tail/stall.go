package tail

import (
	"fmt"
	"time"
)

// Stall is a record that the writer reserved and has not written for longer
// than Options.HoleWait, while the writer holds the log's lock (DIR/LOCK):
// its process is stopped (SIGSTOP, a paused container, a debugger) or one of
// its goroutines is stuck between reserving the record and writing it. A
// following Reader never skips such a record: it waits for it, reading
// nothing after it, and reports the wait through Options.OnStall, again while
// it lasts (after about 2, 4, 8 ... times HoleWait, at least every 10
// minutes), and once more, with Over set, when it ends.
type Stall struct {
	Path   string        // the segment file
	Offset int64         // where the record waited for starts in it
	Seq    uint64        // the record's sequence number
	PID    int           // the writer's process id, as DIR/LOCK says (0: unknown)
	Waited time.Duration // how long the Reader has waited at the record
	// Over is set on the last report of a stall: the Reader went on.
	// Published says whether the record came; if not, the writer let go
	// of the log without writing it (it died; the Write never returned)
	// or the segment was damaged, and a Damage says what was skipped.
	Over, Published bool
}

func (s Stall) String() string {
	writer := "the writer"
	if s.PID > 0 {
		writer = fmt.Sprintf("the writer (process %d)", s.PID)
	}
	waited := s.Waited.Round(time.Millisecond)
	switch {
	case s.Over && s.Published:
		return fmt.Sprintf("%s: record %d at offset %d written after a wait of %v: reading on", s.Path, s.Seq, s.Offset, waited)
	case s.Over:
		return fmt.Sprintf("%s: stopped waiting for record %d at offset %d after %v: %s let go of the log without writing it (see the damage reported)", s.Path, s.Seq, s.Offset, waited, writer)
	}
	return fmt.Sprintf("%s: record %d at offset %d, reserved by %s, which holds the log's lock, is not written after %v: waiting for it, reading nothing after it (is the writer stopped: SIGSTOP, a paused container, a debugger? resume it; a writer that exits lets readers go on)", s.Path, s.Seq, s.Offset, writer, waited)
}
