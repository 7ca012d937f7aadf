//go:build linux

package fileutil

import (
	"os"

	"golang.org/x/sys/unix"
)

// Fdatasync flushes the data of f (not every metadata change) to disk.
func Fdatasync(f *os.File) error { return unix.Fdatasync(int(f.Fd())) }
