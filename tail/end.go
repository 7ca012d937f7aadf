package tail

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/mmaplog/mmaplog/internal/fault"
	"github.com/mmaplog/mmaplog/ring"
	"github.com/mmaplog/mmaplog/rotate"
)

// Extent is what a log holds right now, from the oldest record to the
// newest: for measuring how far behind a consumer is.
type Extent struct {
	FirstSeq  uint64 // sequence number of the oldest record present (its segment's first)
	FirstTime int64  // when the oldest segment was started (Unix ns)
	NextSeq   uint64 // the next record written gets this; NextSeq-1 is the newest (0: empty log)
	LastTime  int64  // when the newest record was written (Unix ns; 0 if none)
	Segment   uint64 // number of the newest started segment
	Offset    int64  // where its data ends
	// Sizes holds, for each started segment, the bytes a reader goes
	// through in it: the header's size for rolled segments, the data end
	// for the newest.
	Sizes map[uint64]int64
}

// End reads the extent of the log in dir: segment headers, and a walk of the
// newest segment (a few milliseconds for a full 64 MiB one). A directory
// without segment files gives an error wrapping ErrNotLog.
func End(dir string) (Extent, error) {
	var e Extent
	l, err := rotate.List(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return e, fmt.Errorf("no log directory %s: %w", dir, fs.ErrNotExist)
		}
		return e, err
	}
	if len(l.Segments) == 0 {
		return e, notLog(dir)
	}
	e.Sizes = map[uint64]int64{}
	var newest *rotate.FileInfo
	for i := range l.Segments {
		fi := l.Segments[i]
		h, err := rotate.PeekHeader(fi)
		if err != nil {
			continue
		}
		if e.FirstSeq == 0 {
			e.FirstSeq, e.FirstTime = h.FirstSeq, h.Created
		}
		e.Sizes[fi.Num] = int64(h.Size)
		newest = &l.Segments[i]
	}
	if newest == nil {
		return e, nil
	}
	v, err := rotate.OpenSegment(dir, newest.Num, true)
	if err != nil {
		return e, err
	}
	defer v.Close()
	var res ring.ScanResult
	var last int64
	if err := fault.Guard(v.Path, func() error {
		res = ring.Scan(v.Data, v.Header.FirstSeq, func(r ring.Record) bool {
			last = r.Time
			return true
		})
		return nil
	}); err != nil {
		return e, err
	}
	e.NextSeq, e.LastTime, e.Segment, e.Offset = res.NextSeq, last, v.Num, int64(res.DataEnd)
	e.Sizes[v.Num] = int64(res.DataEnd)
	return e, nil
}

// LogID returns the identity of the log in dir (from its newest started
// segment); ok is false if it has none yet.
func LogID(dir string) ([16]byte, bool) {
	l, err := rotate.List(dir)
	if err != nil {
		return [16]byte{}, false
	}
	for i := len(l.Segments) - 1; i >= 0; i-- {
		if h, err := rotate.PeekHeader(l.Segments[i]); err == nil {
			return h.LogID, true
		}
	}
	return [16]byte{}, false
}
