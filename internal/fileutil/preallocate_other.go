//go:build unix && !linux

package fileutil

import (
	"os"
)

// Preallocate writes zeros over the first size bytes of f, which allocates the
// blocks on every filesystem. Linux uses fallocate(2) instead.
func Preallocate(f *os.File, size int64) error { return writeZeros(f, size) }

// PrefaultWrite touches every page of b with a write.
func PrefaultWrite(b []byte) error {
	touchPages(b)
	return nil
}

// StartWriteback falls back to fdatasync where sync_file_range is missing.
func StartWriteback(f *os.File, off, n int64) error { return f.Sync() }

// DropCache is a no-op where posix_fadvise is not available.
func DropCache(f *os.File, off, n int64) error { return nil }
