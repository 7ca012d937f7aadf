//go:build unix && !linux

package fileutil

import "time"

// FutexWait sleeps for the timeout where futexes are not available; callers
// re-check their condition after it returns.
func FutexWait(addr *uint32, val uint32, timeout time.Duration) { time.Sleep(timeout) }

// FutexWake does nothing where futexes are not available.
func FutexWake(addr *uint32, n int) {}
