package flush

import (
	"os"
	"sync"
	"sync/atomic"

	"github.com/mmaplog/mmaplog/internal/fileutil"
)

// Region tracks how much of one mapped segment has been flushed, so that a
// flush covers only the dirty range: the bytes written since the last flush.
//
// Writers reserve space and publish records into it concurrently, so the
// end of what is reserved is not the end of what is written: a record
// reserved before a flush and published after it is not in the pages that
// flush wrote. A Region given a Published function moves its mark only to
// the end of the records published when the flush began; the next flush
// starts there, and covers what was still being written.
type Region struct {
	data      []byte
	file      *os.File
	published func(from, to int) int
	mu        sync.Mutex   // one flush at a time
	flushed   atomic.Int64 // [0, flushed) is on stable storage
}

// NewRegion tracks data, a mapping of file, whose first clean bytes are
// already on stable storage (or need not be flushed).
func NewRegion(data []byte, file *os.File, clean int) *Region {
	r := &Region{data: data, file: file}
	r.flushed.Store(int64(clean))
	return r
}

// SetPublished sets the function that returns the end of what is written
// for good from offset from on, at most to: the end of the records, from
// the first one at or after from, that are published (whole, and will not
// change). Call it before the first Flush. Without it the whole range a
// Flush is given counts as written.
func (r *Region) SetPublished(fn func(from, to int) int) { r.published = fn }

// Flushed returns the offset below which everything is flushed.
func (r *Region) Flushed() int64 { return r.flushed.Load() }

// Flush flushes [Flushed(), to). With wait set it uses msync(MS_SYNC) and
// returns once the range is on stable storage, and advances Flushed to the
// end of what was published when it began (see SetPublished); otherwise it
// only starts the writeback (msync MS_ASYNC plus sync_file_range) and does
// not advance Flushed.
func (r *Region) Flush(to int, wait bool) error {
	if to > len(r.data) {
		to = len(r.data)
	}
	from := r.flushed.Load()
	if int64(to) <= from {
		return nil
	}
	if !wait {
		if err := fileutil.Msync(r.data, int(from), to-int(from), false); err != nil {
			return err
		}
		return fileutil.StartWriteback(r.file, from, int64(to)-from)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	from = r.flushed.Load()
	if int64(to) <= from {
		return nil
	}
	// What is published now is in the pages the msync writes; what is
	// published later may not be, so the mark stops before it.
	settled := to
	if r.published != nil {
		settled = min(r.published(int(from), to), to)
	}
	if err := fileutil.Msync(r.data, int(from), to-int(from), true); err != nil {
		return err
	}
	r.flushed.Store(int64(max(settled, int(from))))
	return nil
}

// FlushRange msyncs (MS_SYNC) exactly the pages holding [from, to), without
// touching the tracked range: what the "write" policy does for each record.
func (r *Region) FlushRange(from, to int) error {
	return fileutil.Msync(r.data, from, to-from, true)
}
