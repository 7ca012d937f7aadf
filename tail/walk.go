package tail

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/mmaplog/mmaplog/internal/fault"
	"github.com/mmaplog/mmaplog/internal/fileutil"
	"github.com/mmaplog/mmaplog/ring"
	"github.com/mmaplog/mmaplog/rotate"
)

// This file is the segment walker: it goes through the segments of a log in
// order (segments.go opens them), walks each with ring.Walker, the format's
// one decoder loop, and tells what it meets as events: a record, damage (as
// ring's damage model says what it is), a segment opened or done, the end of
// what is written. The Reader (reader.go, following or not) and Verify
// (verify.go) consume them. Where the writer may still be writing, a mode
// says what to do: read to the end and stop (reading, here), or follow
// (follower, follow.go).

// eventKind is what the walker met.
type eventKind uint8

const (
	evNone    eventKind = iota // nothing yet: walk on
	evRecord                   // a data record: walker.found
	evDamage                   // a damaged range, or a jump in sequence numbers: event.damage
	evStart                    // a segment was opened: walker.view
	evSegment                  // a segment is done: event.seg sums it up, event.notice
	evEnd                      // the end of what is written (for now): event.notice
	evProblem                  // a segment cannot be read, for another reason than damage: event.err, event.seg
	evError                    // the walk cannot go on: walker.failed
)

// event is what the walker tells, but records, which it hands over in
// walker.rec.
type event struct {
	kind   eventKind
	damage Damage
	// notice is damage that costs no record by itself and that a Reader
	// does not report (Verify does): a rolled segment whose data stops
	// early, garbage after the last valid record of the last segment.
	// Err nil: none.
	notice Damage
	seg    SegmentReport
	err    error
	rec    Record // evRecord, queued after damage
}

// walker walks the segments of a log. Its zero value is not usable; see
// newWalker.
type walker struct {
	dir      string
	lockPath string
	opts     *Options // FromSeq and LogID
	mode     mode

	list     rotate.Listing // the last listing of the directory
	passed   uint64         // segments numbered up to this one are done
	relisted bool           // the directory was listed during this pass (Reader.Next)
	view     *rotate.View   // the segment being read
	walk     ring.Walker    // where in it
	prevEnd  ring.Ending    // how the segment read before it ended
	// truncReported is 1 + the number of the segment whose truncation was
	// reported last (0: none).
	truncReported uint64

	nextSeq uint64
	started bool // nextSeq is known
	logID   [16]byte
	haveID  bool
	failed  error // why the walk cannot go on

	rec   Record  // the record of an evRecord (payload valid until the walk goes on)
	ev    event   // the current event, but records
	queue []event // events due, in order
	head  int     // the next one in queue
}

func newWalker(dir string, opts *Options, m mode) walker {
	return walker{dir: dir, lockPath: filepath.Join(dir, rotate.LockName), opts: opts, mode: m}
}

// next returns the next event: the next step of the walk, where no events
// are due and a segment is open (the way to every record, kept small
// enough to be inlined), or nextDue's.
func (w *walker) next() eventKind {
	if w.head == len(w.queue) && w.view != nil {
		if k := w.step(); k != evNone {
			return k
		}
	}
	return w.nextDue()
}

// nextDue returns the next event, the events due first.
func (w *walker) nextDue() eventKind {
	for {
		if w.head < len(w.queue) {
			w.ev = w.queue[w.head]
			w.queue[w.head] = event{}
			if w.head++; w.head == len(w.queue) {
				w.queue, w.head = w.queue[:0], 0
			}
			if w.ev.kind == evRecord {
				w.rec = w.ev.rec
			}
			return w.ev.kind
		}
		if w.view == nil {
			w.openNext()
			continue
		}
		if k := w.step(); k != evNone {
			return k
		}
	}
}

func (w *walker) push(e event)        { w.queue = append(w.queue, e) }
func (w *walker) pushDamage(d Damage) { w.push(event{kind: evDamage, damage: d}) }

// stop ends the walk for now: at the end of what is written, or on the
// error that stopped it.
func (w *walker) stop() {
	if w.failed != nil {
		w.push(event{kind: evError})
		return
	}
	w.push(event{kind: evEnd})
}

// fail stops the walk with err.
func (w *walker) fail(err error) {
	w.failed = err
	w.stop()
}

// decode runs ring.Walker one step on the current segment, with memory
// faults (a segment truncated under the mapping) and decompression errors
// turned into an error.
func (w *walker) decode(lookPast bool) (st ring.Step, err error) {
	v := w.view
	err = fault.Guard(v.Path, func() error {
		if err := v.Prepare(w.walk.Pos); err != nil {
			return err
		}
		st = w.walk.Next(v.Data, v.Base, lookPast)
		if st.Kind == ring.StepDamage && st.Damage.To < 0 && v.Partial() {
			// A stream's window holds only the damaged record: look
			// past it in the rest of the segment (the walker stayed at
			// it).
			if err := v.PrepareRest(w.walk.Pos); err != nil {
				return err
			}
			st = w.walk.Next(v.Data, v.Base, lookPast)
		}
		return nil
	})
	w.nextSeq = w.walk.Seq
	return st, err
}

// step walks one step in the current segment: a record (evRecord), or
// events queued (evNone).
func (w *walker) step() eventKind {
	v := w.view
	st, err := w.decode(false)
	if err == nil && st.Kind == ring.StepEmpty {
		if !w.atZero(v) {
			return evNone
		}
		pos := w.walk.Pos
		st, err = w.decode(true)
		w.mode.lookedPast(v, pos)
		if err == nil && st.Kind == ring.StepEmpty {
			w.nothingAfter(v, st.DirtyTo)
			return evNone
		}
	}
	if err != nil {
		w.pushDamage(Damage{Kind: DamageCorrupt, Path: v.Path, From: w.walk.Pos, To: -1, Seq: w.walk.Seq, Err: err})
		w.endSegment(ring.EndDamaged, Damage{})
		return evNone
	}
	switch st.Kind {
	case ring.StepRecord, ring.StepPadding:
		if st.Gap > 0 {
			w.pushDamage(st.Damage)
		}
		if st.Kind == ring.StepPadding {
			break
		}
		rec := &st.Record
		w.rec = Record{Seq: rec.Seq, Time: rec.Time, Type: rec.Type, Payload: rec.Payload, Segment: v.Num, Offset: rec.Offset, Size: rec.Size}
		if len(w.queue) > w.head {
			w.push(event{kind: evRecord, rec: w.rec}) // after the damage before it
			break
		}
		return evRecord
	case ring.StepDamage:
		w.damaged(v, st.Damage)
	case ring.StepEnd:
		w.reportTruncated(v)
		w.endSegment(w.walk.Ending(), Damage{})
	}
	return evNone
}

// zeroAction is what to do at a zero length word, before looking past it.
type zeroAction uint8

const (
	zeroEnd   zeroAction = iota // the end of what is written (for now)
	zeroRetry                   // decode again: it was published meanwhile
	zeroLook                    // look past it for a provable record
	zeroGone                    // the segment was overwritten: reported, and left
)

// atZero decides, with the mode, what a zero length word at the current
// position means: the end of what is written so far, a record that a live
// writer goroutine is still writing, or a hole that will never be filled.
// It reports whether to look past it.
func (w *walker) atZero(v *rotate.View) bool {
	if v.Compressed {
		return true // a compressed segment is finished: a zero word in it is a hole
	}
	switch w.mode.atZero(w, v) {
	case zeroEnd:
		w.stop()
		return false
	case zeroRetry, zeroGone:
		return false
	}
	return true
}

// damaged handles a damaged range d that the walk of v met: a record the
// live writer reserved that the mode waits for, or damage, which ring's
// classification says what it is.
func (w *walker) damaged(v *rotate.View, d Damage) {
	if d.Hole && w.mode.pending(w, v, d.From, d.Seq) {
		// Records follow a record the live writer reserved and has not
		// written yet: wait for it, skip nothing.
		w.walk.Pos, w.walk.Seq, w.nextSeq = d.From, d.Seq, d.Seq
		w.stop()
		return
	}
	if d.Hole {
		// Bytes that fail their checks are corruption whatever the
		// facts; what zeros are, they say.
		d = w.facts(v).Classify(d)
	}
	w.pushDamage(d)
	if d.To < 0 {
		w.endSegment(ring.EndDamaged, Damage{})
	}
}

// nothingAfter handles a zero length word at the current position past
// which nothing could be proved (garbage up to dirtyTo).
func (w *walker) nothingAfter(v *rotate.View, dirtyTo int64) {
	later := w.laterStarted(v.Num, w.mode.growing())
	if w.mode.waitsPast(w, v, later) {
		w.stop()
		return
	}
	facts := w.facts(v)
	rest := ring.Rest{Path: v.Path, From: w.walk.Pos, DirtyTo: dirtyTo, Seq: w.walk.Seq, Rolled: later || v.Compressed}
	d, _ := facts.Rest(rest)
	if !rest.Rolled {
		// The end of the data in the last segment, its writer dead.
		w.reportTruncated(v)
		w.push(event{kind: evEnd, notice: d})
		return
	}
	// The rest of a rolled segment holds nothing: its writer crashed
	// before it closed it, the machine went down, or someone zeroed its
	// end. Garbage in it is skipped, and reported; what the zeros cost,
	// the next segment's first sequence number says.
	if dirtyTo > w.walk.Pos {
		w.pushDamage(d)
		d = Damage{}
	}
	w.endSegment(facts.EarlyEnd(), d)
}

// facts are what, besides its bytes, says what a bad range of v means
// (ring.Facts): the state of the segment, the writer's lock, and, for a
// segment a dead writer never finished, whether the machine went down
// since.
func (w *walker) facts(v *rotate.View) ring.Facts {
	f := ring.Facts{Finished: w.finished(v)}
	if !f.Finished {
		f.Live = w.writerAlive()
		f.PowerLoss = !f.Live && !w.pageCacheSurvived()
	}
	return f
}

// pageCacheSurvived reports whether the last writer of the log, dead now,
// ran in this boot of the machine. A lock file of an earlier version (a
// pid, no boot id), or a machine whose boots cannot be told apart, counts
// as this boot, as before boots were told apart; an empty one does not
// (its contents did not survive).
func (w *walker) pageCacheSurvived() bool {
	boot := fileutil.BootID()
	h, err := fileutil.LockHolder(w.lockPath)
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
func (w *walker) finished(v *rotate.View) bool {
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
// zeroed) the file under the walker. Nothing after the current position can
// be trusted, and no writer will finish the segment: the rest of it is
// damage, from where the walk is, and the walk goes on with the next
// segment, whose first sequence number says how many records were lost
// (what a walk opening the file now, finding its header zero or damaged,
// does too).
func (w *walker) rewritten(v *rotate.View) bool {
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
	w.pushDamage(Damage{Kind: DamageCorrupt, Path: v.Path, From: w.walk.Pos, To: -1, Seq: w.walk.Seq,
		Err: &ring.CorruptionError{Path: v.Path, Offset: 0, Err: fmt.Errorf("segment header overwritten while the segment was read (%s): another process wrote the file; its records from offset %d on are lost, reading goes on with the next segment", how, w.walk.Pos)}})
	w.endSegment(ring.EndDamaged, Damage{})
	return true
}

// writerAlive reports whether a writer holds the log's lock.
func (w *walker) writerAlive() bool {
	alive, _ := w.writer()
	return alive
}

// writer reports whether a writer holds the log's lock, and its pid (0 if
// unknown).
func (w *walker) writer() (alive bool, pid int) {
	alive, pid, _ = fileutil.IsLocked(w.lockPath)
	return alive, pid
}

// waitPublished waits until the zero length word at the current position
// is published by the live writer, for wait at most. It reports whether it
// was.
func (w *walker) waitPublished(wait time.Duration) bool {
	deadline := time.Now().Add(wait)
	for d := 50 * time.Microsecond; time.Now().Before(deadline); d = min(2*d, 20*time.Millisecond) {
		time.Sleep(d)
		saved, seq := w.walk, w.nextSeq
		st, err := w.decode(false)
		w.walk, w.nextSeq = saved, seq // the next step takes it
		if err != nil || st.Kind != ring.StepEmpty {
			return true
		}
		if !w.writerAlive() {
			return false
		}
	}
	return false
}

// reportTruncated reports, once, that the current segment's file is shorter
// than its header says: someone truncated it, and what was after the cut is
// lost.
func (w *walker) reportTruncated(v *rotate.View) {
	if !v.Truncated || w.truncReported == v.Num+1 {
		return
	}
	w.truncReported = v.Num + 1
	w.pushDamage(Damage{Kind: DamageCorrupt, Path: v.Path, From: int64(len(v.Data)), To: -1, Seq: w.walk.Seq,
		Err: &ring.CorruptionError{Path: v.Path, Offset: int64(len(v.Data)), Err: fmt.Errorf("%w: file truncated to %d bytes, its header says %d", ring.ErrShort, len(v.Data), v.Header.Size)}})
}

// endSegment finishes the walk of the current segment, which ended as how
// says: it is summed up (evSegment, with notice), and closed.
func (w *walker) endSegment(how ring.Ending, notice Damage) {
	w.push(event{kind: evSegment, seg: w.summary(), notice: notice})
	w.prevEnd = how
	w.closeView()
}

// summary sums up the current segment as walked so far.
func (w *walker) summary() SegmentReport {
	v, k := w.view, &w.walk
	return SegmentReport{Path: v.Path, Num: v.Num, Compressed: v.Compressed, Started: true, DiskBytes: v.Size,
		DataBytes: k.DataEnd, FirstSeq: v.Header.FirstSeq, NextSeq: k.Seq, Records: k.Records, Full: k.Full || v.Compressed, LogID: v.Header.LogID}
}

func (w *walker) closeView() {
	if w.view != nil {
		w.passed = w.view.Num
		w.view.Close()
		w.view = nil
	}
}

// mode is how a walk goes where the writer may still be writing: to the end
// of what is written, and stop there (reading), or on as the log grows
// (*follower). The walker asks it what zeros at its position mean; the
// Reader tells it what it reads.
type mode interface {
	// atZero decides what a zero length word at the walk's position
	// means, before the walker looks past it.
	atZero(w *walker, v *rotate.View) zeroAction
	// waitsPast reports whether the walk waits at zeros past which it
	// proved no record (later: segments after v hold data).
	waitsPast(w *walker, v *rotate.View, later bool) bool
	// pending reports whether zeros at off of v, where seq is expected,
	// past which a record is proved, are a record the live writer
	// reserved, which the walk waits for.
	pending(w *walker, v *rotate.View, off int64, seq uint64) bool
	// lookedPast: the walker looked past zeros at pos of v.
	lookedPast(v *rotate.View, pos int64)
	// growing reports whether the log is read as it grows: the walker
	// lists the directory again before it decides that nothing follows,
	// and a directory not created yet is waited for.
	growing() bool

	// opened: the Reader entered segment v (evStart).
	opened(r *Reader, v *rotate.View)
	// closed: the Reader is done with its segment (evSegment, Close).
	closed(r *Reader)
	// reached: the Reader reached the end of what is written (evEnd).
	reached(r *Reader)
	// wait is Reader.Wait.
	wait(ctx context.Context, r *Reader) error
}

// reading is the mode of a Reader without Follow, and of Verify: it reads
// to the end of what is written and stops there. A record a live writer
// reserved and has not written it waits for, holeWait at most, and then
// skips, as a hole.
type reading struct{ holeWait time.Duration }

func (m reading) atZero(w *walker, v *rotate.View) zeroAction {
	if w.rewritten(v) {
		return zeroGone
	}
	later := w.laterStarted(v.Num, false)
	alive := w.writerAlive()
	switch {
	case alive && !later:
		// The end of the data written so far.
		w.reportTruncated(v)
		return zeroEnd
	case alive && !w.finished(v):
		// A write in progress in a segment the live writer has not
		// finished yet: wait for it (holeWait at most).
		if w.waitPublished(m.holeWait) {
			return zeroRetry
		}
	}
	return zeroLook
}

func (reading) waitsPast(*walker, *rotate.View, bool) bool        { return false }
func (reading) pending(*walker, *rotate.View, int64, uint64) bool { return false }
func (reading) lookedPast(*rotate.View, int64)                    {}
func (reading) growing() bool                                     { return false }
func (reading) opened(*Reader, *rotate.View)                      {}
func (reading) closed(*Reader)                                    {}
func (reading) reached(r *Reader)                                 { r.atEnd = true }
func (reading) moved(*Reader, *Record)                            {}
func (reading) wait(context.Context, *Reader) error               { return nil }
