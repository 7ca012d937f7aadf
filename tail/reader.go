package tail

import (
	"errors"
	"fmt"
	"runtime/debug"

	"github.com/mmaplog/mmaplog/internal/fault"
	"github.com/mmaplog/mmaplog/internal/fileutil"
	"github.com/mmaplog/mmaplog/ring"
	"github.com/mmaplog/mmaplog/rotate"
)

// Record is one log record. Payload points into the mapped segment: it is
// valid until the next call to Next or Close; copy it to keep it.
type Record struct {
	Seq     uint64 // sequence number: one more than the previous record's
	Time    int64  // when it was written, Unix nanoseconds
	Type    uint8  // record type (the level, for log records)
	Payload []byte
	Segment uint64 // number of the segment holding it
	Offset  int64  // its offset in the segment
}

// Damage is a range that a Reader skipped or could not read.
type Damage struct {
	Path     string
	From, To int64  // byte range in the segment; To is -1 for "to the end of the file"
	Lost     uint64 // records lost, as the sequence numbers prove (0 if unknown)
	Err      error
}

func (d Damage) String() string {
	to := fmt.Sprint(d.To)
	if d.To < 0 {
		to = "end"
	}
	s := fmt.Sprintf("%s: offsets %d to %s skipped", d.Path, d.From, to)
	if d.Lost > 0 {
		s += fmt.Sprintf(", %d record(s) lost", d.Lost)
	}
	if d.Err != nil {
		s += ": " + d.Err.Error()
	}
	return s
}

// Options configure a Reader. A nil *Options reads from the first record.
type Options struct {
	// FromSeq skips records with lower sequence numbers. 0 reads from the
	// oldest record present.
	FromSeq uint64
	// OnDamage, if set, is called for every damaged range as it is met
	// (they are also collected; see Reader.Damage).
	OnDamage func(Damage)
}

// Reader reads the records of a log in sequence order.
type Reader struct {
	dir     string
	opts    Options
	segs    []rotate.FileInfo
	idx     int
	view    *rotate.View
	pos     int
	nextSeq uint64
	started bool // nextSeq is known
	rec     Record
	err     error
	damage  []Damage
	lost    uint64
}

// Open opens the log in dir for reading. It does not take the writer's lock:
// reading while a writer appends is safe.
func Open(dir string, o *Options) (*Reader, error) {
	l, err := rotate.List(dir)
	if err != nil {
		return nil, fmt.Errorf("tail: %w", err)
	}
	r := &Reader{dir: dir, segs: l.Segments}
	if o != nil {
		r.opts = *o
	}
	return r, nil
}

// Next advances to the next record and reports whether there is one. At the
// end of the log, or on an error that stops reading, it returns false; Err
// tells which.
func (r *Reader) Next() bool {
	if r.err != nil {
		return false
	}
	for {
		if r.view == nil && !r.openNext() {
			return false
		}
		ok, more := r.step()
		if ok {
			return true
		}
		if !more {
			return false
		}
	}
}

// step decodes at the current position. ok: a record is ready; more: keep
// going (false at the end of the log or on a fatal error).
func (r *Reader) step() (ok, more bool) {
	v := r.view
	defer func() {
		if p := recover(); p != nil {
			err := fault.Error(p, v.Path)
			r.report(Damage{Path: v.Path, From: int64(r.pos), To: -1, Err: err})
			r.closeView()
			more = true
		}
	}()
	old := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(old)

	rec, kind, err := ring.Decode(v.Data, r.pos)
	switch kind {
	case ring.KindRecord, ring.KindPadding:
		if rec.Seq < r.nextSeq {
			err = &ring.CorruptionError{Offset: int64(r.pos), Err: fmt.Errorf("%w: %d after %d", ring.ErrSequence, rec.Seq, r.nextSeq)}
			break
		}
		if rec.Seq > r.nextSeq {
			r.report(Damage{Path: v.Path, From: int64(r.pos), To: int64(r.pos), Lost: rec.Seq - r.nextSeq,
				Err: fmt.Errorf("sequence jumps from %d to %d (records removed by an earlier repair)", r.nextSeq, rec.Seq)})
		}
		r.pos += rec.Size
		if kind == ring.KindPadding {
			r.nextSeq = rec.Seq
			return false, true
		}
		r.nextSeq = rec.Seq + 1
		if rec.Seq < r.opts.FromSeq {
			return false, true
		}
		r.rec = Record{Seq: rec.Seq, Time: rec.Time, Type: rec.Type, Payload: rec.Payload, Segment: v.Num, Offset: rec.Offset}
		return true, true
	case ring.KindEnd:
		if v.Truncated {
			r.report(Damage{Path: v.Path, From: int64(len(v.Data)), To: -1,
				Err: &ring.CorruptionError{Path: v.Path, Offset: int64(len(v.Data)), Err: fmt.Errorf("%w: file truncated to %d bytes, its header says %d", ring.ErrShort, len(v.Data), v.Header.Size)}})
		}
		r.closeView()
		return false, true
	case ring.KindEmpty:
		if !v.Compressed && !r.laterSegmentStarted() {
			// The end of the data written so far.
			if v.Truncated {
				r.report(Damage{Path: v.Path, From: int64(len(v.Data)), To: -1,
					Err: &ring.CorruptionError{Path: v.Path, Offset: int64(len(v.Data)), Err: fmt.Errorf("%w: file truncated to %d bytes, its header says %d", ring.ErrShort, len(v.Data), v.Header.Size)}})
			}
			r.closeView()
			r.idx = len(r.segs)
			return false, false
		}
	}
	// A hole or a corrupt record: skip to the next provably valid record.
	if err == nil {
		err = &ring.CorruptionError{Offset: int64(r.pos), Err: ring.ErrHole}
	}
	setPath(err, v.Path)
	next, found, _ := ring.Resync(v.Data, r.pos, r.pos, r.nextSeq)
	if found {
		d := Damage{Path: v.Path, From: int64(r.pos), To: int64(next), Err: err}
		if nr, _, _ := ring.Decode(v.Data, next); nr.Seq > r.nextSeq {
			d.Lost = nr.Seq - r.nextSeq
			r.nextSeq = nr.Seq
		}
		r.report(d)
		r.pos = next
		return false, true
	}
	// Nothing valid follows in this segment: the next segment's header
	// says where the log goes on.
	if v.Truncated && kind != ring.KindCorrupt {
		err = &ring.CorruptionError{Path: v.Path, Offset: int64(len(v.Data)), Err: fmt.Errorf("%w: file truncated to %d bytes, its header says %d", ring.ErrShort, len(v.Data), v.Header.Size)}
	}
	r.report(Damage{Path: v.Path, From: int64(r.pos), To: -1, Err: err})
	r.closeView()
	return false, true
}

// laterSegmentStarted reports whether a segment after the current one has
// been activated by the writer. If none has, a zero length word in the
// current segment is the end of the data written so far (the writer keeps
// the next segment prepared, with a zero header, before it needs it).
func (r *Reader) laterSegmentStarted() bool {
	for _, fi := range r.segs[r.idx+1:] {
		if fi.Compressed || started(fi.Path) {
			return true
		}
	}
	return false
}

// started reads the magic of a plain segment file: zero means prepared but
// not activated.
func started(path string) bool {
	f, err := fileutil.OpenNoFollow(path, false)
	if err != nil {
		return true // let OpenView report what is wrong with it
	}
	defer f.Close()
	var m [8]byte
	if n, _ := f.ReadAt(m[:], 0); n < len(m) {
		return true
	}
	return m != [8]byte{}
}

// openNext opens the next segment; false at the end of the log or on error.
func (r *Reader) openNext() bool {
	for r.idx < len(r.segs) {
		fi := r.segs[r.idx]
		v, err := rotate.OpenView(fi)
		if errors.Is(err, ring.ErrNotStarted) {
			// Prepared by the writer but not used yet: the end.
			r.idx = len(r.segs)
			return false
		}
		if err != nil {
			var ce *ring.CorruptionError
			if errors.As(err, &ce) {
				r.report(Damage{Path: fi.Path, From: 0, To: -1, Err: err})
				r.idx++
				continue
			}
			r.err = fmt.Errorf("tail: %w", err)
			return false
		}
		first := v.Header.FirstSeq
		switch {
		case !r.started:
			r.started = true
			if r.opts.FromSeq > 0 && first > r.opts.FromSeq {
				r.report(Damage{Path: fi.Path, From: 0, To: 0, Lost: first - r.opts.FromSeq,
					Err: fmt.Errorf("records from %d on were asked for, the oldest segment starts at %d (removed by retention)", r.opts.FromSeq, first)})
			}
		case first > r.nextSeq:
			r.report(Damage{Path: fi.Path, From: 0, To: 0, Lost: first - r.nextSeq,
				Err: fmt.Errorf("segment starts at sequence %d, %d expected (records missing before it)", first, r.nextSeq)})
		case first < r.nextSeq:
			r.report(Damage{Path: fi.Path, From: 0, To: -1,
				Err: &ring.CorruptionError{Path: fi.Path, Offset: 24, Err: fmt.Errorf("%w: segment starts at %d, the previous one ended at %d", ring.ErrSequence, first, r.nextSeq)}})
			v.Close()
			r.idx++
			continue
		}
		r.nextSeq = first
		r.view = v
		r.pos = ring.HeaderSize
		return true
	}
	return false
}

func (r *Reader) closeView() {
	if r.view != nil {
		r.view.Close()
		r.view = nil
		r.idx++
	}
}

func (r *Reader) report(d Damage) {
	r.damage = append(r.damage, d)
	r.lost += d.Lost
	if r.opts.OnDamage != nil {
		r.opts.OnDamage(d)
	}
}

func setPath(err error, path string) {
	var ce *ring.CorruptionError
	if errors.As(err, &ce) && ce.Path == "" {
		ce.Path = path
	}
}

// Record returns the current record (after Next returned true).
func (r *Reader) Record() Record { return r.rec }

// Err returns the error that stopped the Reader, or nil at the end of the
// log. Damage that the Reader skipped is not an error: see Damage.
func (r *Reader) Err() error { return r.err }

// Damage returns the damaged ranges met so far.
func (r *Reader) Damage() []Damage { return r.damage }

// Lost returns the number of records the damage met so far cost.
func (r *Reader) Lost() uint64 { return r.lost }

// Close releases the current mapping.
func (r *Reader) Close() error {
	if r.view != nil {
		r.view.Close()
		r.view = nil
	}
	return nil
}
