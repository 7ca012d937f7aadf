//go:build linux

package fileutil

import (
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Futex operations without FUTEX_PRIVATE_FLAG, so that they work across
// processes on a word in a MAP_SHARED file mapping.
const (
	futexWait = 0
	futexWake = 1
)

// FutexWait sleeps while *addr == val, until FutexWake on the same word (in
// any process mapping the same file), the timeout, or a spurious wake-up.
// The caller re-checks its condition after it returns.
func FutexWait(addr *uint32, val uint32, timeout time.Duration) {
	ts := unix.NsecToTimespec(int64(timeout))
	unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexWait, uintptr(val), uintptr(unsafe.Pointer(&ts)), 0, 0)
}

// FutexWake wakes up to n waiters sleeping on addr.
func FutexWake(addr *uint32, n int) {
	unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexWake, uintptr(n), 0, 0, 0)
}
