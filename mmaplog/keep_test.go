package mmaplog_test

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mmaplog/mmaplog/mmaplog"
	"github.com/mmaplog/mmaplog/rotate"
	"github.com/mmaplog/mmaplog/tail"
)

// keepErrors collects what a Writer tells OnError.
type keepErrors struct {
	mu   sync.Mutex
	errs []error
}

func (l *keepErrors) add(err error) {
	l.mu.Lock()
	l.errs = append(l.errs, err)
	l.mu.Unlock()
}

// split returns the UnshippedErrors, the ErrCursorIgnored errors and the
// others.
func (l *keepErrors) split() (unshipped []*mmaplog.UnshippedError, ignored, other []error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, err := range l.errs {
		var ue *mmaplog.UnshippedError
		switch {
		case errors.As(err, &ue):
			unshipped = append(unshipped, ue)
		case errors.Is(err, mmaplog.ErrCursorIgnored):
			ignored = append(ignored, err)
		default:
			other = append(other, err)
		}
	}
	return
}

// writeUntil appends records (seqPayload) until the writer's active
// segment is seg, checking after each roll that the directory is within
// bound. It fails if a Write does not return within two minutes: a
// rotation waiting for room that never comes.
func writeUntil(t *testing.T, w *mmaplog.Writer, seg uint64, bound int64) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		last := w.Stats().Segment
		for w.Stats().Segment < seg {
			seq := w.Stats().NextSeq
			if _, err := w.Append(mmaplog.LevelInfo, seqPayload(seq)); err != nil {
				done <- err
				return
			}
			if s := w.Stats().Segment; s != last {
				last = s
				if n := dirBytes(w.Dir()); n > bound {
					done <- fmt.Errorf("the directory takes %d bytes, over its bound %d", n, bound)
					return
				}
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Minute): // a hang only
		t.Fatalf("writing to segment %d: stuck in segment %d for two minutes (a rotation waiting for room?)", seg, w.Stats().Segment)
	}
}

func dirBytes(dir string) int64 {
	ents, _ := os.ReadDir(dir)
	var n int64
	for _, e := range ents {
		if e.Name() == rotate.LockName || !e.Type().IsRegular() {
			continue
		}
		if info, err := e.Info(); err == nil {
			n += info.Size()
		}
	}
	return n
}

// readFrom reads the log (not following) from record from on, checking
// every record against its sequence number and that they follow one
// another; it returns the first record read and the records the reader
// counted removed by retention (any other damage fails the test).
func readFrom(t *testing.T, dir string, from uint64) (first, removed uint64) {
	t.Helper()
	r, err := tail.Open(dir, &tail.Options{FromSeq: from})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	prev := uint64(0)
	for r.Next() {
		rec := r.Record()
		if string(rec.Payload) != string(seqPayload(rec.Seq)) {
			t.Fatalf("record %d reads %.40q", rec.Seq, rec.Payload)
		}
		if first == 0 {
			first = rec.Seq
		} else if rec.Seq != prev+1 {
			t.Fatalf("record %d after %d", rec.Seq, prev)
		}
		prev = rec.Seq
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	for _, d := range r.Damage() {
		if d.Kind != tail.DamageRemoved {
			t.Fatalf("damage reading from %d: %v", from, d)
		}
		removed += d.Lost
	}
	return first, removed
}

// TestKeepUnshipped: a log with KeepUnshipped, MaxBackups 1 and a
// registered cursor that does not move. Rolled segments holding records
// at or after the cursor are kept, well past MaxBackups, while the
// directory is within MaxTotalSize (a cursor of another log and a damaged
// one are ignored, each reported once). Past it, MaxTotalSize removes them,
// oldest first: each removal is reported with the exact records and the
// cursor that needed them, counted, and returned by Sync, and a reader
// from the cursor finds exactly as many records removed by retention.
// Once the cursor moves on, the held segments go as MaxBackups says.
// Rotation never waits forever while segments are held.
func TestKeepUnshipped(t *testing.T) {
	dir := t.TempDir()
	const seg = 16 << 10
	var elog keepErrors
	opts := func() *mmaplog.Options {
		return &mmaplog.Options{SegmentSize: seg, MaxBackups: 1, MaxTotalSize: 12 * seg, KeepUnshipped: true, OnError: elog.add}
	}
	bound := opts().DiskBound()
	if bound != 12*seg {
		t.Fatalf("DiskBound %d under KeepUnshipped, want MaxTotalSize %d", bound, 12*seg)
	}

	// Phase 1: the cursor registered in segment 2; the writer goes on
	// to segment 8 (seven rolled segments, nine in all: within the cap).
	w, err := mmaplog.Open(dir, opts())
	if err != nil {
		t.Fatal(err)
	}
	writeUntil(t, w, 2, bound)
	for i := 0; i < 10; i++ {
		if _, err := w.Append(mmaplog.LevelInfo, seqPayload(w.Stats().NextSeq)); err != nil {
			t.Fatal(err)
		}
	}
	c0 := w.Stats().NextSeq - 5
	if err := (tail.Cursor{LogID: w.LogID(), NextSeq: c0}).Save(tail.CursorPath(dir, "stuck")); err != nil {
		t.Fatal(err)
	}
	// Another log's cursor at record 1 would hold everything.
	if err := (tail.Cursor{LogID: [16]byte{0xee}, NextSeq: 1}).Save(tail.CursorPath(dir, "foreign")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tail.CursorPath(dir, "broken"), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	writeUntil(t, w, 8, bound)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	st := w.Stats()
	if st.UnshippedRemoved != 0 || st.Held != 5 || st.HeldBytes != 5*seg || st.IgnoredCursors != 2 {
		t.Fatalf("within the cap: %+v; want nothing removed unshipped, 5 segments held (2 to 6), 2 cursors ignored", st)
	}
	if first, removed := readFrom(t, dir, c0); first != c0 || removed != 0 {
		t.Fatalf("reading from the cursor %d: first record %d, %d removed", c0, first, removed)
	}
	l, err := rotate.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Segments) != 7 || l.Segments[0].Num != 2 {
		t.Fatalf("segments %+v: want 2 to 8 (segment 1, before the cursor, removed)", l.Segments)
	}
	unshipped, ignored, other := elog.split()
	if len(unshipped) != 0 || len(ignored) != 2 || len(other) != 0 {
		t.Fatalf("errors told: unshipped %v, ignored %v, other %v; want the two ignored cursors only", unshipped, ignored, other)
	}

	// Phase 2: a writer (reopened) goes on far past the cap.
	w, err = mmaplog.Open(dir, opts())
	if err != nil {
		t.Fatal(err)
	}
	writeUntil(t, w, 30, bound)
	serr := w.Sync()
	var ue *mmaplog.UnshippedError
	if !errors.Is(serr, mmaplog.ErrUnshippedRemoved) || !errors.As(serr, &ue) {
		t.Fatalf("Sync after records were removed unshipped: %v", serr)
	}
	if err := w.Close(); err != nil && !errors.Is(err, mmaplog.ErrUnshippedRemoved) {
		t.Fatal(err)
	}
	st = w.Stats()
	unshipped, ignored, other = elog.split()
	if len(other) != 0 || len(ignored) != 4 { // reported once per Writer
		t.Fatalf("errors told: ignored %v, other %v", ignored, other)
	}
	if st.UnshippedRemoved == 0 || uint64(len(unshipped)) != st.UnshippedRemoved {
		t.Fatalf("%d segments reported removed unshipped, Stats say %d", len(unshipped), st.UnshippedRemoved)
	}
	next, records := c0, uint64(0)
	for _, e := range unshipped {
		if e.FirstSeq != next || e.LastSeq < e.FirstSeq || len(e.Cursors) != 1 || e.Cursors[0].Name != "stuck" || e.Cursors[0].NextSeq != c0 {
			t.Fatalf("removal %v: want records from %d on, needed by the cursor stuck alone", e, next)
		}
		next = e.LastSeq + 1
		records += e.Records()
	}
	if records != st.UnshippedRecords {
		t.Fatalf("the removals reported name %d records, Stats say %d", records, st.UnshippedRecords)
	}
	first, removed := readFrom(t, dir, c0)
	if removed != st.UnshippedRecords || first != next {
		t.Fatalf("a reader from the cursor %d: %d records removed by retention, first record %d; the writer reported %d removed, up to %d", c0, removed, first, st.UnshippedRecords, next-1)
	}
	if n := dirBytes(dir); n > bound {
		t.Fatalf("the directory takes %d bytes, over MaxTotalSize %d", n, bound)
	}

	// Phase 3: the consumer catches up with the writer, and follows it;
	// at the next roll the held segments go, as MaxBackups says.
	if err := (tail.Cursor{LogID: w.LogID(), NextSeq: st.NextSeq}).Save(tail.CursorPath(dir, "stuck")); err != nil {
		t.Fatal(err)
	}
	w, err = mmaplog.Open(dir, opts())
	if err != nil {
		t.Fatal(err)
	}
	writeUntil(t, w, 33, bound)
	if err := (tail.Cursor{LogID: w.LogID(), NextSeq: w.Stats().NextSeq}).Save(tail.CursorPath(dir, "stuck")); err != nil {
		t.Fatal(err)
	}
	writeUntil(t, w, 34, bound)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if l, err = rotate.List(dir); err != nil {
		t.Fatal(err)
	}
	if st := w.Stats(); len(l.Segments) != 2 || l.Segments[0].Num != 33 || st.Held != 0 || st.UnshippedRemoved != 0 {
		t.Fatalf("after the cursor moved on: segments %+v, stats %+v; want segments 33 (MaxBackups) and 34", l.Segments, st)
	}
}

// TestKeepUnshippedNeedsMaxTotalSize: KeepUnshipped without a hard cap is
// refused, and with one the cap is the disk bound.
func TestKeepUnshippedNeedsMaxTotalSize(t *testing.T) {
	_, err := mmaplog.Open(t.TempDir(), &mmaplog.Options{KeepUnshipped: true})
	if err == nil || !strings.Contains(err.Error(), "KeepUnshipped needs MaxTotalSize") {
		t.Fatalf("KeepUnshipped without MaxTotalSize: %v", err)
	}
	o := &mmaplog.Options{KeepUnshipped: true, MaxTotalSize: 100 * mmaplog.DefaultSegmentSize}
	if b := o.DiskBound(); b != o.MaxTotalSize {
		t.Fatalf("DiskBound %d, want MaxTotalSize %d", b, o.MaxTotalSize)
	}
}
