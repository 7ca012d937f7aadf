package mmaplog_test

import (
	"testing"
	"time"

	"github.com/mmaplog/mmaplog/mmaplog"
	"github.com/mmaplog/mmaplog/tail"
)

// TestRecordTimesNeverGoBackAcrossRestart: a log whose last record was
// stamped an hour ahead of this machine's clock (as after the wall clock
// stepped back an hour between two runs of the writer) gets no record
// stamped earlier than that one, with the record clock and with
// ExactClock: readers that seek by time rely on record times never going
// back within a log.
func TestRecordTimesNeverGoBackAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	ahead := time.Now().Add(time.Hour)
	w, err := mmaplog.Open(dir, &mmaplog.Options{Clock: func() time.Time { return ahead }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("stamped an hour ahead")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for _, exact := range []bool{false, true} {
		w, err := mmaplog.Open(dir, &mmaplog.Options{ExactClock: exact})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 3; i++ {
			if _, err := w.Write([]byte("after the restart")); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	r, err := tail.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var last int64
	n := 0
	for r.Next() {
		rec := r.Record()
		if rec.Time < last {
			t.Fatalf("record %d stamped %v, before the record before it (%v)", rec.Seq, time.Unix(0, rec.Time), time.Unix(0, last))
		}
		last = rec.Time
		n++
	}
	if err := r.Err(); err != nil || n != 7 {
		t.Fatalf("read %d records (%v), want 7", n, err)
	}
}
