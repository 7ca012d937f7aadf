package tail

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/mmaplog/mmaplog/ring"
	"github.com/mmaplog/mmaplog/rotate"
)

// Finding is one problem, or one note, Verify found. A finding about damage
// is a view of the Damage a Reader meets (Path, From as Offset, Lost, Err):
// Verify walks the log as a Reader does.
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
	Started    bool   // false for a segment prepared but never written, or unreadable
	DiskBytes  int64  // size on disk
	DataBytes  int64  // bytes of header and records (before the closing padding)
	FirstSeq   uint64 // sequence number of its first record
	NextSeq    uint64 // sequence number after its last record
	Records    uint64 // valid data records
	Full       bool   // closed by padding (rolled)
	Damaged    bool   // could not be read (the findings say why)
	LogID      [16]byte
}

// Report is what Verify found in a log directory.
type Report struct {
	Dir      string
	Segments []SegmentReport
	Records  uint64
	// Findings are corruption: damaged records, holes, segments missing
	// in the middle, unreadable segments. A clean log has none.
	Findings []Finding
	// Notes are not corruption but worth knowing: foreign files, leftover
	// temporary files, segments prepared but unused, ranges repaired
	// earlier, writes a crashed writer left unfinished (no record lost),
	// segments retention removed while Verify read.
	Notes []Finding
}

// Clean reports whether Verify found no corruption.
func (r *Report) Clean() bool { return len(r.Findings) == 0 }

// Lost returns the records lost that the findings and notes count: the
// number a Reader (mmaptail cat) reading the log reports.
func (r *Report) Lost() uint64 {
	var n uint64
	for _, f := range r.Findings {
		n += f.Lost
	}
	for _, f := range r.Notes {
		n += f.Lost
	}
	return n
}

// Verify checks every segment of the log in dir: headers, every record's
// length, flags and checksum, the sequence numbers within and across
// segments, and that all segments belong to the same log. It reads the log
// with a Reader (the same decoder, the same view of the segment set, the
// same rules for what damage costs), so it counts exactly the records lost
// that a Reader reports, and it reads without taking the writer's lock: on a
// live log it checks up to the last published record, follows segments that
// are compressed or removed under it, and says so in notes. The error is for
// a directory that cannot be read at all (or holds no log); damage goes
// into the report.
func Verify(dir string) (*Report, error) {
	l, err := rotate.List(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("verify: no log directory %s: %w", dir, fs.ErrNotExist)
		}
		return nil, fmt.Errorf("verify: %w", err)
	}
	if len(l.Segments) == 0 {
		return nil, notLog(dir)
	}
	rep := &Report{Dir: dir}
	for _, f := range l.Obstacles {
		rep.Findings = append(rep.Findings, Finding{Path: f, Offset: -1, Err: errors.New("not a regular file, at a name the writer creates (a writer refuses to open the log until it is removed)")})
	}
	for _, f := range l.Foreign {
		rep.Notes = append(rep.Notes, Finding{Path: f, Offset: -1, Err: errors.New("foreign file: not a segment of this log (ignored)")})
	}
	for _, f := range l.Temp {
		rep.Notes = append(rep.Notes, Finding{Path: f, Offset: -1, Err: errors.New("leftover temporary file of an interrupted segment preparation or compression (the writer removes it)")})
	}
	for _, d := range l.Duplicates {
		rep.Notes = append(rep.Notes, Finding{Path: d.Path, Offset: -1, Err: errors.New("second copy of a segment (a compression between its rename and the removal of the original, or interrupted there)")})
	}
	vf := &verifier{rep: rep, seen: map[uint64]bool{}}
	w := newWalker(dir, &Options{}, reading{holeWait: DefaultHoleWait})
	w.list = l
	err = vf.walk(&w)
	w.closeView()
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	// Segments the Reader did not get to: prepared by the writer and not
	// written yet (or written since it stopped).
	for _, fi := range w.list.Segments {
		if vf.seen[fi.Num] || fi.Num < vf.last {
			continue
		}
		if _, err := rotate.PeekHeader(fi); errors.Is(err, ring.ErrNotStarted) || errors.Is(err, ring.ErrShort) {
			rep.Notes = append(rep.Notes, Finding{Path: fi.Path, Offset: -1, Err: errors.New("prepared segment, not written yet")})
			rep.Segments = append(rep.Segments, SegmentReport{Path: fi.Path, Num: fi.Num, Compressed: fi.Compressed, DiskBytes: fi.Size})
		}
	}
	for _, s := range rep.Segments {
		rep.Records += s.Records
	}
	return rep, nil
}

// verifier files what the walker meets in a Report.
type verifier struct {
	rep  *Report
	seen map[uint64]bool // segments reported
	last uint64          // highest segment number reported
}

// walk walks the log to the end of what is written, as a Reader that does
// not follow does, and files what it meets.
func (vf *verifier) walk(w *walker) error {
	for {
		switch w.next() {
		case evRecord:
			w.relisted = false // a Reader's Next would return here
		case evDamage:
			vf.damage(w.ev.damage)
		case evSegment:
			vf.add(w.ev.seg)
			vf.damage(w.ev.notice)
		case evEnd:
			if w.view != nil {
				vf.add(w.summary())
			}
			vf.damage(w.ev.notice)
			return nil
		case evProblem:
			vf.problem(w.ev.err, w.ev.seg)
		case evError:
			return w.failed
		}
	}
}

func (vf *verifier) add(s SegmentReport) {
	if vf.seen[s.Num] {
		return
	}
	vf.seen[s.Num] = true
	vf.last = max(vf.last, s.Num)
	vf.rep.Segments = append(vf.rep.Segments, s)
}

// damage files d (Err nil: none): corruption as a finding, everything else
// as a note.
func (vf *verifier) damage(d Damage) {
	if d.Err == nil {
		return
	}
	f := Finding{Path: d.Path, Offset: d.From, Lost: d.Lost, Err: d.Err}
	if d.Kind == DamageRemoved {
		f.Err = fmt.Errorf("%w (removed while verifying, or before)", d.Err)
	}
	if d.Kind.Corruption() {
		vf.rep.Findings = append(vf.rep.Findings, f)
	} else {
		vf.rep.Notes = append(vf.rep.Notes, f)
	}
}

// problem files a segment that cannot be read for another reason than
// damage: it belongs to another log than the segments before it, or it
// cannot be opened.
func (vf *verifier) problem(err error, s SegmentReport) {
	f := Finding{Path: s.Path, Offset: -1, Err: err}
	if errors.Is(err, ErrOtherLog) {
		f.Offset, f.Err = ring.OffLogID, errors.New("segment belongs to another log (log id differs from the earlier segments')")
	}
	vf.rep.Findings = append(vf.rep.Findings, f)
	vf.add(s)
}
