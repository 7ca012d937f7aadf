package tail

import (
	"context"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/mmaplog/mmaplog/internal/fault"
	"github.com/mmaplog/mmaplog/internal/fileutil"
	"github.com/mmaplog/mmaplog/ring"
	"github.com/mmaplog/mmaplog/rotate"
)

// This file is the live part of the Reader, as Prometheus's wlog keeps
// live_reader.go apart from reader.go: what a following Reader does at the
// end of what is written, how long it waits for a record a writer reserved,
// and how it sleeps until the writer wakes it.

// follower is the mode of a following Reader (Options.Follow): where it
// found nothing to read, and since when; the stall it reports; how long it
// sleeps.
type follower struct {
	opts       *Options
	ctl        []byte // writable mapping of the current segment's first page (nil: none)
	emptySeg   uint64
	emptyAt    int64
	emptySince time.Time
	checkAt    time.Time
	checkEvery time.Duration
	scanned    bool // nothing followed emptyAt when the writer was not running
	evidence   bool // woken by the writer while emptyAt stayed empty: it wrote elsewhere
	scanAt     time.Time
	scanEvery  time.Duration
	idle       int // Waits in a row that found nothing
	// holdNone: Release was called since the last record; Wait keeps
	// the segment's pages unmapped through its sleep.
	holdNone bool
	// stall is the record at emptyAt that the live writer reserved and
	// has not written, once reported (stalling); warnAt is when to
	// report it again, warnEvery the step after that.
	stall     Stall
	stalling  bool
	warnAt    time.Time
	warnEvery time.Duration
	waits     WaitStats
}

// WaitStats counts how a following Reader's calls to Wait ended: what a
// record that arrives late waited through. A record that came while Wait
// looked (Spun) costs microseconds; one behind a sleep costs the writer's
// futex wake-up and the scheduler's (Woken); a sleep that ran to its
// timeout (TimedOut) while records came means that the writer did not wake
// the Reader.
type WaitStats struct {
	Spun     uint64 // a record came while Wait looked, before it slept
	Woken    uint64 // the writer's wake-up ended the sleep
	TimedOut uint64 // the sleep ran to its timeout
	Released uint64 // sleeps before which the segment's pages were given back
	Polled   uint64 // sleeps on a timer: between segments, or with no writable control page
}

// WaitStats returns how the Reader's Waits ended so far (all zero for a
// Reader that does not follow).
func (r *Reader) WaitStats() WaitStats { return r.follow.waits }

func newFollower(o *Options) follower { return follower{opts: o, emptyAt: -1} }

// maxWarnEvery bounds the time between two reports of a stall.
const maxWarnEvery = 10 * time.Minute

// atZero decides, in follow mode, what a zero length word at the current
// position means: the end of what is written so far, or a record that a
// live writer goroutine is still writing (zeroEnd: wait), or maybe a hole
// that will never be filled (zeroLook: look past it; what is found there
// decides, see pending), or nothing any more, the segment overwritten under
// the Reader (zeroGone: reported). It looks past the word only now and then:
// walking the rest of a segment costs a few milliseconds.
func (f *follower) atZero(w *walker, v *rotate.View) zeroAction {
	now := time.Now()
	if f.emptyAt != w.walk.Pos || f.emptySeg != v.Num {
		if f.stalling {
			f.stallOver(false)
		}
		f.emptyAt, f.emptySeg, f.emptySince = w.walk.Pos, v.Num, now
		f.warnAt, f.warnEvery = time.Time{}, f.opts.HoleWait
		f.checkEvery = 100 * time.Millisecond
		f.checkAt = now.Add(20 * time.Millisecond)
		f.scanned, f.evidence = false, false
		f.scanAt, f.scanEvery = now.Add(f.opts.HoleWait), f.opts.HoleWait
		return zeroEnd
	}
	if now.Before(f.checkAt) {
		return zeroEnd
	}
	f.checkAt = now.Add(f.checkEvery)
	f.checkEvery = min(2*f.checkEvery, 5*time.Second)
	if w.rewritten(v) {
		return zeroGone
	}
	var finished bool
	if fault.Guard(v.Path, func() error { finished = ring.LoadState(v.Data).Finished(); return nil }) != nil {
		return zeroLook // the next step meets the fault and reports it
	}
	if w.writerAlive() {
		f.scanned = false
		if !finished && !f.lookNow(now) {
			return zeroEnd
		}
	}
	if f.scanned {
		return zeroEnd // nothing followed, and no writer ran since
	}
	return zeroLook
}

// lookNow reports whether a follower waiting at zeros in a segment the live
// writer has not finished looks past them now.
func (f *follower) lookNow(now time.Time) bool {
	if now.Sub(f.emptySince) < f.opts.HoleWait {
		return false // a writer goroutine may still publish it
	}
	// Waiting at the end of what is written is the normal idle state: look
	// past it only when the writer woke this reader for records
	// elsewhere, and otherwise rarely.
	if !f.evidence || f.ctl == nil {
		if now.Before(f.scanAt) {
			return false
		}
		f.scanEvery = min(2*f.scanEvery, 10*time.Minute)
		f.scanAt = now.Add(f.scanEvery)
	}
	return true
}

// waitsPast: the end of what is written so far, or (later segments
// started) records the live writer reserved at the end of this segment and
// has not written yet.
func (f *follower) waitsPast(w *walker, v *rotate.View, later bool) bool {
	if later && !f.pending(w, v, w.walk.Pos, w.walk.Seq) {
		return false
	}
	f.scanned = !later && !w.writerAlive()
	return true
}

// pending reports whether the zero length word at offset off of v, where
// sequence number seq is expected, is a record that the writer reserved and
// may still write (ring.ZerosPending): the writer has not finished v (sealed
// or closed it), and it holds the log's lock. Such a record is never
// skipped, however long it takes (a writer process stopped in the middle of
// a Write), whatever is written after it: the Reader waits, telling OnStall
// once it has waited HoleWait. Only once the writer is gone (it no longer
// holds the lock) is the range skipped, as an unfinished write; once it has
// finished v, as a hole.
func (f *follower) pending(w *walker, v *rotate.View, off int64, seq uint64) bool {
	facts := ring.Facts{Finished: w.finished(v)}
	pid := 0
	if !facts.Finished {
		facts.Live, pid = w.writer()
	}
	if facts.Zeros() != ring.ZerosPending {
		return false
	}
	f.stalled(Stall{Path: v.Path, Offset: off, Seq: seq, PID: pid})
	return true
}

func (*follower) growing() bool { return true }

// opened maps the first page of v, the segment just entered, writable, for
// the futex wait on its control words. A Reader without write access to
// the segment files goes without it and polls.
func (f *follower) opened(r *Reader, v *rotate.View) {
	if v.Compressed {
		return
	}
	if b, err := v.MapControl(); err == nil {
		f.ctl = b
	}
}

func (f *follower) closed(*Reader) {
	if f.ctl != nil {
		fileutil.Unmap(f.ctl)
		f.ctl = nil
	}
}

// reached ends a following Reader that has read everything once the clock
// is past Until by UntilGrace.
func (f *follower) reached(r *Reader) {
	if !r.opts.Until.IsZero() && r.err == nil && time.Now().After(r.opts.Until.Add(UntilGrace)) {
		r.atEnd = true
	}
}

// read is told that the Reader read rec: a stall is over (rec is the
// record it waited for, or one after it), and Wait starts again from a
// short sleep. Every Reader tells its follower state (one that does not
// follow never stalls nor waits); it is on the way to every record, and
// small enough to be inlined.
func (f *follower) read(rec *Record) {
	if f.stalling {
		f.stallOver(rec.Seq == f.stall.Seq)
	}
	f.idle, f.holdNone = 0, false
}

// skipped is told that the Reader went past damage: a stall is over, the
// record waited for not read.
func (f *follower) skipped() {
	if f.stalling {
		f.stallOver(false)
	}
}

// stalled notes s, a record that the live writer reserved and has not
// written, at the position where the Reader waits. Once the Reader has
// waited HoleWait there, it tells OnStall, and again as the wait goes on,
// twice as long apart each time (maxWarnEvery at most).
func (f *follower) stalled(s Stall) {
	now := time.Now()
	s.Waited = now.Sub(f.emptySince)
	if s.Waited < f.opts.HoleWait || now.Before(f.warnAt) {
		return
	}
	f.warnAt = now.Add(f.warnEvery)
	f.warnEvery = min(2*f.warnEvery, maxWarnEvery)
	f.stall, f.stalling = s, true
	if f.opts.OnStall != nil {
		f.opts.OnStall(f.stall)
	}
}

// stallOver ends a stall that was reported: the Reader goes on, with the
// record it waited for (published) or past it.
func (f *follower) stallOver(published bool) {
	s := f.stall
	f.stall, f.stalling = Stall{}, false
	s.Over, s.Published, s.Waited = true, published, time.Since(f.emptySince)
	if f.opts.OnStall != nil {
		f.opts.OnStall(s)
	}
}

// lookedPast gives back the pages after pos, which looking past a zero
// length word there touched.
func (f *follower) lookedPast(v *rotate.View, pos int64) {
	if v.Compressed {
		return
	}
	page := int64(fileutil.PageSize())
	from := (pos/page + 1) * page
	if from < int64(len(v.Data)) {
		_ = fileutil.DontNeed(v.Data, int(from), len(v.Data)-int(from))
	}
}

// Wait waits, in follow mode, until more records may be there: it spins
// briefly, then yields, then sleeps on the segment's wake word, where the
// writer wakes it when it publishes a record, or a timeout
// (Options.WaitTimeout, growing to MaxIdleWait while the log is idle). It
// returns when ctx is done, with its error, at most MaxIdleWait late. Call
// Next after it: Wait may return without anything new.
//
// Before it sleeps, the Reader raises the segment's "wake me until"
// deadline (ring.ArmWake) to the end of its sleep, at most MaxIdleWait
// ahead; the writer pays for a wake-up only for records stamped before the
// deadline. A Reader killed in its sleep thus costs the writer at most
// MaxIdleWait of wake-ups, and a writer nobody watches none.
func (r *Reader) Wait(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if r.err != nil {
		return nil
	}
	return r.mode.wait(ctx, r)
}

// wait is Wait in follow mode.
func (f *follower) wait(ctx context.Context, r *Reader) error {
	if r.view == nil || f.ctl == nil {
		// Between segments, or no writable control page: sleep, growing.
		d := min(time.Duration(50<<min(f.idle, 10))*time.Microsecond, r.idleTimeout())
		f.idle++
		f.waits.Polled++
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		return nil
	}
	if r.futexWait() {
		f.idle = 0
	} else {
		f.idle++
	}
	return ctx.Err()
}

// futexWait is Wait on the current segment. It reports whether the length
// word at the position became non-zero (or the writer woke it).
func (r *Reader) futexWait() (ready bool) {
	if err := fault.Guard(r.view.Path, func() error {
		ready = r.futexWaitGuarded()
		return nil
	}); err != nil {
		return true // Next meets the fault and reports it
	}
	return ready
}

func (r *Reader) futexWaitGuarded() bool {
	v := r.view
	pos := r.walk.Pos - v.Base
	if pos < 0 || pos+ring.RecordHeaderSize > int64(len(v.Data)) {
		return true
	}
	word := ring.LengthWord(v.Data, int(pos))
	if r.follow.idle == 0 && !r.follow.holdNone && r.spinFor(word) {
		// Busy a moment ago: the next record is likely microseconds away
		// (unless told to hold no pages: looking maps them).
		r.follow.waits.Spun++
		return true
	}
	ctl := r.follow.ctl
	wake := ring.WakeWord(ctl)
	w := atomic.LoadUint32(wake)
	timeout := r.idleTimeout()
	now := time.Now().UnixNano()
	// Ask to be woken until the sleep ends, then look once more: the
	// writer stores a record's length word before it reads the deadline,
	// this reader raises the deadline before it reads the length word,
	// so one of the two sees the other.
	ring.ArmWake(ctl, now, now+int64(timeout))
	// Idle for a while, or told to hold no pages (Release): the sleep may
	// be long, so hold no pages of the segment through it (the kernel maps
	// page-cache folios of up to a few MiB whole on a fault, whatever was
	// touched, and the looks at the length word above touched one). The
	// wake word is in the control page, a mapping of its own.
	release := r.follow.idle >= releaseIdle || r.follow.holdNone
	ws := &r.follow.waits
	if atomic.LoadUint32(word) != 0 {
		ws.Spun++
		return true
	}
	if release {
		r.Release()
		ws.Released++
	}
	fileutil.FutexWait(wake, w, timeout)
	woken := atomic.LoadUint32(wake) != w
	if woken {
		ws.Woken++
	} else {
		ws.TimedOut++
	}
	if atomic.LoadUint32(word) != 0 {
		return true
	}
	if release {
		r.Release() // the look just now mapped the folio again
	}
	if woken {
		// Woken, yet nothing here: the writer published elsewhere
		// (a later record past one still being written, or a roll).
		r.follow.evidence = true
		return true
	}
	return false
}

// spinFor looks at the length word a while before Wait sleeps: 200 loads,
// then for Options.Spin, then 20 yields of the processor. It reports
// whether the word became non-zero.
func (r *Reader) spinFor(word *uint32) bool {
	for i := 0; i < 200; i++ {
		if atomic.LoadUint32(word) != 0 {
			return true
		}
	}
	if r.opts.Spin > 0 {
		for end := time.Now().Add(r.opts.Spin); ; {
			for i := 0; i < 64; i++ {
				if atomic.LoadUint32(word) != 0 {
					return true
				}
			}
			if time.Now().After(end) {
				break
			}
		}
	}
	for i := 0; i < 20; i++ {
		runtime.Gosched()
		if atomic.LoadUint32(word) != 0 {
			return true
		}
	}
	return false
}

// releaseIdle is how many Waits in a row must find nothing (5 ms, then
// 10 ms, ... asleep) before Wait gives back the segment's pages while it
// sleeps: not while records come every few milliseconds, when the next
// record's fault would add to its latency.
const releaseIdle = 1

// idleTimeout is how long Wait sleeps without being woken: WaitTimeout at
// first, doubling while nothing comes, up to MaxIdleWait, so that an idle
// follower costs next to no CPU.
func (r *Reader) idleTimeout() time.Duration {
	return min(r.opts.WaitTimeout<<min(r.follow.idle, 8), max(MaxIdleWait, r.opts.WaitTimeout), MaxIdleWait)
}

// release gives back the pages of the current mapping below off.
func (r *Reader) release(off int64) {
	if r.view == nil || r.view.Compressed {
		return
	}
	_ = fileutil.DontNeed(r.view.Data, 0, int(off))
	r.released = off
}

// Release gives back every page of the segment the Reader has mapped (they
// stay in the page cache; the next read maps what it touches again), so
// that a Reader that will not read for a while holds no memory for it: a
// process following many logs calls it on a log's Reader when it stops
// reading that log for now. The payload of the last record stays valid
// (it is read again from the page cache when touched). A following
// Reader does the same on its own when Wait sleeps on an idle log.
func (r *Reader) Release() {
	if r.view == nil || r.view.Compressed {
		return
	}
	_ = fileutil.DontNeed(r.view.Data, 0, len(r.view.Data))
	r.follow.holdNone = true
	// Everything below the position is given back; Next counts from here.
	r.released = max(r.walk.Pos-r.view.Base, 0)
}
