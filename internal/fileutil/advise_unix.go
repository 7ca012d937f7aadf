//go:build unix

package fileutil

import "golang.org/x/sys/unix"

// DontNeed drops the pages of [off, off+n) of the mapping b from this
// process's page tables (madvise MADV_DONTNEED), widened inward to whole
// pages. On a shared file mapping the data stays in the page cache and in the
// file: a later access faults it back in. A reader uses it to keep its
// resident set small while it walks through a large mapped file.
func DontNeed(b []byte, off, n int) error {
	start := (off + pageSize - 1) &^ (pageSize - 1)
	end := (off + n) &^ (pageSize - 1)
	if end > len(b) {
		end = len(b) &^ (pageSize - 1)
	}
	if start >= end || start < 0 {
		return nil
	}
	return unix.Madvise(b[start:end], unix.MADV_DONTNEED)
}
