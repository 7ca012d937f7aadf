package tail

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/mmaplog/mmaplog/internal/fault"
	"github.com/mmaplog/mmaplog/internal/fileutil"
	"github.com/mmaplog/mmaplog/ring"
	"github.com/mmaplog/mmaplog/rotate"
)

// Finding is one problem Verify found.
type Finding struct {
	Path   string
	Offset int64  // -1 when the finding is about the whole file
	Lost   uint64 // records lost, where the sequence numbers prove it
	Err    error
}

func (f Finding) String() string {
	s := f.Path
	if f.Offset >= 0 {
		s += fmt.Sprintf(" at offset %d", f.Offset)
	}
	s += ": " + f.Err.Error()
	if f.Lost > 0 {
		s += fmt.Sprintf(" (%d record(s) lost)", f.Lost)
	}
	return s
}

// SegmentReport summarises one segment file.
type SegmentReport struct {
	Path       string
	Num        uint64
	Compressed bool
	Started    bool   // false for a segment prepared but never written
	DiskBytes  int64  // size on disk
	DataBytes  int64  // bytes of header and records (before the closing padding)
	FirstSeq   uint64 // sequence number of its first record
	NextSeq    uint64 // sequence number after its last record
	Records    uint64 // valid data records
	Full       bool   // closed by padding (rolled)
	LogID      [16]byte
}

// Report is what Verify found in a log directory.
type Report struct {
	Dir      string
	Segments []SegmentReport
	Records  uint64
	// Findings are corruption: damaged records, holes, sequence gaps,
	// unreadable segments. A clean log has none.
	Findings []Finding
	// Notes are not corruption but worth knowing: foreign files, leftover
	// temporary files, segments prepared but unused, repaired ranges.
	Notes []Finding
}

// Clean reports whether Verify found no corruption.
func (r *Report) Clean() bool { return len(r.Findings) == 0 }

// Verify checks every segment of the log in dir: headers, every record's
// length, flags and checksum, the sequence numbers within and across
// segments, and that all segments belong to the same log. It reads without
// taking the writer's lock; a log being written verifies clean up to the
// last published record (a record being written at the end is a note). The error is for a directory that cannot be read
// at all; damage goes into the report.
func Verify(dir string) (*Report, error) {
	l, err := rotate.List(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("verify: no log directory %s", dir)
		}
		return nil, fmt.Errorf("verify: %w", err)
	}
	rep := &Report{Dir: dir}
	live, _, _ := fileutil.IsLocked(filepath.Join(dir, rotate.LockName))
	for _, f := range l.Foreign {
		rep.Notes = append(rep.Notes, Finding{Path: f, Offset: -1, Err: errors.New("foreign file: not a segment of this log (ignored)")})
	}
	for _, f := range l.Temp {
		rep.Notes = append(rep.Notes, Finding{Path: f, Offset: -1, Err: errors.New("leftover temporary file of an interrupted compression (the writer removes it)")})
	}
	for _, d := range l.Duplicates {
		rep.Notes = append(rep.Notes, Finding{Path: d.Path, Offset: -1, Err: errors.New("second copy of a segment (compression interrupted before the original was removed)")})
	}
	// The last segment with data: the writer keeps the next one prepared,
	// header still zero, ahead of time.
	lastIdx := len(l.Segments) - 1
	for lastIdx > 0 && !l.Segments[lastIdx].Compressed && !headerStarted(l.Segments[lastIdx]) {
		lastIdx--
	}
	var (
		logID    [16]byte
		haveID   bool
		nextSeq  uint64
		haveNext bool
		prevNum  uint64
	)
	for i, fi := range l.Segments {
		sr := SegmentReport{Path: fi.Path, Num: fi.Num, Compressed: fi.Compressed, DiskBytes: fi.Size}
		if i > 0 && fi.Num != prevNum+1 {
			rep.Findings = append(rep.Findings, Finding{Path: fi.Path, Offset: -1,
				Err: fmt.Errorf("segment numbers jump from %d to %d: segments missing in the middle of the log", prevNum, fi.Num)})
		}
		prevNum = fi.Num
		v, err := rotate.OpenView(fi)
		if errors.Is(err, ring.ErrNotStarted) {
			if i > lastIdx {
				rep.Notes = append(rep.Notes, Finding{Path: fi.Path, Offset: -1, Err: errors.New("prepared segment, not written yet")})
			} else {
				rep.Findings = append(rep.Findings, Finding{Path: fi.Path, Offset: 0, Err: errors.New("segment header is zero but later segments exist (zeroed or never activated)")})
			}
			rep.Segments = append(rep.Segments, sr)
			continue
		}
		if err != nil {
			off := int64(-1)
			var ce *ring.CorruptionError
			if errors.As(err, &ce) {
				off = ce.Offset
			}
			rep.Findings = append(rep.Findings, Finding{Path: fi.Path, Offset: off, Err: err})
			rep.Segments = append(rep.Segments, sr)
			continue
		}
		sr.Started = true
		sr.FirstSeq = v.Header.FirstSeq
		sr.LogID = v.Header.LogID
		if !haveID {
			logID, haveID = v.Header.LogID, true
		} else if v.Header.LogID != logID {
			rep.Findings = append(rep.Findings, Finding{Path: fi.Path, Offset: 48, Err: errors.New("segment belongs to another log (log id differs from the first segment's)")})
		}
		if haveNext && sr.FirstSeq != nextSeq {
			f := Finding{Path: fi.Path, Offset: 24, Err: fmt.Errorf("segment starts at sequence %d, the previous one ended before %d", sr.FirstSeq, nextSeq)}
			if sr.FirstSeq > nextSeq {
				f.Lost = sr.FirstSeq - nextSeq
			}
			rep.Findings = append(rep.Findings, f)
		}
		res, err := scan(v)
		truncated, size := v.Truncated, v.Header.Size
		v.Close()
		if truncated {
			rep.Findings = append(rep.Findings, Finding{Path: fi.Path, Offset: fi.Size,
				Err: fmt.Errorf("%w: file truncated to %d bytes, its header says %d (records after the cut are lost)", ring.ErrShort, fi.Size, size)})
		}
		if err != nil {
			rep.Findings = append(rep.Findings, Finding{Path: fi.Path, Offset: -1, Err: err})
		}
		last := i == lastIdx
		for _, d := range res.Damage {
			if live && last && errors.Is(d.Err, ring.ErrHole) {
				rep.Notes = append(rep.Notes, Finding{Path: fi.Path, Offset: d.From, Err: errors.New("record being written by the live writer")})
				continue
			}
			f := Finding{Path: fi.Path, Offset: d.From, Err: d.Err}
			if nr, ok := seqAt(fi, int(d.To)); ok && nr > d.Seq {
				f.Lost = nr - d.Seq
			}
			rep.Findings = append(rep.Findings, f)
		}
		for _, g := range res.Gaps {
			rep.Notes = append(rep.Notes, Finding{Path: fi.Path, Offset: g.Offset, Lost: g.To - g.From,
				Err: fmt.Errorf("sequence numbers %d to %d missing after a repaired range (lost in a crash, already reported by the writer's recovery)", g.From, g.To-1)})
		}
		if res.TailFrom > 0 && live && last {
			rep.Notes = append(rep.Notes, Finding{Path: fi.Path, Offset: int64(res.TailFrom), Err: errors.New("record being written by the live writer")})
		} else if res.TailFrom > 0 {
			f := Finding{Path: fi.Path, Offset: int64(res.TailFrom), Err: fmt.Errorf("%d bytes of garbage after the last valid record (torn or corrupt tail)", res.TailTo-res.TailFrom)}
			if last && !fi.Compressed {
				f.Err = fmt.Errorf("%w; the writer repairs it when it next opens the log", f.Err)
			}
			rep.Findings = append(rep.Findings, f)
		}
		if !last && !res.Full && !fi.Compressed {
			rep.Findings = append(rep.Findings, Finding{Path: fi.Path, Offset: int64(res.End), Err: errors.New("rolled segment is not closed: its data stops early (writer crashed before recovery ran?)")})
		}
		sr.NextSeq, sr.Records, sr.Full, sr.DataBytes = res.NextSeq, res.Records, res.Full || fi.Compressed, int64(res.DataEnd)
		rep.Records += res.Records
		nextSeq, haveNext = res.NextSeq, true
		rep.Segments = append(rep.Segments, sr)
	}
	return rep, nil
}

// headerStarted reports whether a segment was activated by its writer (its
// magic is set); damaged headers count as started, for the scan to report.
func headerStarted(fi rotate.FileInfo) bool {
	_, err := peekHeader(fi)
	return !errors.Is(err, ring.ErrNotStarted) && !errors.Is(err, fs.ErrNotExist)
}

func scan(v *rotate.View) (res ring.ScanResult, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fault.Error(r, v.Path)
		}
	}()
	defer fault.Catch()()
	res = ring.Scan(v.Data, v.Header.FirstSeq, nil)
	for i := range res.Damage {
		setPath(res.Damage[i].Err, v.Path)
	}
	return res, nil
}

// seqAt reads the sequence number of the record at off of a segment file.
func seqAt(fi rotate.FileInfo, off int) (seq uint64, ok bool) {
	v, err := rotate.OpenView(fi)
	if err != nil {
		return 0, false
	}
	defer v.Close()
	defer func() {
		if r := recover(); r != nil {
			ok = false
		}
	}()
	defer fault.Catch()()
	rec, kind, _ := ring.Decode(v.Data, off)
	return rec.Seq, kind == ring.KindRecord || kind == ring.KindPadding
}
