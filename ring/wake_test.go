package ring

import (
	"testing"
	"time"
)

// TestOneWakeUpPerArming: the writer wakes the readers once for each value
// of the deadline word; records written while they are awake (they have
// not armed it again) cost no wake-up, and every arming, by one reader or
// by several with the same deadline, changes the word and so gets one.
func TestOneWakeUpPerArming(t *testing.T) {
	buf := make([]byte, 64<<10)
	r, err := New(buf, HeaderSize, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	wakes := 0
	r.SetHooks(func(*uint32) { wakes++ }, nil)
	now := time.Now().UnixNano()
	appendN := func(n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			if _, err := r.Append(0, now, []byte("record")); err != nil {
				t.Fatal(err)
			}
		}
	}
	appendN(10)
	if wakes != 0 {
		t.Fatalf("%d wake-ups with no reader armed", wakes)
	}
	until := now + int64(time.Millisecond)
	ArmWake(buf, now, until)
	appendN(10)
	if wakes != 1 {
		t.Fatalf("%d wake-ups for 10 records after one arming, want 1", wakes)
	}
	// Two readers arm with the same deadline: the word moves each time.
	before := WakeUntil(buf).Load()
	ArmWake(buf, now, until)
	ArmWake(buf, now, until)
	if got := WakeUntil(buf).Load(); got != before+2 {
		t.Fatalf("deadline %d after two armings at %d, want %d", got, before, before+2)
	}
	appendN(10)
	if wakes != 2 {
		t.Fatalf("%d wake-ups after the second armings, want 2", wakes)
	}
	// A record stamped past the deadline wakes no one.
	ArmWake(buf, now, until)
	if _, err := r.Append(0, until+int64(time.Millisecond), []byte("late")); err != nil {
		t.Fatal(err)
	}
	if wakes != 2 {
		t.Fatalf("%d wake-ups after a record past the deadline, want 2", wakes)
	}
}
