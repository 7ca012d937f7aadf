package counter

import (
	"fmt"
	"runtime/debug"
	"sync/atomic"

	"github.com/mmaplog/mmaplog/internal/fault"
)

// health is what a Map's producers in this process know about its region:
// once touching it raised a memory fault (its file was truncated by another
// process), the region is lost to this process and every later increment is
// counted here instead of faulting again. It lives in process memory, never
// in the region.
type health struct {
	where string
	// fixed: the region cannot shrink (a SysV segment, whose size is fixed
	// at creation, or anonymous memory no other process can reach), so
	// touching it never faults and increments need no guard.
	fixed  bool
	broken atomic.Bool
	lost   atomic.Uint64 // increments (the n of each Add) that went nowhere
	faults atomic.Uint64 // Adds that faulted
	err    atomic.Pointer[error]
}

// add adds n to the counter v. On a region that cannot shrink it is the
// atomic add alone (and inlined into Counter.Inc); on a file or POSIX
// shared memory object, which another process can truncate, it is
// addGuarded.
func (h *health) add(v *atomic.Uint64, n uint64) {
	if h.fixed {
		v.Add(n)
		return
	}
	h.addGuarded(v, n)
}

// addGuarded adds n to v, turning a memory fault into a recorded error: one
// load of a process-local flag, the atomic add, and the fault guard around
// it (the goroutine's SetPanicOnFault set and restored, and a deferred
// recover that costs nothing unless a fault happens).
func (h *health) addGuarded(v *atomic.Uint64, n uint64) {
	if h.broken.Load() {
		h.lost.Add(n)
		return
	}
	defer h.recoverAdd(debug.SetPanicOnFault(true), n)
	v.Add(n)
}

// recoverAdd is addGuarded's deferred guard: it restores the goroutine's setting
// and records a fault, if one happened. Any other panic goes on.
func (h *health) recoverAdd(was bool, n uint64) {
	debug.SetPanicOnFault(was)
	if r := recover(); r != nil {
		h.fail(fault.Error(r, h.where)) // re-panics what is not a memory fault
		h.faults.Add(1)
		h.lost.Add(n)
	}
}

// fail marks the region lost and keeps the first error.
func (h *health) fail(err error) {
	e := fmt.Errorf("counter: %w; increments from now on are counted as lost (Map.Lost); reopen the map once the region is restored", err)
	h.err.CompareAndSwap(nil, &e)
	h.broken.Store(true)
}

// guard is for the slow paths (names, loads): it turns a fault while
// touching the region into an error, and marks the region lost.
func (h *health) guard(err *error) {
	if r := recover(); r != nil {
		e := fault.Error(r, h.where)
		h.fail(e)
		if err != nil {
			*err = e
		}
	}
}
