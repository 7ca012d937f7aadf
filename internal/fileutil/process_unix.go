//go:build unix

package fileutil

import (
	"errors"

	"golang.org/x/sys/unix"
)

// ProcessAlive reports whether a process with this pid exists: signal 0 is
// delivered, or refused for lack of permission only.
func ProcessAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := unix.Kill(pid, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}
