package mmaplog

import (
	"sync/atomic"
	"testing"
	"time"
)

// waitFor polls cond until it holds; the deadline only catches a hang.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting after a minute: %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// startRecordClock writes a record to w, whose record clock is stopped, and
// returns the clock's value once it is seen running. A record stops it
// again after clockIdleTicks ticks without another, which a busy machine
// may let pass between the Write and the look: then the record is written
// again (each finds the clock stopped and must start it), up to 100 times.
func startRecordClock(t *testing.T, w *Writer) int64 {
	t.Helper()
	for i := 0; i < 100; i++ {
		if _, err := w.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		if c := w.coarse.Load(); c != 0 {
			return c
		}
	}
	t.Fatal("100 records written with the record clock stopped, and none started it")
	return 0
}

func TestRecordClockRunsOnlyWhileRecordsArrive(t *testing.T) {
	w, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if w.coarse.Load() != 0 {
		t.Fatal("the record clock runs before the first record")
	}
	for round := 0; round < 2; round++ {
		// The first record starts the record clock.
		first := startRecordClock(t, w)
		// Records keep it running: every stamp comes from it, and it
		// advances.
		waitFor(t, "the record clock advances while records arrive", func() bool {
			w.Write([]byte("y"))
			return w.coarse.Load() > first
		})
		waitFor(t, "the record clock stops once records stop", func() bool { return w.coarse.Load() == 0 })
	}
}

func TestRecordTimes(t *testing.T) {
	for _, exact := range []bool{false, true} {
		w, err := Open(t.TempDir(), &Options{ExactClock: exact})
		if err != nil {
			t.Fatal(err)
		}
		var last int64
		for i := 0; i < 100000; i++ {
			before := time.Now().UnixNano()
			ts := w.stamp()
			after := time.Now().UnixNano()
			if ts > after {
				t.Fatalf("exact=%v: record %d stamped %d, after the time its Write returned (%d)", exact, i, ts, after)
			}
			// The exact clock is read in the Write: not before the
			// Write began, but for the wall clock read on two CPUs
			// (a goroutine moved meanwhile), which a VM's may show a
			// few nanoseconds apart; the record clock lags up to
			// 500 µs.
			if exact && ts < before-int64(time.Microsecond) {
				t.Fatalf("exact clock: record %d stamped %d, %d ns before its Write began (%d)", i, ts, before-ts, before)
			}
			if ts < last {
				t.Fatalf("exact=%v: record %d stamped %d, before the previous one (%d)", exact, i, ts, last)
			}
			last = ts
		}
		if exact && w.coarse.Load() != 0 {
			t.Fatal("the record clock runs under ExactClock")
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestClockOption: Options.Clock is read for every record, not only for
// the first (the record clock does not run with it). Background work may
// read it too, so each stamp is only checked to be a new reading.
func TestClockOption(t *testing.T) {
	var n atomic.Int64
	w, err := Open(t.TempDir(), &Options{Clock: func() time.Time { return time.Unix(0, n.Add(1)*1000) }})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	last := w.stamp()
	for i := 0; i < 1000; i++ {
		ts := w.stamp()
		if ts <= last {
			t.Fatalf("record %d stamped %d, not a new reading of the clock (the previous stamp was %d)", i, ts, last)
		}
		last = ts
	}
}

// TestRecordClockFloorAfterIdle: once the record clock stopped (no record
// for a while), a wall clock stepped back meanwhile does not stamp the
// next record before the last one. (The clock goroutine re-bases the clock every
// second from the real time: if it did so between the step and the stamp,
// the stamp is the real time, later anyway.)
func TestRecordClockFloorAfterIdle(t *testing.T) {
	w, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	last := startRecordClock(t, w)
	waitFor(t, "the record clock stops once records stop", func() bool {
		if c := w.coarse.Load(); c != 0 {
			last = c
			return false
		}
		return true
	})
	now := time.Now()
	w.clock.Store(&clockBase{wall: now.Add(-time.Hour).UnixNano(), mono: now}) // the wall clock stepped back an hour
	if ts := w.stamp(); ts < last {
		t.Fatalf("stamped %v after the clock stepped back, before the last stamp %v", time.Unix(0, ts), time.Unix(0, last))
	}
}
