//go:build linux

package fileutil

import (
	"runtime"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// StoreFaults stores into the word at p (an atomic add of zero, which
// leaves it as it is) and returns the page faults the store took. For a
// shared file mapping that is 1 if the page was written back since the
// last store into it (writeback write-protects the page, so that the next
// store marks it dirty again), and 0 if it is still dirty: a way for tests
// to see whether a flush reached a page, without root.
func StoreFaults(p *uint32) int64 {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var before, after unix.Rusage
	unix.Getrusage(unix.RUSAGE_THREAD, &before)
	atomic.AddUint32(p, 0)
	unix.Getrusage(unix.RUSAGE_THREAD, &after)
	return after.Minflt + after.Majflt - before.Minflt - before.Majflt
}
