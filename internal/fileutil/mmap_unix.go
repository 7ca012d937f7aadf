//go:build unix

package fileutil

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Map maps the first size bytes of f into memory with MAP_SHARED, so that
// stores are visible at once to every other process mapping the same file and
// reach the file through the page cache. With writable false the mapping is
// read-only and a stray store faults instead of corrupting the file.
func Map(f *os.File, size int, writable bool) ([]byte, error) {
	prot := unix.PROT_READ
	if writable {
		prot |= unix.PROT_WRITE
	}
	b, err := unix.Mmap(int(f.Fd()), 0, size, prot, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap %s (%d bytes): %w", f.Name(), size, err)
	}
	return b, nil
}

// Unmap releases a mapping made by Map. The slice must not be used afterwards.
func Unmap(b []byte) error {
	if b == nil {
		return nil
	}
	return unix.Munmap(b)
}

// Msync flushes the pages of b that hold [off, off+n) to the file. With wait
// set it is msync(MS_SYNC): the call returns when the data is on stable
// storage. Without it the call only schedules writeback (see StartWriteback).
// off and n need not be page aligned; the range is widened to whole pages.
func Msync(b []byte, off, n int, wait bool) error {
	if n <= 0 {
		return nil
	}
	start := off &^ (pageSize - 1)
	end := off + n
	if end > len(b) {
		end = len(b)
	}
	if start >= end {
		return nil
	}
	flags := unix.MS_ASYNC
	if wait {
		flags = unix.MS_SYNC
	}
	return unix.Msync(b[start:end], flags)
}

// pageSize is the system page size, fixed at start-up.
var pageSize = os.Getpagesize()

// PageSize returns the system page size.
func PageSize() int { return pageSize }
