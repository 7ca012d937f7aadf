package fault

import (
	"errors"
	"os"
	"runtime/debug"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
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

// Guard returns fn's error, restores the setting, and lets other panics
// through.
func TestGuard(t *testing.T) {
	debug.SetPanicOnFault(false)
	want := errors.New("fn's own error")
	if err := Guard("x", func() error { return want }); err != want {
		t.Fatalf("Guard returned %v, want fn's error", err)
	}
	if on := debug.SetPanicOnFault(false); on {
		t.Fatal("Guard left SetPanicOnFault on")
	}
	defer func() {
		if r := recover(); r != "not a fault" {
			t.Fatalf("recovered %v, want the panic to go through", r)
		}
	}()
	Guard("x", func() error { panic("not a fault") })
}

// A fault on a truncated mapping becomes an error naming where.
func TestGuardTurnsAFaultIntoAnError(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "fault")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	page := os.Getpagesize()
	if err := f.Truncate(int64(2 * page)); err != nil {
		t.Fatal(err)
	}
	b, err := unix.Mmap(int(f.Fd()), 0, 2*page, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(b)
	f.Truncate(0)
	var sum byte
	err = Guard("the-file", func() error {
		sum += b[page+10]
		return nil
	})
	if !errors.Is(err, ErrFault) || !strings.Contains(err.Error(), "the-file") {
		t.Fatalf("got %v, want ErrFault naming the file", err)
	}
}

// Guard with a function literal that does not escape costs no allocation.
func TestGuardDoesNotAllocate(t *testing.T) {
	x := 0
	f := func() { Guard("", func() error { x++; return nil }) }
	if n := testing.AllocsPerRun(1000, f); n != 0 {
		t.Errorf("Guard: %v allocations", n)
	}
}
