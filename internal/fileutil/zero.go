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
// path, which fills the page cache with the file's pages (full pages are
// written, so nothing is read from the disk). The first page is written on
// its own, and the rest in blocks aligned to 1 MiB: the page cache makes
// folios of the size and alignment of a write, and a folio is written back
// whole, so that a flush of the first page (a segment's header) writes
// that page alone, and the writer does not then fault on every page of a
// large folio made read-only by the writeback.
func WriteZeros(f *os.File, size int64) error {
	from := int64(0)
	for _, to := range []int64{int64(PageSize()), int64(len(zeroBlock)), size} {
		to = min(to, size)
		if to <= from {
			continue
		}
		if err := fillZeros(f, from, to); err != nil {
			return err
		}
		from = to
	}
	return nil
}
