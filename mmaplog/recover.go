package mmaplog

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync/atomic"

	"github.com/mmaplog/mmaplog/internal/fault"
	"github.com/mmaplog/mmaplog/internal/fileutil"
	"github.com/mmaplog/mmaplog/ring"
	"github.com/mmaplog/mmaplog/rotate"
)

// Repair is one thing Open fixed after a crash.
type Repair struct {
	Path   string // segment file
	Offset int64  // where the repaired range starts
	Length int64  // its length in bytes
	What   string // "hole" (reserved, never written), "corrupt record", "torn tail", "unclosed segment", "unused segment", "truncated segment", ...
	Lost   uint64 // sequence numbers lost with it (records that were never complete)
	Err    error  // what was found there
}

func (r Repair) String() string {
	s := fmt.Sprintf("%s: %s at offset %d (%d bytes)", r.Path, r.What, r.Offset, r.Length)
	if r.Lost > 0 {
		s += fmt.Sprintf(", %d record(s) lost", r.Lost)
	}
	if r.Err != nil {
		s += ": " + r.Err.Error()
	}
	return s
}

// Recovery returns what Open repaired: nothing after a clean Close.
func (w *Writer) Recovery() []Repair {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Repair(nil), w.recovery...)
}

// recover finds the end of the log in w.dir, repairs what a crash left, and
// returns the segment to append to.
func (w *Writer) recover() (*segment, error) {
	l, err := rotate.List(w.dir)
	if err != nil {
		return nil, fmt.Errorf("mmaplog: %w", err)
	}
	// Temporary files are segments whose preparation or compression a
	// crash interrupted: they never held records.
	for _, t := range l.Temp {
		if err := os.Remove(t); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("mmaplog: remove leftover temporary file: %w", err)
		}
		w.recovery = append(w.recovery, Repair{Path: t, What: "leftover temporary file"})
	}
	segs := l.Segments
	// Segments prepared but never activated hold nothing: remove them.
	for len(segs) > 0 {
		last := segs[len(segs)-1]
		if last.Compressed || !notStarted(last.Path) {
			break
		}
		if err := os.Remove(last.Path); err != nil {
			return nil, fmt.Errorf("mmaplog: remove unused segment: %w", err)
		}
		w.recovery = append(w.recovery, Repair{Path: last.Path, What: "unused segment", Length: last.Size})
		segs = segs[:len(segs)-1]
	}
	if len(segs) == 0 {
		if w.logID, err = newLogID(); err != nil {
			return nil, err
		}
		return w.newSegment(1, 1)
	}
	// Rolled segments that were never finished may hold holes left by
	// goroutines that were writing when the process died.
	for _, fi := range segs[:len(segs)-1] {
		if fi.Compressed || sealedFlag(fi.Path) {
			continue
		}
		seg, h, err := openSegment(fi)
		if err != nil {
			// A damaged rolled segment does not stop the log: readers
			// report it; the writer leaves it as it is.
			w.recovery = append(w.recovery, Repair{Path: fi.Path, What: "damaged rolled segment left as it is", Err: err})
			continue
		}
		if h.Size == uint64(len(seg.Data)) {
			_, err = w.repair(seg, h, false)
		}
		seg.Close()
		if err != nil {
			return nil, err
		}
	}
	last := segs[len(segs)-1]
	if last.Compressed {
		v, err := rotate.OpenView(last)
		if err != nil {
			return nil, fmt.Errorf("mmaplog: the last segment is damaged: %w (move it away to start a new segment)", err)
		}
		res, err := scanGuarded(v.Data, v.Header.FirstSeq, v.Path)
		w.logID = v.Header.LogID
		v.Close()
		if err != nil {
			return nil, fmt.Errorf("mmaplog: %w", err)
		}
		return w.newSegment(last.Num+1, res.NextSeq)
	}
	seg, h, err := openSegment(last)
	if err != nil {
		advice := "move the file out of the log directory to go on (its records are then lost)"
		if errors.Is(err, ring.ErrVersion) {
			advice = "it was written by another version of mmaplog: use that version, or move the directory away"
		}
		return nil, fmt.Errorf("mmaplog: cannot continue the log: %w; %s", err, advice)
	}
	w.logID = h.LogID
	if h.Size > uint64(len(seg.Data)) {
		// Someone truncated the file: keep what is left for readers and
		// go on in a new segment.
		res, err := scanGuarded(seg.Data, h.FirstSeq, seg.Path)
		seg.Close()
		if err != nil {
			return nil, fmt.Errorf("mmaplog: %w", err)
		}
		w.recovery = append(w.recovery, Repair{Path: last.Path, Offset: int64(len(seg.Data)), Length: int64(h.Size) - int64(len(seg.Data)), What: "truncated segment",
			Err: &ring.CorruptionError{Path: last.Path, Offset: int64(len(seg.Data)), Err: fmt.Errorf("%w: file is %d bytes, its header says %d; continuing in a new segment", ring.ErrShort, len(seg.Data), h.Size)}})
		return w.newSegment(last.Num+1, res.NextSeq)
	}
	res, err := w.repair(seg, h, true)
	if err != nil {
		seg.Close()
		return nil, err
	}
	if res.Full {
		seg.Close()
		return w.newSegment(last.Num+1, res.NextSeq)
	}
	r, err := ring.New(seg.Data, res.End, h.FirstSeq, res.NextSeq-h.FirstSeq)
	if err != nil {
		seg.Close()
		return nil, fmt.Errorf("mmaplog: %s: %w", seg.Path, err)
	}
	if !w.opts.NoPrefault {
		page := fileutil.PageSize()
		fileutil.PrefaultWrite(seg.Data[res.End/page*page:])
	}
	w.finishedNum.Store(last.Num)
	w.syncedBelow = last.Num
	return w.newSegmentState(seg, r, res.End), nil
}

// newSegment creates and activates segment num with first sequence number
// firstSeq, synchronously (at Open).
func (w *Writer) newSegment(num, firstSeq uint64) (*segment, error) {
	w.applyRetention(num, num, w.opts.SegmentSize, false)
	s, err := rotate.Create(w.dir, num, w.opts.SegmentSize, w.opts.FileMode, !w.opts.NoPrefault)
	if err != nil {
		return nil, fmt.Errorf("mmaplog: %w", err)
	}
	if err := fileutil.SyncDir(w.dir); err != nil {
		s.Remove()
		return nil, fmt.Errorf("mmaplog: %w", err)
	}
	h := ring.Header{Segment: num, FirstSeq: firstSeq, Created: w.opts.now().UnixNano(), Size: uint64(len(s.Data)), LogID: w.logID}
	ring.PutHeader(s.Data, h)
	r, err := ring.New(s.Data, ring.HeaderSize, firstSeq, 0)
	if err != nil {
		s.Remove()
		return nil, err
	}
	w.finishedNum.Store(num)
	w.syncedBelow = num
	return w.newSegmentState(s, r, 0), nil
}

// openSegment maps a plain segment read-write and validates its header.
func openSegment(fi rotate.FileInfo) (*rotate.Segment, ring.Header, error) {
	seg, err := rotate.OpenWritable(fi.Path, fi.Num)
	if err != nil {
		return nil, ring.Header{}, err
	}
	h, err := ring.ParseHeader(seg.Data, false)
	if err == nil && h.Size < uint64(len(seg.Data)) {
		err = &ring.CorruptionError{Offset: 40, Err: fmt.Errorf("%w: header says %d bytes, the file has %d", ring.ErrBadLength, h.Size, len(seg.Data))}
	}
	if err == nil && h.Segment != fi.Num {
		err = &ring.CorruptionError{Offset: 16, Err: fmt.Errorf("header names segment %d, the file name %d", h.Segment, fi.Num)}
	}
	if err != nil {
		seg.Close()
		var ce *ring.CorruptionError
		if errors.As(err, &ce) {
			ce.Path = fi.Path
		}
		return nil, ring.Header{}, err
	}
	return seg, h, nil
}

// repair scans a writable segment and turns damage into padding: holes left
// by writes that never completed, corrupt records followed by valid ones,
// and (for the last segment) garbage after the last valid record, which is
// zeroed. A rolled segment that does not end with padding gets it. Repairs
// are flushed to disk before the log is used.
func (w *Writer) repair(seg *rotate.Segment, h ring.Header, last bool) (res ring.ScanResult, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fault.Error(r, seg.Path)
		}
	}()
	defer fault.Catch()()
	data := seg.Data
	res = ring.Scan(data, h.FirstSeq, nil)
	now := w.opts.now().UnixNano()
	lo, hi := len(data), 0
	touched := func(from, to int) { lo, hi = min(lo, from), max(hi, to) }
	for _, d := range res.Damage {
		what := "hole"
		if !errors.Is(d.Err, ring.ErrHole) {
			what = "corrupt record"
		}
		rep := Repair{Path: seg.Path, Offset: d.From, Length: d.To - d.From, What: what, Err: d.Err}
		if next, kind, _ := ring.Decode(data, int(d.To)); kind == ring.KindRecord || kind == ring.KindPadding {
			rep.Lost = next.Seq - d.Seq
		}
		if d.To-d.From < ring.RecordHeaderSize {
			return res, &ring.CorruptionError{Path: seg.Path, Offset: d.From, Err: fmt.Errorf("damaged range of %d bytes is too short to pad: %w", d.To-d.From, d.Err)}
		}
		ring.PutPadding(data[d.From:d.To], d.Seq, now)
		touched(int(d.From), int(d.From)+ring.RecordHeaderSize)
		w.recovery = append(w.recovery, rep)
	}
	if res.TailFrom > 0 {
		clear(data[res.TailFrom:res.TailTo])
		touched(res.TailFrom, res.TailTo)
		w.recovery = append(w.recovery, Repair{Path: seg.Path, Offset: int64(res.TailFrom), Length: int64(res.TailTo - res.TailFrom), What: "torn tail",
			Err: &ring.CorruptionError{Path: seg.Path, Offset: int64(res.TailFrom), Err: ring.ErrHole}})
	}
	if !last && !res.Full {
		if len(data)-res.End >= ring.RecordHeaderSize {
			ring.PutPadding(data[res.End:], res.NextSeq, now)
			touched(res.End, res.End+ring.RecordHeaderSize)
		}
		w.recovery = append(w.recovery, Repair{Path: seg.Path, Offset: int64(res.End), Length: int64(len(data) - res.End), What: "unclosed segment"})
		res.Full = true
	}
	if hi > lo {
		if err := fileutil.Msync(data, lo, hi-lo, true); err != nil {
			return res, fmt.Errorf("mmaplog: flush repairs of %s: %w", seg.Path, err)
		}
	}
	if !last {
		atomic.StoreUint32(ring.Control(data, ring.OffSealed), 1)
	}
	return res, nil
}

func scanGuarded(b []byte, firstSeq uint64, path string) (res ring.ScanResult, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fault.Error(r, path)
		}
	}()
	defer fault.Catch()()
	return ring.Scan(b, firstSeq, nil), nil
}

// notStarted reports whether a segment file's magic is zero: a segment
// prepared by a writer that never activated it (activation stores the magic
// last, and no record is appended before it), so it holds nothing. A file
// shorter than the magic and all zero counts too.
func notStarted(path string) bool {
	f, err := fileutil.OpenNoFollow(path, false)
	if err != nil {
		return false
	}
	defer f.Close()
	var m [8]byte
	n, _ := f.ReadAt(m[:], 0)
	for _, b := range m[:n] {
		if b != 0 {
			return false
		}
	}
	return true
}

// sealedFlag reads the sealed flag of a plain segment's control area.
func sealedFlag(path string) bool {
	f, err := fileutil.OpenNoFollow(path, false)
	if err != nil {
		return false
	}
	defer f.Close()
	var b [4]byte
	if n, _ := f.ReadAt(b[:], ring.OffSealed); n != 4 {
		return false
	}
	return b[0] == 1 && b[1] == 0 && b[2] == 0 && b[3] == 0
}
