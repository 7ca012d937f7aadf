package tail

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/mmaplog/mmaplog/internal/fault"
	"github.com/mmaplog/mmaplog/ring"
	"github.com/mmaplog/mmaplog/rotate"
)

// This file finds and opens the segments a walker goes through, through the
// one view of a log's segment set (rotate.List, rotate.Lookup,
// rotate.OpenSegment), and decides what a jump between them means.

// openNext opens the next segment (evStart), or finds that there is none
// for now (evEnd) or that the walk cannot go on (evError). A segment that
// cannot be read is reported (evDamage and evSegment, or evProblem) and
// passed.
func (w *walker) openNext() {
	for tries := 0; ; tries++ {
		n, ok := w.nextNumber()
		if !ok {
			w.stop()
			return
		}
		v, err := rotate.OpenSegment(w.dir, n, false)
		switch {
		case errors.Is(err, fs.ErrNotExist) && tries < 8:
			// Removed by retention since the listing: list again.
			if !w.relistNow() {
				w.stop()
				return
			}
		case errors.Is(err, fs.ErrNotExist):
			w.passed = n
		case err != nil:
			if !w.notOpened(n, err) {
				return
			}
		default:
			w.enter(n, v)
			return
		}
	}
}

// notOpened handles segment n, which could not be opened (err). It reports
// whether to look for the next segment now; false: events say what comes.
func (w *walker) notOpened(n uint64, err error) bool {
	notStarted := errors.Is(err, ring.ErrNotStarted)
	later := false
	if notStarted || errors.Is(err, ring.ErrShort) {
		// A follower's listing may be older than the segments after
		// this one: list again (once per pass).
		later = w.laterStarted(n, w.mode.growing() && !w.relisted)
		if w.failed != nil {
			w.stop()
			return false
		}
		// The newest file, still being created and preallocated by the
		// writer's preparer, is as good as not started.
		notStarted = notStarted || !later
	}
	var ce *ring.CorruptionError
	switch {
	case notStarted && later:
		// Later segments hold data. The writer activates segments in
		// order, so if this one is still zero now, it will never
		// start; if it started meanwhile, read it.
		if fi, lerr := rotate.Lookup(w.dir, n); lerr == nil {
			if _, perr := rotate.PeekHeader(fi); !errors.Is(perr, ring.ErrNotStarted) {
				return true
			}
		}
		path := w.pathOf(n)
		w.unreadable(n, Damage{Kind: DamageCorrupt, Path: path, From: 0, To: -1, Seq: w.nextSeq, Err: &ring.CorruptionError{Path: path, Offset: 0,
			Err: errors.New("segment header is zero but later segments hold data (zeroed, or never activated)")}})
	case notStarted:
		// Prepared by the writer but not used yet: the end, for now.
		w.stop()
	case errors.As(err, &ce):
		w.unreadable(n, Damage{Kind: DamageCorrupt, Path: w.pathOf(n), From: 0, To: -1, Seq: w.nextSeq, Err: err})
	default:
		path := w.pathOf(n)
		w.passFirst(n)
		w.push(event{kind: evProblem, err: err, seg: SegmentReport{Path: path, Num: n, Damaged: true}})
		w.passed = n
	}
	return false
}

// unreadable reports segment n, which cannot be read at all, and passes
// it: d says why.
func (w *walker) unreadable(n uint64, d Damage) {
	w.passFirst(n)
	if d.Seq == 0 {
		d.Seq = w.nextSeq
	}
	w.pushDamage(d)
	w.push(event{kind: evSegment, seg: SegmentReport{Path: d.Path, Num: n, Damaged: true}})
	w.passed = n
	w.prevEnd = ring.EndDamaged
}

// passFirst notes, where the walk starts by passing segment n unread, what
// the records it held were: the writer starts every log with segment 1 and
// record 1, so a walk that cannot read segment 1 knows that the next
// segment's records follow record 0, and counts those before it as lost.
// (A walk from a later record leaves it to that record's jump.)
func (w *walker) passFirst(n uint64) {
	if !w.started && n == 1 && w.opts.FromSeq <= 1 {
		w.started, w.nextSeq = true, 1
	}
}

// enter makes v, segment n just opened, the one the walk goes through
// (evStart), after what its first sequence number says of the records
// before it; or it passes it.
func (w *walker) enter(n uint64, v *rotate.View) {
	if !w.checkLog(n, v) {
		v.Close()
		return
	}
	first := v.Header.FirstSeq
	switch {
	case !w.started:
		w.started = true
		if from := w.opts.FromSeq; from > 0 && first > from {
			w.pushDamage(ring.Jump{Path: v.Path, Num: n, Expect: from, First: first, Start: true}.Damage())
		}
	case first > w.nextSeq:
		w.pushDamage(w.jump(v, n, first))
	case first < w.nextSeq:
		w.pushDamage(Damage{Kind: DamageCorrupt, Path: v.Path, From: 0, To: -1, Seq: w.nextSeq,
			Err: &ring.CorruptionError{Path: v.Path, Offset: ring.OffFirstSeq, Err: fmt.Errorf("%w: segment starts at %d, the previous one ended at %d", ring.ErrSequence, first, w.nextSeq)}})
		w.push(event{kind: evSegment, seg: SegmentReport{Path: v.Path, Num: n, Damaged: true}})
		v.Close()
		w.passed = n
		return
	}
	w.nextSeq = first
	w.view = v
	w.walk = ring.NewWalker(first)
	w.walk.Path = v.Path
	w.push(event{kind: evStart})
}

// jump is the Damage for segment n (v) starting at first, after the
// sequence number expected next: why records are missing before it, as
// ring.Jump says from how the segments before it ended or went.
func (w *walker) jump(v *rotate.View, n, first uint64) Damage {
	j := ring.Jump{Path: v.Path, Num: n, Expect: w.nextSeq, First: first, Passed: w.passed}
	if n == w.passed+1 {
		j.Adjacent, j.Prev = true, w.prevEnd
	} else {
		j.OlderPresent = w.olderPresent(w.passed + 1)
	}
	return j.Damage()
}

// olderPresent reports whether a segment numbered below n is still listed:
// retention removes the oldest segments first, so a missing segment with an
// older one still present was not removed by retention.
func (w *walker) olderPresent(n uint64) bool {
	oldest, ok := w.list.Oldest()
	return ok && oldest < n
}

// nextNumber returns the number of the segment to read next: the next
// number after the ones passed if it exists (looked up by name, both names),
// else the next one listed. false: there is none (for now).
func (w *walker) nextNumber() (uint64, bool) {
	if w.started {
		if _, err := rotate.Lookup(w.dir, w.passed+1); err == nil {
			return w.passed + 1, true
		}
	}
	if fi, ok := w.list.After(w.passed); ok {
		if !w.started || w.relisted {
			return fi.Num, true
		}
		// Listed before, but not there now: list again to see what
		// became of the segments in between.
	}
	if w.relisted || !w.relistNow() {
		return 0, false
	}
	if fi, ok := w.list.After(w.passed); ok {
		return fi.Num, true
	}
	return 0, false
}

// pathOf is the path of segment n as last listed (or its plain name).
func (w *walker) pathOf(n uint64) string {
	if fi, ok := w.list.Find(n); ok {
		return fi.Path
	}
	if fi, err := rotate.Lookup(w.dir, n); err == nil {
		return fi.Path
	}
	return filepath.Join(w.dir, rotate.SegmentName(n))
}

// checkLog checks that v, segment n, belongs to the log being read: one of
// another log than asked for stops the walk; one of another log than the
// segments before it is passed (evProblem).
func (w *walker) checkLog(n uint64, v *rotate.View) bool {
	id := v.Header.LogID
	if want := w.opts.LogID; want != ([16]byte{}) && id != want {
		w.fail(fmt.Errorf("tail: %s: %w (log id %x, expected %x): the directory holds a new log, or the cursor belongs to another one", v.Path, ErrOtherLog, id, want))
		return false
	}
	if w.haveID && id != w.logID {
		w.push(event{kind: evProblem, err: fmt.Errorf("%s: %w (log id %x, the earlier segments have %x)", v.Path, ErrOtherLog, id, w.logID),
			seg: SegmentReport{Path: v.Path, Num: v.Num, Compressed: v.Compressed, Started: true, Damaged: true, DiskBytes: v.Size, FirstSeq: v.Header.FirstSeq, LogID: v.Header.LogID}})
		w.passed = n
		return false
	}
	w.logID, w.haveID = id, true
	return true
}

// relistNow reads the directory again; false if that failed (failed says
// why).
func (w *walker) relistNow() bool {
	w.relisted = true
	l, err := rotate.List(w.dir)
	if err != nil && !(w.mode.growing() && errors.Is(err, fs.ErrNotExist)) {
		w.failed = fmt.Errorf("tail: %w", err)
		return false
	}
	w.list = l
	return true
}

// laterStarted reports whether a segment numbered after cur holds data,
// listing the directory again first if relist is set.
func (w *walker) laterStarted(cur uint64, relist bool) bool {
	if relist && !w.relistNow() {
		return false
	}
	for _, fi := range w.list.Segments {
		if fi.Num <= cur {
			continue
		}
		_, err := rotate.PeekHeader(fi)
		if !errors.Is(err, ring.ErrNotStarted) && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, ring.ErrShort) {
			return true
		}
	}
	return false
}

// chooseStart picks the segment to start at for FromSeq or FromEnd, reading
// only segment headers (and, for FromEnd, the last segment).
func (r *Reader) chooseStart() {
	if !r.opts.FromEnd && r.opts.FromSeq == 0 {
		return
	}
	for i := len(r.list.Segments) - 1; i >= 0; i-- {
		fi := r.list.Segments[i]
		h, err := rotate.PeekHeader(fi)
		if err != nil {
			continue // not started, or damaged: the reading proper reports it
		}
		if r.opts.FromEnd {
			next, err := nextSeqOf(fi)
			if err != nil {
				continue
			}
			r.opts.FromSeq = next
		} else if h.FirstSeq > r.opts.FromSeq {
			continue
		}
		if fi.Num > 0 {
			r.passed = fi.Num - 1
		}
		return
	}
}

// nextSeqOf returns the sequence number that follows the last record of a
// segment (for starting at the end of a log).
func nextSeqOf(fi rotate.FileInfo) (next uint64, err error) {
	v, err := rotate.OpenView(fi)
	if err != nil {
		return 0, err
	}
	defer v.Close()
	err = fault.Guard(v.Path, func() error {
		next = ring.Scan(v.Data, v.Header.FirstSeq, nil).NextSeq
		return nil
	})
	return next, err
}
