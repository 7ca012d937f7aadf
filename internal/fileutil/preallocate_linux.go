//go:build linux

package fileutil

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Preallocate reserves disk blocks for the first size bytes of f and extends
// the file to that size, so that a later store through a shared mapping can
// never meet a full disk (which would kill the process with SIGBUS). A full
// disk is reported here, as an error wrapping unix.ENOSPC.
//
// Filesystems without fallocate(2) get the blocks written with zeros instead;
// a plain ftruncate, which leaves the file sparse, is never used.
func Preallocate(f *os.File, size int64) error {
	err := unix.Fallocate(int(f.Fd()), 0, 0, size)
	if err == nil {
		return nil
	}
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) {
		return writeZeros(f, size)
	}
	return fmt.Errorf("fallocate %s to %d bytes: %w", f.Name(), size, err)
}

// PrefaultWrite makes every page of b present and writable in this process's
// page tables, so that the first store into each page later costs no page
// fault. It uses madvise(MADV_POPULATE_WRITE) (Linux 5.14) and falls back to
// touching each page. b must be a shared mapping whose contents are not being
// written concurrently by anyone else in a way a zero-adding store could
// disturb (an atomic add of zero is used for the fallback).
func PrefaultWrite(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	err := unix.Madvise(b, unix.MADV_POPULATE_WRITE)
	if err == nil {
		return nil
	}
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		touchPages(b)
		return nil
	}
	return fmt.Errorf("madvise(MADV_POPULATE_WRITE) %d bytes: %w", len(b), err)
}

// StartWriteback asks the kernel to begin writing the dirty pages of
// [off, off+n) of f to disk without waiting for it (sync_file_range with
// SYNC_FILE_RANGE_WRITE). On Linux msync(MS_ASYNC) alone does nothing: dirty
// shared pages are already tracked by the kernel. This is what makes an
// "asynchronous flush" actually move data towards the disk.
func StartWriteback(f *os.File, off, n int64) error {
	if n <= 0 {
		return nil
	}
	return unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}

// DropCache tells the kernel that the cached pages of [off, off+n) of f will
// not be needed soon (posix_fadvise DONTNEED). Dirty pages are not dropped.
func DropCache(f *os.File, off, n int64) error {
	return unix.Fadvise(int(f.Fd()), off, n, unix.FADV_DONTNEED)
}
