package ring

import (
	"errors"
	"fmt"
)

// This file is the one place that says what a bad range of a log means
// (docs/FORMAT.md, "Rules for readers", 7 and 8): Walker finds a range, and
// Facts.Classify, Facts.Rest and Jump say what it is, what it cost and why,
// from the bytes and the few facts a reader knows besides them. The tail
// reader, Verify and crash recovery all take their answer from here.

// DamageKind says what a Damage is: records lost to damage, or sequence
// numbers that no record ever had.
type DamageKind uint8

const (
	// DamageCorrupt: bytes that fail their checks (checksum, length,
	// header, a truncated file, a segment deleted from the middle of the
	// log, a memory fault). The records there are lost.
	DamageCorrupt DamageKind = iota
	// DamageHole: space reserved and never published in a segment whose
	// writer finished it (or, for a reader that does not follow, that a
	// live writer left unpublished for longer than it waits). The record
	// there is lost.
	DamageHole
	// DamageUnfinished: writes of a crashed writer that never completed
	// (their Write never returned): in a segment it did not finish, after
	// it died. No record is lost; the next writer's Open turns the range
	// into padding.
	DamageUnfinished
	// DamageRemoved: records removed by retention before a reader got to
	// them (or before the position it was asked to start at).
	DamageRemoved
	// DamageRepaired: a jump in sequence numbers left by an earlier crash
	// recovery (which reported it then): records lost in that crash.
	DamageRepaired
)

var damageNames = [...]string{
	DamageCorrupt:    "corrupt",
	DamageHole:       "hole",
	DamageUnfinished: "unfinished write",
	DamageRemoved:    "removed by retention",
	DamageRepaired:   "repaired earlier",
}

func (k DamageKind) String() string {
	if int(k) < len(damageNames) {
		return damageNames[k]
	}
	return fmt.Sprintf("DamageKind(%d)", uint8(k))
}

// Corruption reports whether the kind is damage to the log's bytes
// (DamageCorrupt, DamageHole): what `mmaptail verify` counts as findings.
func (k DamageKind) Corruption() bool { return k == DamageCorrupt || k == DamageHole }

// ErrUnfinished is the cause of a DamageUnfinished.
var ErrUnfinished = errors.New("unfinished write of a crashed writer (its Write never returned): no record lost, repaired at the next Open")

// Damage is a range of a log that holds no record a reader can deliver, or
// a jump in sequence numbers between two records: what it is (Kind), where
// (Path, From, To), what it cost (Lost) and why (Err, which names the file
// and offset where it is a *CorruptionError). It is complete when made:
// Walker finds a range in a region (its Path set), Facts.Classify, Facts.Rest
// and Jump say what it is.
type Damage struct {
	// Path is the segment file ("" for a region that is not one).
	Path string
	// From and To delimit the byte range [From, To) in the segment. To is
	// -1 when no valid record after From could be proved: the rest of the
	// segment is lost, and the next segment's header says how many records
	// went with it. From == To for a jump in sequence numbers at From.
	From, To int64
	// Lost is the number of records lost, as the sequence numbers prove
	// (0 if none, or unknown).
	Lost uint64
	Err  error
	Kind DamageKind
	// Hole is set when the range starts with a zero length word (space
	// reserved and not published) rather than bytes that fail their
	// checks.
	Hole bool
	// Seq is the sequence number expected at From, Resume the one at which
	// reading resumes (the record at To, or the first of the next segment
	// read); 0 where unknown.
	Seq, Resume uint64
}

// Span returns the number of sequence numbers the range took, as the record
// after it proves (0 when To is -1: the next segment's header tells):
// records lost, or writes that never completed.
func (d Damage) Span() uint64 {
	if d.To < 0 || d.Resume < d.Seq {
		return 0
	}
	return d.Resume - d.Seq
}

func (d Damage) String() string {
	to := fmt.Sprint(d.To)
	if d.To < 0 {
		to = "end"
	}
	s := fmt.Sprintf("%s: offsets %d to %s skipped", d.Path, d.From, to)
	if d.From == d.To {
		s = fmt.Sprintf("%s: at offset %d", d.Path, d.From)
	}
	if d.Lost > 0 {
		s += fmt.Sprintf(", %d record(s) lost", d.Lost)
	}
	if d.Err != nil {
		s += ": " + d.Err.Error()
	}
	return s
}

// Facts are what, besides its bytes, decides what a bad range of a segment
// means.
type Facts struct {
	// Finished: the writer sealed or closed the segment (every compressed
	// segment is): every record reserved in it was published.
	Finished bool
	// Live: a writer holds the log (its lock, DIR/LOCK): it may still
	// publish what it reserved.
	Live bool
	// PowerLoss: no writer holds the log, and the machine went down since
	// the last one ran (a power loss, a kernel crash): what it wrote and
	// had not flushed may never have reached the disk. DIR/LOCK tells:
	// each writer fills it with its pid and the boot id and never fsyncs
	// it.
	PowerLoss bool
}

// Zeros is what a zero length word where a record was reserved is.
type Zeros uint8

const (
	// ZerosPending: a record the live writer reserved and may still
	// write (its process may be stopped): not damage, yet.
	ZerosPending Zeros = iota
	// ZerosUnfinished: a write of a crashed writer that never completed
	// (its Write never returned): no record lost.
	ZerosUnfinished
	// ZerosLost: a record whose pages never reached the disk before the
	// machine went down: lost, whether or not its Write returned.
	ZerosLost
	// ZerosHole: space never published in a segment its writer finished:
	// a record lost.
	ZerosHole
)

// Zeros says what zero length words in the segment are.
func (f Facts) Zeros() Zeros {
	switch {
	case f.Finished:
		return ZerosHole
	case f.Live:
		return ZerosPending
	case f.PowerLoss:
		return ZerosLost
	}
	return ZerosUnfinished
}

// Classify completes a range that Walker found (Path, From, To, Seq,
// Resume, Hole and Err set): its Kind, the records it cost and its cause.
// Bytes that fail their checks are corruption. Zeros are a hole, or a
// crashed writer's unfinished writes (no record lost), or, after a power
// loss, records lost with ErrPowerLoss as the cause; zeros a live writer may
// still write (ZerosPending) are a hole for a reader that stops waiting.
func (f Facts) Classify(d Damage) Damage {
	d.Kind, d.Lost = DamageCorrupt, d.Span()
	if !d.Hole {
		return d
	}
	d.Kind = DamageHole
	switch f.Zeros() {
	case ZerosUnfinished:
		d.Kind, d.Lost = DamageUnfinished, 0
		d.Err = fmt.Errorf("%w (sequence numbers %d to %d)", ErrUnfinished, d.Seq, d.Resume-1)
	case ZerosLost:
		d.Err = fmt.Errorf("%w: records %d to %d were reserved and never reached the disk: lost", ErrPowerLoss, d.Seq, d.Resume-1)
	}
	return d
}

// Ending is how the walk of a segment ended.
type Ending uint8

const (
	// EndNone: no segment walked yet.
	EndNone Ending = iota
	// EndClosed: at its end (closing padding, or no room left).
	EndClosed
	// EndDamaged: at damage with nothing provable after it, or the
	// segment could not be read.
	EndDamaged
	// EndEarly: its data stops early, in a segment its writer finished
	// (or, for a reader, one a live writer left): the records after it
	// are lost, as many as the next segment's first sequence number says.
	EndEarly
	// EndUnfinished: its data stops early in a segment its crashed writer
	// never finished, or recovery closed it after such writes: the
	// sequence numbers after it are writes that never completed.
	EndUnfinished
	// EndPowerLoss: its data stops early in a segment its writer had open
	// when the machine went down: the records after it are lost.
	EndPowerLoss
)

// EarlyEnd says how a segment whose data stops early, zeros after it,
// ended.
func (f Facts) EarlyEnd() Ending {
	switch f.Zeros() {
	case ZerosUnfinished:
		return EndUnfinished
	case ZerosLost:
		return EndPowerLoss
	}
	return EndEarly
}

// Ending says how a walk that met the end of its region (StepEnd) ended:
// closed, or closed by recovery after writes that never completed.
func (w *Walker) Ending() Ending {
	if w.LastPad == PadUnfinished {
		return EndUnfinished
	}
	return EndClosed
}

// Rest is the rest of a segment after its data, where no valid record is
// proved: garbage from From up to DirtyTo (Cause, if the bytes at From are
// a record that fails its checks), zeros after that.
type Rest struct {
	Path          string
	From, DirtyTo int64
	Seq           uint64 // sequence number expected at From
	Cause         error  // the error of the record at From, nil for a zero length word
	// Rolled: the segment will get no more records (later segments hold
	// data, or it is compressed); otherwise it is the last of the log.
	Rolled bool
}

// Rest classifies the rest of a segment (see Rest). ok is false where it is
// no damage: zeros at the end of the last segment are the end of the log.
// The Damage runs to the end of the segment (To -1) and costs no record by
// itself: where the segment is not the last, the next one's first sequence
// number says what it cost (Jump). Garbage after a zero length word in a
// segment its crashed writer never finished is its unfinished writes; a
// record that fails its checks is corruption whoever wrote it.
func (f Facts) Rest(r Rest) (d Damage, ok bool) {
	n := r.DirtyTo - r.From
	garbage := n > 0 || r.Cause != nil
	if !garbage && !r.Rolled {
		return Damage{}, false
	}
	d = Damage{Path: r.Path, From: r.From, To: -1, Seq: r.Seq, Kind: DamageCorrupt}
	zeros := f.Zeros()
	var why error
	switch {
	case r.Cause != nil && zeros == ZerosLost:
		d.Err = fmt.Errorf("%w (%w)", r.Cause, ErrPowerLoss)
		return d, true
	case r.Cause != nil:
		d.Err = r.Cause
		return d, true
	case zeros == ZerosUnfinished && garbage:
		d.Kind, d.Err = DamageUnfinished, fmt.Errorf("%d bytes after the last valid record: %w", n, ErrUnfinished)
		return d, true
	case zeros == ZerosUnfinished:
		d.Kind, d.Err = DamageUnfinished, errors.New("rolled segment not closed: its crashed writer never finished it, no record lost (the next Open closes it)")
		return d, true
	case garbage && zeros == ZerosLost:
		why = fmt.Errorf("%d bytes of garbage after the last valid record (%w)", n, ErrPowerLoss)
	case garbage && r.Rolled:
		why = fmt.Errorf("%d bytes of garbage after the last valid record", n)
	case garbage:
		why = fmt.Errorf("%d bytes of garbage after the last valid record of a segment its writer finished (torn or corrupt tail); the writer clears it when it next opens the log", n)
	case zeros == ZerosLost:
		why = fmt.Errorf("rolled segment is not closed: its data stops early (%w)", ErrPowerLoss)
	default:
		why = errors.New("rolled segment is not closed: its data stops early")
	}
	d.Err = &CorruptionError{Path: r.Path, Offset: r.From, Err: why}
	return d, true
}

// Jump is a jump in sequence numbers at the start of segment Num (Path):
// its first record is First, and Expect was expected, after the records
// read before it.
type Jump struct {
	Path          string
	Num           uint64
	Expect, First uint64
	// Start: the reader starts here, and Expect is the record it was
	// asked to start at.
	Start bool
	// Adjacent: the segment before it was walked (or found unreadable)
	// just before, and ended as Prev says. Otherwise segments are missing
	// after Passed, the last one walked, and OlderPresent tells whether a
	// segment older than the missing ones is still there: retention
	// removes the oldest first.
	Adjacent     bool
	Prev         Ending
	Passed       uint64
	OlderPresent bool
}

// Damage says what the records missing before the segment are, and why.
func (j Jump) Damage() Damage {
	d := Damage{Path: j.Path, From: 0, To: 0, Lost: j.First - j.Expect, Seq: j.Expect, Resume: j.First, Kind: DamageCorrupt}
	switch {
	case j.Start:
		d.Kind = DamageRemoved
		d.Err = fmt.Errorf("records from %d on were asked for, the oldest segment starts at %d (removed by retention)", j.Expect, j.First)
	case j.Adjacent && j.Prev == EndUnfinished:
		// The previous segment ends with writes its crashed writer
		// reserved and never finished.
		d.Kind, d.Lost = DamageUnfinished, 0
		d.Err = fmt.Errorf("%w (sequence numbers %d to %d, at the end of segment %d)", ErrUnfinished, j.Expect, j.First-1, j.Num-1)
	case j.Adjacent && j.Prev == EndPowerLoss:
		d.Err = fmt.Errorf("%w: records %d to %d, at the end of segment %d, never reached the disk: lost", ErrPowerLoss, j.Expect, j.First-1, j.Num-1)
	case j.Adjacent:
		d.Err = fmt.Errorf("segment %d starts at sequence %d, %d expected (records missing before it: segment %d is damaged)", j.Num, j.First, j.Expect, j.Num-1)
	case j.OlderPresent:
		d.Err = fmt.Errorf("segment starts at sequence %d, %d expected: segments %d to %d are missing in the middle of the log (deleted by someone else?)", j.First, j.Expect, j.Passed+1, j.Num-1)
	default:
		d.Kind = DamageRemoved
		d.Err = fmt.Errorf("segment starts at sequence %d, %d expected (records removed by retention before they were read)", j.First, j.Expect)
	}
	return d
}

// gapDamage is the Damage for the jump in sequence numbers before rec, a
// record gap sequence numbers past the one expected: a range that an
// earlier crash recovery padded, with cause.
func gapDamage(path string, rec Record, gap uint64, cause PadCause) Damage {
	from := rec.Seq - gap
	d := Damage{Kind: DamageRepaired, Path: path, From: rec.Offset, To: rec.Offset, Lost: gap, Seq: from, Resume: rec.Seq,
		Err: fmt.Errorf("sequence jumps from %d to %d (records removed by an earlier repair)", from, rec.Seq)}
	if cause == PadUnfinished {
		d.Kind, d.Lost = DamageUnfinished, 0
		d.Err = fmt.Errorf("sequence jumps from %d to %d: writes a crashed writer never finished (their Write never returned; no record lost), repaired by the next Open", from, rec.Seq)
	}
	return d
}
