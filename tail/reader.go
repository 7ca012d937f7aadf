package tail

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"time"

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
	Size    int    // bytes it takes in the segment (header and padding included)
}

// ErrOtherLog is wrapped by the error of a Reader that met a segment of
// another log than the one it was asked for (Options.LogID, such as a
// cursor's): the directory was replaced by a new log, or the cursor belongs
// elsewhere.
var ErrOtherLog = errors.New("segment belongs to another log")

// ErrNotLog is wrapped by the error of Open (without Follow), Verify and End
// for an existing directory that holds no segment file.
var ErrNotLog = errors.New("not an mmaplog log (no segment files)")

// notLog says that dir holds no log.
func notLog(dir string) error { return fmt.Errorf("%s is %w", dir, ErrNotLog) }

// Defaults of the follow-mode Options.
const (
	// DefaultHoleWait is how long a Reader waits for a record that was
	// reserved but not yet published while the writer lives, before it
	// says so (a following Reader, which goes on waiting) or reports it as
	// a hole (a Reader reading to the end).
	DefaultHoleWait = 10 * time.Second
	// DefaultWaitTimeout is the longest a caught-up Reader sleeps in Wait
	// before it looks again without being woken.
	DefaultWaitTimeout = 5 * time.Millisecond
	// MaxIdleWait is how long an idle follower sleeps at most without
	// being woken by the writer (the timeout doubles from WaitTimeout
	// while nothing comes). It bounds how late a Wait sees ctx done, and
	// it is also the longest a follower asks the writer to wake it for
	// (ring.MaxWakeArm).
	MaxIdleWait = ring.MaxWakeArm
)

// Options configure a Reader. A nil *Options reads every record from the
// oldest one present to the end of what is written, and stops there.
type Options struct {
	// FromSeq starts at the record with this sequence number: records with
	// lower numbers are skipped. 0 reads from the oldest record present. If
	// retention removed the record already, the Reader starts at the oldest
	// one and reports the records lost (Damage). See also Start.
	FromSeq uint64
	// FromEnd starts after the newest record present at Open: only
	// records written later are read (with Follow). It overrides FromSeq.
	FromEnd bool
	// LogID, if not zero, is the identity of the log to read (a cursor's):
	// a segment of another log stops the Reader with ErrOtherLog.
	LogID [16]byte

	// Follow makes the Reader follow the writer: at the end of what is
	// written, Next returns false with a nil Err ("no data yet"), Wait
	// waits for more, and the Reader goes on across rotations into new
	// segments. A directory that does not exist yet is waited for.
	Follow bool
	// HoleWait is how long a Reader waits at a record that the live
	// writer reserved but has not published while later records are
	// there (a writer process stopped, or a goroutine of it stuck,
	// between the two) before it does something about it. A following
	// Reader never skips such a record while the writer holds its lock
	// on DIR/LOCK: after HoleWait it tells OnStall, and goes on waiting.
	// A Reader reading to the end (without Follow) skips it after
	// HoleWait, reporting it as Damage (DamageHole). When the writer is
	// dead (it holds no lock) or has finished the segment, the range is
	// skipped as soon as a provably valid record follows it. Default
	// DefaultHoleWait.
	HoleWait time.Duration
	// WaitTimeout is how long Wait first sleeps before it looks again
	// without being woken by the writer; it doubles while the log stays
	// idle, up to MaxIdleWait. Default DefaultWaitTimeout.
	WaitTimeout time.Duration

	// Spin is how long Wait keeps looking for the next record, on the CPU,
	// after a Wait that found one, before it sleeps on the futex. Without
	// it (the default) Wait looks a few microseconds, and a record that
	// comes later costs the futex wake-up (tens of microseconds); a Spin
	// longer than the gap between records keeps a busy follower awake, at
	// the price of a core while records come. The wait of an idle follower
	// is not affected.
	Spin time.Duration

	// ReleaseEvery is how far a Reader reads past the pages it gave back
	// before it gives back those it read since (with MADV_DONTNEED: they
	// stay in the page cache, only this process's mapping of them goes),
	// so that its resident set stays small on large segments. Default
	// DefaultReleaseEvery; a process following many logs may want less.
	// See also Release.
	ReleaseEvery int64

	// OnDamage, if set, is called for every damaged range as it is met
	// (they are also collected; see Reader.Damage).
	OnDamage func(Damage)

	// Since, if not zero, starts at the first record stamped at or after
	// it, in sequence order; every record after that one is read,
	// whatever its time stamp: time is treated as non-decreasing along
	// the log. The start is found without reading the log from its
	// beginning: by the time of each segment's first record, then by a
	// binary search inside one segment (a compressed one is read from its
	// start). Records whose times go back by up to TimeSlack are found
	// exactly; a larger step back (the clock set back while the log was
	// written) that the search reads is reported (OnTimeStep) and read on
	// from before it, but one between the few records it reads can make
	// it start after records stamped at or after Since. docs/READING.md
	// says more. Since cannot be combined with FromSeq or FromEnd.
	Since time.Time
	// Until, if not zero, ends reading before the first record stamped
	// after it: Next returns false and Done true. A following Reader also
	// ends once it has read everything while the clock is past Until by
	// UntilGrace.
	Until time.Time
	// MinLevel, if not ring.LevelNone, skips the records whose level (the
	// type byte, Record.Type) is below it, and those without a level.
	MinLevel ring.Level
	// Match, if set, skips the records for which it returns false. With
	// Last it is also called for the records counted back over. The
	// record's payload is valid only during the call.
	Match func(Record) bool
	// Last, if above 0, starts at the Last-th newest record present at
	// Open (among those MinLevel and Match keep, from Since on, before
	// Until), counting back from the end of the log a chunk at a time. A
	// Reader without Follow then stops at the end present at Open; with
	// Follow it goes on. It cannot be combined with FromSeq or FromEnd.
	Last int
	// OnTimeStep, if set, is called for every step back in record times
	// that the search for Since, Until or Last reads (see TimeStep).
	OnTimeStep func(TimeStep)
	// OnStall, if set, is told, in follow mode, when the Reader has
	// waited longer than HoleWait for a record that the live writer
	// reserved and has not written (a writer process stopped, or a
	// goroutine of it stuck, in the middle of a Write), while it goes on
	// waiting, and when the wait ends: see Stall.
	OnStall func(Stall)
}

// Reader reads the records of a log in sequence order. It is not safe for
// concurrent use.
//
// The Reader is split by role: this file iterates (Next, with ring.Walker,
// the format's one decoder loop), follow.go waits for the writer and is
// woken by it, segments.go finds and opens the segments.
type Reader struct {
	dir      string
	lockPath string
	opts     Options

	list     rotate.Listing // the last listing of the directory
	passed   uint64         // segments numbered up to this one are done
	relisted bool           // the directory was listed during this Next
	view     *rotate.View   // the segment being read
	walk     ring.Walker    // where in it
	ctl      []byte         // writable mapping of its first page (nil: none)
	prevEnd  segmentEnd     // how the segment read before it ended
	// truncReported is 1 + the number of the segment whose truncation was
	// reported last (0: none).
	truncReported uint64
	released      int64 // the view's pages below this offset were given back

	nextSeq uint64
	started bool // nextSeq is known
	logID   [16]byte
	haveID  bool
	atEnd   bool // static reading reached the end
	rec     Record
	err     error
	damage  []Damage
	lost    uint64

	follow followState
	verify *verifier // set when Verify drives the Reader
	seek   seekState // Since, Until, Last and the filters (seek.go)
}

// segmentEnd is how the walk of a segment ended.
type segmentEnd uint8

const (
	endNone      segmentEnd = iota // no segment read yet
	endClosed                      // its end (closing padding, or no room left)
	endDamaged                     // damage with nothing provable after it
	endEarly                       // data stopped early, later segments hold data
	endUnfinish                    // stopped early in a segment its crashed writer never finished
	endPowerLoss                   // stopped early in a segment its writer had open when the machine went down
)

// DefaultReleaseEvery is Options.ReleaseEvery's default.
const DefaultReleaseEvery = 4 << 20

// Open opens the log in dir for reading. It does not take the writer's lock:
// reading while a writer appends is safe. Without Follow, a directory that
// does not exist or holds no segment file is an error (wrapping
// fs.ErrNotExist, or ErrNotLog).
func Open(dir string, o *Options) (*Reader, error) {
	r := newReader(dir, o)
	l, err := rotate.List(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist) && r.opts.Follow:
		// Started before the writer created the log: wait for it.
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("tail: no log directory %s: %w", dir, fs.ErrNotExist)
	case err != nil:
		return nil, fmt.Errorf("tail: %w", err)
	case len(l.Segments) == 0 && !r.opts.Follow:
		return nil, notLog(dir)
	}
	r.list = l
	r.chooseStart()
	if err := r.resolveStart(); err != nil {
		return nil, err
	}
	return r, nil
}

func newReader(dir string, o *Options) *Reader {
	r := &Reader{dir: dir, lockPath: filepath.Join(dir, rotate.LockName)}
	r.follow.emptyAt = -1
	if o != nil {
		r.opts = *o
	}
	if r.opts.HoleWait <= 0 {
		r.opts.HoleWait = DefaultHoleWait
	}
	if r.opts.WaitTimeout <= 0 {
		r.opts.WaitTimeout = DefaultWaitTimeout
	}
	if r.opts.ReleaseEvery <= 0 {
		r.opts.ReleaseEvery = DefaultReleaseEvery
	}
	return r
}

// Next advances to the next record and reports whether there is one. It
// returns false at the end of what is written (in follow mode: for now; call
// Wait, then Next again) and on an error that stops reading; Err tells
// which.
func (r *Reader) Next() bool {
	if r.err != nil || r.atEnd {
		return false
	}
	r.relisted = false
	for {
		if r.view == nil && !r.openNext() {
			r.untilPassed()
			return false
		}
		ok, more := r.step()
		if ok {
			if off := r.rec.Offset; off-r.released >= r.opts.ReleaseEvery {
				r.release(off) // the pages before the record just read
			}
			if r.follow.stalling {
				r.stallOver(r.rec.Seq == r.follow.stall.Seq)
			}
			r.follow.idle, r.follow.holdNone = 0, false
			return true
		}
		if !more {
			r.untilPassed()
			return false
		}
	}
}

// decode runs the walker one step on the current segment, with memory
// faults (a segment truncated under the mapping) and decompression errors
// turned into an error.
func (r *Reader) decode(lookPast bool) (st ring.Step, err error) {
	v := r.view
	err = fault.Guard(v.Path, func() error {
		if err := v.Prepare(r.walk.Pos); err != nil {
			return err
		}
		saved := r.walk
		st = r.walk.Next(v.Data, v.Base, lookPast)
		if st.Kind == ring.StepDamage && st.Damage.To < 0 && v.Partial() {
			// A stream's window holds only the damaged record: look
			// past it in the rest of the segment.
			r.walk = saved
			if err := v.PrepareRest(r.walk.Pos); err != nil {
				return err
			}
			st = r.walk.Next(v.Data, v.Base, lookPast)
		}
		return nil
	})
	r.nextSeq = r.walk.Seq
	return st, err
}

// step decodes at the current position. ok: a record is ready; more: keep
// going (false at the end of what is written or on a fatal error).
func (r *Reader) step() (ok, more bool) {
	v := r.view
	st, err := r.decode(false)
	if err == nil && st.Kind == ring.StepEmpty {
		switch r.atEmpty(v) {
		case emptyStop:
			return false, false
		case emptyRetry, emptyDamaged:
			return false, true
		}
		pos := r.walk.Pos
		st, err = r.decode(true)
		if r.opts.Follow {
			r.giveBackPast(v, pos)
		}
		if err == nil && st.Kind == ring.StepEmpty {
			return r.nothingAfter(v, st)
		}
	}
	if err != nil {
		r.report(Damage{Kind: DamageCorrupt, Path: v.Path, From: r.walk.Pos, To: -1, Seq: r.walk.Seq, Err: err})
		r.endSegment(endDamaged)
		return false, true
	}
	switch st.Kind {
	case ring.StepRecord, ring.StepPadding:
		rec := st.Record
		if st.Gap > 0 {
			from := rec.Seq - st.Gap
			d := Damage{Kind: DamageRepaired, Path: v.Path, From: rec.Offset, To: rec.Offset, Lost: st.Gap, Seq: from, Resume: rec.Seq,
				Err: fmt.Errorf("sequence jumps from %d to %d (records removed by an earlier repair)", from, rec.Seq)}
			if st.GapCause == ring.PadUnfinished {
				d.Kind, d.Lost = DamageUnfinished, 0
				d.Err = fmt.Errorf("sequence jumps from %d to %d: writes a crashed writer never finished (their Write never returned; no record lost), repaired by the next Open", from, rec.Seq)
			}
			r.report(d)
		}
		if st.Kind == ring.StepPadding || rec.Seq < r.opts.FromSeq {
			return false, true
		}
		r.rec = Record{Seq: rec.Seq, Time: rec.Time, Type: rec.Type, Payload: rec.Payload, Segment: v.Num, Offset: rec.Offset, Size: rec.Size}
		return r.filter()
	case ring.StepDamage:
		d := st.Damage
		if d.Hole && r.unpublished(v, d.From, d.Seq) {
			// Records follow a record the live writer reserved and
			// has not written yet: wait for it, skip nothing.
			r.walk.Pos, r.walk.Seq, r.nextSeq = d.From, d.Seq, d.Seq
			return false, false
		}
		setPath(d.Err, v.Path)
		kind := r.kindOf(v, d.Hole)
		out := Damage{Kind: kind, Path: v.Path, From: d.From, To: d.To, Lost: d.Span(), Seq: d.Seq, Resume: d.Resume, Err: d.Err}
		if kind == DamageUnfinished {
			out.Lost, out.Err = 0, fmt.Errorf("%w (sequence numbers %d to %d)", errUnfinished, d.Seq, d.Resume-1)
		} else if _, lostPower := r.abandoned(v); lostPower && d.Hole && d.To >= 0 {
			out.Err = fmt.Errorf("%w: records %d to %d were reserved and never reached the disk: lost", ring.ErrPowerLoss, d.Seq, d.Resume-1)
		}
		if d.To < 0 {
			out.Resume = 0
			r.report(out)
			r.endSegment(endDamaged)
			return false, true
		}
		r.report(out)
		return false, true
	case ring.StepEnd:
		r.reportTruncated(v)
		how := endClosed
		if r.walk.LastPad == ring.PadUnfinished {
			how = endUnfinish // closed by recovery after unfinished writes
		}
		r.endSegment(how)
		return false, true
	}
	return false, true
}

// emptyAction is what to do at a zero length word.
type emptyAction uint8

const (
	emptyStop    emptyAction = iota // the end of what is written (for now)
	emptyRetry                      // decode again: it was published meanwhile
	emptyLook                       // look past it for a provable record
	emptyDamaged                    // the segment was overwritten: reported, and left
)

// atEmpty decides what a zero length word at the current position means:
// the end of what is written so far, a record that a live writer goroutine
// is still writing, or a hole that will never be filled.
func (r *Reader) atEmpty(v *rotate.View) emptyAction {
	if v.Compressed {
		return emptyLook // a compressed segment is finished: a zero word in it is a hole
	}
	if r.opts.Follow {
		return r.waitAtEmpty(v)
	}
	if r.rewritten(v) {
		return emptyDamaged
	}
	later := r.laterStarted(v.Num, false)
	alive := r.writerAlive()
	switch {
	case alive && !later:
		// The end of the data written so far.
		r.reportTruncated(v)
		r.atEnd = true
		r.verify.endOfData(r, v)
		return emptyStop
	case alive && !r.finished(v):
		// A write in progress in a segment the live writer has not
		// finished yet: wait for it (HoleWait at most).
		if r.waitPublished(v) {
			return emptyRetry
		}
	}
	return emptyLook
}

// nothingAfter handles a zero length word past which nothing could be proved
// (st.DirtyTo: garbage up to there).
func (r *Reader) nothingAfter(v *rotate.View, st ring.Step) (ok, more bool) {
	later := r.laterStarted(v.Num, r.opts.Follow)
	if r.opts.Follow && (!later || r.unpublished(v, r.walk.Pos, r.walk.Seq)) {
		// The end of what is written so far, or (later segments
		// started) records the live writer reserved at the end of this
		// segment and has not written yet.
		r.follow.scanned = !later && !r.writerAlive()
		return false, false
	}
	if later || v.Compressed {
		// The rest of the segment holds nothing: its writer crashed
		// before it closed it, the machine went down, or someone zeroed
		// its end.
		unfinished, lostPower := r.abandoned(v)
		if st.DirtyTo > r.walk.Pos {
			d := Damage{Kind: DamageCorrupt, Path: v.Path, From: r.walk.Pos, To: -1, Seq: r.walk.Seq,
				Err: &ring.CorruptionError{Path: v.Path, Offset: r.walk.Pos, Err: fmt.Errorf("%d bytes of garbage after the last valid record", st.DirtyTo-r.walk.Pos)}}
			if unfinished {
				d.Kind, d.Err = DamageUnfinished, errUnfinished
			}
			r.report(d)
		} else {
			r.verify.unclosed(r, v, unfinished)
		}
		how := endEarly
		switch {
		case unfinished:
			how = endUnfinish
		case lostPower:
			how = endPowerLoss
		}
		r.endSegment(how)
		return false, true
	}
	// The end of the data in the last segment, its writer dead.
	r.reportTruncated(v)
	r.verify.tail(r, v, st.DirtyTo)
	r.verify.endOfData(r, v)
	r.atEnd = true
	return false, false
}

// kindOf classifies a damaged range of v: a zero length word (hole) in a
// segment that its crashed writer never finished is an unfinished write.
func (r *Reader) kindOf(v *rotate.View, hole bool) DamageKind {
	if !hole {
		return DamageCorrupt
	}
	if crashed, _ := r.abandoned(v); crashed {
		return DamageUnfinished
	}
	return DamageHole
}

// abandoned reports how the writer left v, a segment it never finished
// (sealed or closed), once no writer holds the log: crashed, if its process
// died and the machine did not (the page cache, with every record written
// into it, survived: zeros it reserved are writes that never completed, no
// record lost); lostPower, if the machine went down since (a power loss, a
// kernel crash: zeros are records whose pages never reached the disk,
// lost whether or not their Write returned). The lock file tells them
// apart: each writer fills it with its pid and the boot id and never
// fsyncs it. Both are false for a finished segment or a live writer.
func (r *Reader) abandoned(v *rotate.View) (crashed, lostPower bool) {
	if r.finished(v) || r.writerAlive() {
		return false, false
	}
	if r.pageCacheSurvived() {
		return true, false
	}
	return false, true
}

// pageCacheSurvived reports whether the last writer of the log, dead now,
// ran in this boot of the machine. A lock file of an earlier version (a
// pid, no boot id), or a machine whose boots cannot be told apart, counts
// as this boot, as before boots were told apart; an empty one does not
// (its contents did not survive).
func (r *Reader) pageCacheSurvived() bool {
	boot := fileutil.BootID()
	h, err := fileutil.LockHolder(r.lockPath)
	switch {
	case err != nil || boot == "":
		return true
	case h.Boot == "":
		return h.PID != 0
	}
	return h.Boot == boot
}

// finished reports whether the writer finished the segment v (sealed or
// closed it): every record reserved in it is published.
func (r *Reader) finished(v *rotate.View) bool {
	if v.Compressed {
		return true // only finished segments are compressed
	}
	var st ring.State
	if fault.Guard(v.Path, func() error { st = ring.LoadState(v.Data); return nil }) != nil {
		return true
	}
	return st.Finished()
}

// rewritten reports, and handles, a segment whose header in the mapping is
// no longer the one read when it was opened: another process overwrote (or
// zeroed) the file under the Reader. Nothing after the current position can
// be trusted, and no writer will finish the segment: the Reader reports the
// rest of it as damage, from where it is, and goes on with the next
// segment, whose first sequence number says how many records were lost
// (what a Reader opening the file now, finding its header zero or damaged,
// does too).
func (r *Reader) rewritten(v *rotate.View) bool {
	if v.Compressed {
		return false
	}
	var h ring.Header
	var perr error
	if fault.Guard(v.Path, func() error { h, perr = ring.ParseHeader(v.Data, false); return nil }) != nil {
		return false // the next step meets the fault and reports it
	}
	if perr == nil && h == v.Header {
		return false
	}
	how := "its fields changed"
	switch {
	case errors.Is(perr, ring.ErrNotStarted):
		how = "zeroed"
	case perr != nil:
		how = perr.Error()
	}
	r.report(Damage{Kind: DamageCorrupt, Path: v.Path, From: r.walk.Pos, To: -1, Seq: r.walk.Seq,
		Err: &ring.CorruptionError{Path: v.Path, Offset: 0, Err: fmt.Errorf("segment header overwritten while the segment was read (%s): another process wrote the file; its records from offset %d on are lost, reading goes on with the next segment", how, r.walk.Pos)}})
	r.endSegment(endDamaged)
	return true
}

// writerAlive reports whether a writer holds the log's lock.
func (r *Reader) writerAlive() bool {
	alive, _ := r.writer()
	return alive
}

// writer reports whether a writer holds the log's lock, and its pid (0 if
// unknown).
func (r *Reader) writer() (alive bool, pid int) {
	alive, pid, _ = fileutil.IsLocked(r.lockPath)
	return alive, pid
}

// unpublished reports, for a following Reader, whether the zero length word
// at offset off of v, where sequence number seq is expected, is a record
// that the writer reserved and may still write: the writer has not
// finished v (sealed or closed it), and it holds the log's lock. Such a
// record is never skipped, however long it takes (a writer process stopped
// in the middle of a Write), whatever is written after it: the Reader
// waits, telling OnStall once it has waited HoleWait. Only once the writer
// is gone (it no longer holds the lock) is the range skipped, as an
// unfinished write; once it has finished v, as a hole.
func (r *Reader) unpublished(v *rotate.View, off int64, seq uint64) bool {
	if !r.opts.Follow || r.finished(v) {
		return false
	}
	alive, pid := r.writer()
	if alive {
		r.stalled(Stall{Path: v.Path, Offset: off, Seq: seq, PID: pid})
	}
	return alive
}

// waitPublished waits, for a static Reader, until the zero length word at
// the current position is published by the live writer, for HoleWait at
// most. It reports whether it was.
func (r *Reader) waitPublished(v *rotate.View) bool {
	deadline := time.Now().Add(r.opts.HoleWait)
	for d := 50 * time.Microsecond; time.Now().Before(deadline); d = min(2*d, 20*time.Millisecond) {
		time.Sleep(d)
		saved, seq := r.walk, r.nextSeq
		st, err := r.decode(false)
		r.walk, r.nextSeq = saved, seq // the next step takes it
		if err != nil || st.Kind != ring.StepEmpty {
			return true
		}
		if !r.writerAlive() {
			return false
		}
	}
	return false
}

// reportTruncated reports, once, that the current segment's file is shorter
// than its header says: someone truncated it, and what was after the cut is
// lost.
func (r *Reader) reportTruncated(v *rotate.View) {
	if !v.Truncated || r.truncReported == v.Num+1 {
		return
	}
	r.truncReported = v.Num + 1
	r.report(Damage{Kind: DamageCorrupt, Path: v.Path, From: int64(len(v.Data)), To: -1, Seq: r.walk.Seq,
		Err: &ring.CorruptionError{Path: v.Path, Offset: int64(len(v.Data)), Err: fmt.Errorf("%w: file truncated to %d bytes, its header says %d", ring.ErrShort, len(v.Data), v.Header.Size)}})
}

// endSegment finishes the walk of the current segment.
func (r *Reader) endSegment(how segmentEnd) {
	r.verify.segmentDone(r, r.view)
	r.prevEnd = how
	r.closeView()
}

func (r *Reader) closeView() {
	if r.view != nil {
		r.passed = r.view.Num
		r.view.Close()
		r.view = nil
	}
	if r.ctl != nil {
		fileutil.Unmap(r.ctl)
		r.ctl = nil
	}
}

func (r *Reader) report(d Damage) {
	if r.verify != nil {
		r.verify.damage(d)
	}
	r.damage = append(r.damage, d)
	r.lost += d.Lost
	if r.follow.stalling {
		r.stallOver(false) // the Reader goes on past the record it waited for
	}
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
// log (or, in follow mode, when there is no data yet). Damage that the
// Reader skipped is not an error: see Damage.
func (r *Reader) Err() error { return r.err }

// Damage returns the damaged ranges met so far.
func (r *Reader) Damage() []Damage { return r.damage }

// Lost returns the number of records the damage met so far cost.
func (r *Reader) Lost() uint64 { return r.lost }

// NextSeq returns the sequence number of the record the Reader expects next
// (0 before it read any segment).
func (r *Reader) NextSeq() uint64 { return r.nextSeq }

// LogID returns the identity of the log, once a segment has been read.
func (r *Reader) LogID() ([16]byte, bool) { return r.logID, r.haveID }

// Close releases the current mapping.
func (r *Reader) Close() error {
	r.closeView()
	r.atEnd = true
	return nil
}
