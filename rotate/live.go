package rotate

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/mmaplog/mmaplog/flush"
	"github.com/mmaplog/mmaplog/internal/fault"
	"github.com/mmaplog/mmaplog/internal/fileutil"
	"github.com/mmaplog/mmaplog/ring"
)

// Live is a segment that a writer appends to, or did until it rolled over:
// its file and mapping, the appender over them and the range of it that is
// flushed. A Lifecycle makes each (Create, Resume, Take) and, once rolled
// (Roll), finishes it and unmaps it.
type Live struct {
	*Segment
	Ring   *ring.Ring
	Region *flush.Region
	ctl    []byte // its first page mapped once more, for Appends after they published (ring.SetControl)

	// mapMu keeps the mapping alive for flushes made outside the append
	// path (Sync, the flush loop): they hold it shared (FlushMapped), and
	// the finisher takes it exclusively to unmap.
	mapMu    sync.RWMutex
	unmapped bool
}

// published returns the end of the records published from offset from on
// (at most to): a flush moves its mark only that far, so that a record
// reserved before it and published after it is flushed by the next one
// (flush.Region.SetPublished). Each reservation is one record, whose length
// word Append stores last; a zero word is a record not published yet.
func (seg *Live) published(from, to int) int {
	off := max(from, ring.HeaderSize)
	data := seg.Data
	_ = fault.Guard(seg.Path, func() error {
		for off+4 <= to {
			lw := atomic.LoadUint32(ring.LengthWord(data, off))
			if lw&ring.Committed == 0 {
				break
			}
			size := ring.RecordSize(int(lw & (ring.Padding - 1)))
			if off+size > to {
				break
			}
			off += size
		}
		return nil
	})
	return off
}

// FlushMapped runs fn on seg's region unless seg was unmapped meanwhile
// (then it was flushed as the policy asks when it was finished).
func (seg *Live) FlushMapped(fn func(*flush.Region) error) error {
	seg.mapMu.RLock()
	defer seg.mapMu.RUnlock()
	if seg.unmapped {
		return nil
	}
	return fn(seg.Region)
}

// unmap closes seg once no flush is using its mapping.
func (seg *Live) unmap() error { return seg.release(nil) }

// release is unmap, but hands the segment's mapping to pool (Pool.Keep) for
// the file's reuse instead of unmapping it, if the pool takes it.
func (seg *Live) release(pool *Pool) error {
	seg.mapMu.Lock()
	defer seg.mapMu.Unlock()
	if seg.unmapped {
		return nil
	}
	seg.unmapped = true
	if pool.Keep(seg.Num, seg.Data) {
		seg.Data = nil // the pool's now
	}
	err := seg.Close()
	if cerr := fileutil.ReleaseControl(seg.ctl); err == nil {
		err = cerr
	}
	seg.ctl = nil
	return err
}

// storeState sets the state word in seg's header, turning a memory fault
// (the file truncated by another process) into an error.
func storeState(seg *Live, st ring.State) error {
	return fault.Guard("", func() error {
		ring.StoreState(seg.Data, st)
		return nil
	})
}

// truncated returns an error wrapping ring.ErrShort if s's file is shorter
// than its mapping: another process truncated it, the bytes past its end
// are gone, and touching the mapping there would raise SIGBUS.
func truncated(s *Segment) error {
	st, err := s.File.Stat()
	if err != nil {
		return err
	}
	if st.Size() < int64(len(s.Data)) {
		return fmt.Errorf("%w: the file is %d bytes, %d when it was mapped (truncated by another process?)", ring.ErrShort, st.Size(), len(s.Data))
	}
	return nil
}
