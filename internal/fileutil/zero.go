//go:build unix

package fileutil

import (
	"fmt"
	"os"
	"sync/atomic"
	"unsafe"
)

// writeZeros allocates [0, size) of f by writing zero blocks over every part
// of it. Existing contents are kept: only the part past the current end is
// written.
func writeZeros(f *os.File, size int64) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	return fillZeros(f, st.Size(), size)
}

var zeroBlock = make([]byte, 1<<20)

func fillZeros(f *os.File, from, size int64) error {
	zero := zeroBlock
	for off := from; off < size; {
		n := int64(len(zero))
		if size-off < n {
			n = size - off
		}
		if _, err := f.WriteAt(zero[:n], off); err != nil {
			return fmt.Errorf("preallocate %s by writing zeros at offset %d: %w", f.Name(), off, err)
		}
		off += n
	}
	return nil
}

// touchPages dirties every page of b with an atomic add of zero to its first
// word, which leaves the contents unchanged even if another thread writes them.
func touchPages(b []byte) {
	for off := 0; off+4 <= len(b); off += pageSize {
		atomic.AddUint32((*uint32)(unsafe.Pointer(&b[off])), 0)
	}
}

// WriteZeros writes zeros over the first size bytes of f through the write
// path (pwrite of 1 MiB at a time), which fills the page cache with the
// file's pages; full pages are written, so nothing is read from the disk.
func WriteZeros(f *os.File, size int64) error { return fillZeros(f, 0, size) }
