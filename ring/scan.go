package ring

import (
	"errors"
	"fmt"
	"sync/atomic"
)

// ErrHole is the cause given for space that was reserved but never written:
// a writer process died between reserving a record and publishing it, or a
// writer goroutine has not published it yet.
var ErrHole = errors.New("reserved space never written (writer died mid-record)")

// resync looks for the first record at or after from that can be proved to
// belong to the log after damage that starts at holeStart: a record (or
// padding) with a valid CRC whose sequence number is at least expect and at
// most expect plus the number of records that could fit between holeStart
// and it. It returns the record's offset, or ok false when there is none
// before the end of b. lastNonZero is the end of the last non-zero 8-byte
// word it passed (holeStart if none), so that a caller can tell a clean
// zeroed tail from garbage.
func resync(b []byte, holeStart, from int, expect uint64) (off int, rec Record, ok bool, lastNonZero int) {
	lastNonZero = holeStart
	if from < holeStart {
		from = holeStart
	}
	from = (from + Align - 1) &^ (Align - 1)
	for off = from; off >= 0 && off <= len(b)-8; off += Align {
		w := atomic.LoadUint64(word64(b, off))
		if w == 0 {
			continue
		}
		lastNonZero = off + 8
		lw := uint32(w)
		if lw&Committed == 0 || off > len(b)-RecordHeaderSize {
			continue
		}
		r, kind, _ := Decode(b, off)
		if kind != KindRecord && kind != KindPadding {
			continue
		}
		maxGap := uint64(off-holeStart) / RecordHeaderSize
		if r.Seq >= expect && r.Seq-expect <= maxGap {
			return off, r, true, lastNonZero
		}
	}
	return 0, Record{}, false, lastNonZero
}

// Resync looks for the first record at or after from that can be proved to
// follow damage starting at holeStart (see docs/FORMAT.md, rule 5). It is
// what Walker does at damage; it is exported for tests and tools.
func Resync(b []byte, holeStart, from int, expect uint64) (off int, ok bool, lastNonZero int) {
	off, _, ok, lastNonZero = resync(b, holeStart, from, expect)
	return off, ok, lastNonZero
}

// StepKind tells what Walker.Next found.
type StepKind uint8

const (
	// StepRecord: a valid data record, Step.Record.
	StepRecord StepKind = iota
	// StepPadding: a valid padding record, skipped.
	StepPadding
	// StepDamage: a damaged range, Step.Damage, skipped where its To is
	// not -1. With To -1 the walk of this region is over.
	StepDamage
	// StepEmpty: a zero length word at Walker.Pos with no record proved
	// after it: the end of what is written so far. The walker stays there;
	// call Next again to look again (with lookPast to look past it).
	StepEmpty
	// StepEnd: no record fits between Walker.Pos and the end of the
	// region: the region is finished.
	StepEnd
)

func (k StepKind) String() string {
	switch k {
	case StepRecord:
		return "record"
	case StepPadding:
		return "padding"
	case StepDamage:
		return "damage"
	case StepEmpty:
		return "empty"
	case StepEnd:
		return "end"
	}
	return fmt.Sprintf("StepKind(%d)", uint8(k))
}

// Step is one thing Walker.Next found.
type Step struct {
	Kind   StepKind
	Record Record // StepRecord, StepPadding
	// Gap is the number of sequence numbers missing before Record: a
	// jump that an earlier repair left (a padding record standing for
	// records that were lost or never finished). GapCause is the cause of
	// the padding before the gap (PadUnfinished: no record was lost).
	Gap      uint64
	GapCause PadCause
	// Damage is, for StepDamage, the damaged range (Kind and Lost as for
	// a finished segment: see Facts.Classify), and, for a Step with a
	// Gap, the jump (DamageRepaired, or DamageUnfinished).
	Damage Damage
	// DirtyTo is, for StepEmpty looked past and for StepDamage
	// with To -1, the end of the non-zero bytes after Walker.Pos: bytes
	// in [Pos, DirtyTo) are garbage after the last valid record (a torn
	// or unfinished tail). 0 if the rest is zero or was not looked at.
	DirtyTo int64
}

// Walker is the decoder loop of the format, the only one: it walks the
// records of one region in order, checks their sequence numbers, finds
// damage and proves where reading resumes after it (docs/FORMAT.md, "Rules
// for readers"). The tail reader, Verify and crash recovery all walk
// regions with it; Scan is a Walker run over a whole region.
//
// The region may be given whole (a mapping) or as a window of it: Next
// takes the bytes of the region from offset base on. The caller keeps the
// window holding at least the record at Pos (or, at damage, the rest of the
// region).
type Walker struct {
	// Path names the region (its segment file) in the errors and the
	// Damage the Walker makes; "" for a region that is not a file.
	Path string
	Pos  int64  // region offset of the next record
	Seq  uint64 // sequence number expected next

	Records uint64 // valid data records walked
	Padding uint64 // valid padding records walked
	// DataEnd is where the data walked so far ends: after the last valid
	// record, before a padding record that closes the region.
	DataEnd int64
	// Full is set once the region is finished (StepEnd).
	Full bool
	// LastPad is the cause of the last padding record walked, if no data
	// record came after it.
	LastPad PadCause
}

// NewWalker returns a Walker at the first record of a region whose first
// sequence number is firstSeq.
func NewWalker(firstSeq uint64) Walker {
	return Walker{Pos: HeaderSize, Seq: firstSeq, DataEnd: HeaderSize}
}

// Next decodes at Pos. b holds the region's bytes from offset base on. At a
// zero length word, lookPast says whether to look past it for a provable
// record (a hole, reported as damage) or to stop there (StepEmpty, nothing
// looked at). At StepEmpty, StepEnd and damage with nothing provable after
// it (To -1), Pos and Seq do not move. The caller must have made
// memory faults on b errors (see internal/fault): Next touches b.
func (w *Walker) Next(b []byte, base int64, lookPast bool) Step {
	for {
		off := int(w.Pos - base)
		rec, kind, cause := decode(b, off)
		rec.Offset += base
		switch kind {
		case KindEnd:
			w.Full = true
			return Step{Kind: StepEnd}
		case KindRecord, KindPadding:
			if rec.Seq < w.Seq {
				cause = fmt.Errorf("%w: sequence %d after %d", ErrSequence, rec.Seq, w.Seq)
				break
			}
			st := Step{Kind: StepRecord, Record: rec, Gap: rec.Seq - w.Seq}
			if st.Gap > 0 {
				st.GapCause = w.LastPad
				st.Damage = gapDamage(w.Path, rec, st.Gap, w.LastPad)
			}
			w.Pos += int64(rec.Size)
			if kind == KindPadding {
				st.Kind = StepPadding
				w.Padding++
				w.Seq = rec.Seq
				w.LastPad = PadCause(rec.Type)
				if w.Pos != base+int64(len(b)) {
					w.DataEnd = w.Pos
				}
				return st
			}
			w.LastPad = PadClose
			w.Records++
			w.Seq = rec.Seq + 1
			w.DataEnd = w.Pos
			return st
		case KindEmpty:
			if !lookPast {
				return Step{Kind: StepEmpty}
			}
		}
		// A zero length word, or a record that fails its checks: find
		// out whether a provably valid record follows.
		hole := kind == KindEmpty
		if hole {
			cause = ErrHole
		}
		next, nr, ok, dirty := resync(b, off, off, w.Seq)
		if ok && next == off {
			continue // published meanwhile: read it
		}
		dirtyTo := int64(0)
		if dirty > off {
			dirtyTo = base + int64(dirty)
		}
		if !ok && hole {
			return Step{Kind: StepEmpty, DirtyTo: dirtyTo}
		}
		d := Damage{Path: w.Path, From: w.Pos, To: -1, Err: &CorruptionError{Path: w.Path, Offset: w.Pos, Err: cause}, Seq: w.Seq, Hole: hole}
		if !ok {
			return Step{Kind: StepDamage, DirtyTo: dirtyTo, Damage: d}
		}
		d.To, d.Resume = base+int64(next), nr.Seq
		if hole {
			d.Kind = DamageHole
		}
		d.Lost = d.Span()
		w.Pos, w.Seq = d.To, nr.Seq
		return Step{Kind: StepDamage, Damage: d}
	}
}

// Gap is a jump in sequence numbers between two valid records: records that
// an earlier repair removed.
type Gap struct {
	Offset   int64  // offset of the record after the gap
	From, To uint64 // missing sequence numbers [From, To)
}

// ScanResult describes what Scan found in a region.
type ScanResult struct {
	Records  uint64   // valid data records
	Padding  uint64   // valid padding records
	NextSeq  uint64   // sequence number that the next appended record gets
	End      int      // offset just past the last valid record: where appending continues
	Full     bool     // the region is closed (padding to its end, or no room for a record)
	Damage   []Damage // ranges skipped because a valid record provably follows them
	Gaps     []Gap    // sequence gaps left by earlier repairs
	DataEnd  int      // End, less a padding record that closes the region
	TailFrom int      // start of non-zero garbage after End (torn tail), or 0
	TailTo   int      // end of that garbage
	// TailDamage is the error of the record at TailFrom when it is not a
	// zero length word (a corrupt record with nothing provable after it).
	TailDamage error
	// LastTime is the time stamp of the last valid data record; 0 if none.
	LastTime int64
}

// Scan walks a whole region with a Walker from its first record (sequence
// number firstSeq), looking past every zero length word. It never modifies b
// and never reads outside it. fn, if not nil, is called for every valid data
// record in order; returning false stops the scan early (the result then
// describes only what was scanned).
func Scan(b []byte, firstSeq uint64, fn func(Record) bool) ScanResult {
	return NewWalker(firstSeq).Scan(b, fn)
}

// Scan is the package's Scan with w as the Walker: from w's position, its
// Path in the damage it finds. b holds the whole region.
func (w Walker) Scan(b []byte, fn func(Record) bool) ScanResult {
	res := ScanResult{NextSeq: w.Seq}
	if len(b) < HeaderSize {
		res.End, res.DataEnd, res.Full = len(b), len(b), true
		return res
	}
	finish := func() ScanResult {
		res.Records, res.Padding, res.NextSeq = w.Records, w.Padding, w.Seq
		res.End, res.DataEnd, res.Full = int(w.Pos), int(w.DataEnd), w.Full
		return res
	}
	for {
		st := w.Next(b, 0, true)
		if st.Gap > 0 {
			res.Gaps = append(res.Gaps, Gap{Offset: st.Record.Offset, From: st.Record.Seq - st.Gap, To: st.Record.Seq})
		}
		switch st.Kind {
		case StepRecord:
			res.LastTime = st.Record.Time
			if fn != nil && !fn(st.Record) {
				return finish()
			}
		case StepPadding:
		case StepDamage:
			if st.Damage.To >= 0 {
				res.Damage = append(res.Damage, st.Damage)
				continue
			}
			res.TailFrom, res.TailTo, res.TailDamage = int(w.Pos), int(max(st.DirtyTo, w.Pos)), st.Damage.Err
			return finish()
		case StepEmpty:
			if st.DirtyTo > w.Pos {
				res.TailFrom, res.TailTo = int(w.Pos), int(st.DirtyTo)
			}
			return finish()
		case StepEnd:
			return finish()
		}
	}
}
