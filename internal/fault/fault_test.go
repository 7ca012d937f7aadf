package fault

import (
	"runtime/debug"
	"testing"
)

// Catch turns the setting on and its function restores the one before,
// whichever it was.
func TestCatchRestores(t *testing.T) {
	for _, before := range []bool{false, true} {
		debug.SetPanicOnFault(before)
		restore := Catch()
		if now := debug.SetPanicOnFault(true); !now {
			t.Errorf("before %v: Catch left SetPanicOnFault off", before)
		}
		restore()
		if after := debug.SetPanicOnFault(false); after != before {
			t.Errorf("before %v: restored to %v", before, after)
		}
	}
}

// defer Catch()() costs no allocation: the tail reader's Wait runs it for
// every record a follower waits for.
func TestCatchDoesNotAllocate(t *testing.T) {
	f := func() { defer Catch()() }
	if n := testing.AllocsPerRun(1000, f); n != 0 {
		t.Errorf("defer Catch()(): %v allocations", n)
	}
}
