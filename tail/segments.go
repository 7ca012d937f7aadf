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

// This file finds and opens the segments a Reader goes through, through the
// one view of a log's segment set (rotate.List, rotate.Lookup,
// rotate.OpenSegment), and decides what a jump between them means.

// openNext opens the next segment; false at the end of the log (for now, in
// follow mode) or on error.
func (r *Reader) openNext() bool {
	for tries := 0; ; tries++ {
		n, ok := r.nextNumber()
		if !ok {
			return false
		}
		v, err := rotate.OpenSegment(r.dir, n, false)
		if errors.Is(err, fs.ErrNotExist) {
			if tries < 8 {
				// Removed by retention since the listing: list again.
				if !r.relistNow() {
					return false
				}
				continue
			}
			r.passed = n
			continue
		}
		later := false
		if errors.Is(err, ring.ErrShort) || errors.Is(err, ring.ErrNotStarted) {
			// A follower's listing may be older than the segments
			// after this one: list again (once per Next).
			later = r.laterStarted(n, r.opts.Follow && !r.relisted)
			if r.err != nil {
				return false
			}
		}
		if errors.Is(err, ring.ErrShort) && !later {
			// The newest file, still being created and preallocated by
			// the writer's preparer: as good as not started.
			err = ring.ErrNotStarted
		}
		if errors.Is(err, ring.ErrNotStarted) && later {
			// Later segments hold data. The writer activates segments
			// in order, so if this one is still zero now, it will never
			// start; if it started meanwhile, read it.
			if fi, lerr := rotate.Lookup(r.dir, n); lerr == nil {
				if _, perr := rotate.PeekHeader(fi); !errors.Is(perr, ring.ErrNotStarted) {
					continue
				}
			}
			path := r.pathOf(n)
			r.report(Damage{Kind: DamageCorrupt, Path: path, From: 0, To: -1, Seq: r.nextSeq, Err: &ring.CorruptionError{Path: path, Offset: 0,
				Err: errors.New("segment header is zero but later segments hold data (zeroed, or never activated)")}})
			r.verify.unreadable(r, n, path)
			r.passed = n
			r.prevEnd = endDamaged
			continue
		}
		if errors.Is(err, ring.ErrNotStarted) {
			// Prepared by the writer but not used yet: the end, for now.
			if !r.opts.Follow {
				r.atEnd = true
			}
			return false
		}
		if err != nil {
			var ce *ring.CorruptionError
			path := r.pathOf(n)
			if errors.As(err, &ce) {
				r.report(Damage{Kind: DamageCorrupt, Path: path, From: 0, To: -1, Seq: r.nextSeq, Err: err})
				r.verify.unreadable(r, n, path)
				r.passed = n
				r.prevEnd = endDamaged
				continue
			}
			if r.verify != nil {
				r.verify.openError(n, path, err)
				r.passed = n
				continue
			}
			r.err = fmt.Errorf("tail: %w", err)
			return false
		}
		if !r.checkLog(v) {
			v.Close()
			if r.verify != nil {
				r.passed = n
				continue
			}
			return false
		}
		first := v.Header.FirstSeq
		switch {
		case !r.started:
			r.started = true
			if r.opts.FromSeq > 0 && first > r.opts.FromSeq {
				r.report(Damage{Kind: DamageRemoved, Path: v.Path, From: 0, To: 0, Lost: first - r.opts.FromSeq, Seq: r.opts.FromSeq, Resume: first,
					Err: fmt.Errorf("records from %d on were asked for, the oldest segment starts at %d (removed by retention)", r.opts.FromSeq, first)})
			}
		case first > r.nextSeq:
			r.report(r.jump(v, n, first))
		case first < r.nextSeq:
			r.report(Damage{Kind: DamageCorrupt, Path: v.Path, From: 0, To: -1, Seq: r.nextSeq,
				Err: &ring.CorruptionError{Path: v.Path, Offset: ring.OffFirstSeq, Err: fmt.Errorf("%w: segment starts at %d, the previous one ended at %d", ring.ErrSequence, first, r.nextSeq)}})
			r.verify.unreadable(r, n, v.Path)
			v.Close()
			r.passed = n
			continue
		}
		r.nextSeq = first
		r.view = v
		r.walk = ring.NewWalker(first)
		r.seekTo(v, first)
		r.released = 0
		if r.opts.Follow && !v.Compressed {
			r.mapControl()
		}
		return true
	}
}

// jump is the Damage for segment n (v) starting at first, after the
// sequence number expected next: why records are missing before it.
func (r *Reader) jump(v *rotate.View, n, first uint64) Damage {
	d := Damage{Path: v.Path, From: 0, To: 0, Lost: first - r.nextSeq, Seq: r.nextSeq, Resume: first}
	switch {
	case n == r.passed+1 && r.prevEnd == endUnfinish:
		// The previous segment ends with writes its crashed writer
		// reserved and never finished.
		d.Kind, d.Lost = DamageUnfinished, 0
		d.Err = fmt.Errorf("%w (sequence numbers %d to %d, at the end of the previous segment)", errUnfinished, r.nextSeq, first-1)
	case n == r.passed+1 && r.prevEnd == endPowerLoss:
		d.Kind = DamageCorrupt
		d.Err = fmt.Errorf("%w: records %d to %d, at the end of the previous segment, never reached the disk: lost", ring.ErrPowerLoss, r.nextSeq, first-1)
	case n == r.passed+1:
		d.Kind = DamageCorrupt
		d.Err = fmt.Errorf("segment starts at sequence %d, %d expected (records missing before it: the previous segment is damaged)", first, r.nextSeq)
	case r.olderPresent(r.passed + 1):
		d.Kind = DamageCorrupt
		d.Err = fmt.Errorf("segment starts at sequence %d, %d expected: segments %d to %d are missing in the middle of the log (deleted by someone else?)", first, r.nextSeq, r.passed+1, n-1)
	default:
		d.Kind = DamageRemoved
		d.Err = fmt.Errorf("segment starts at sequence %d, %d expected (records removed by retention before they were read)", first, r.nextSeq)
	}
	return d
}

// olderPresent reports whether a segment numbered below n is still listed:
// retention removes the oldest segments first, so a missing segment with an
// older one still present was not removed by retention.
func (r *Reader) olderPresent(n uint64) bool {
	oldest, ok := r.list.Oldest()
	return ok && oldest < n
}

// nextNumber returns the number of the segment to read next: the next
// number after the ones passed if it exists (looked up by name, both names),
// else the next one listed. false: there is none (for now).
func (r *Reader) nextNumber() (uint64, bool) {
	if r.started {
		if _, err := rotate.Lookup(r.dir, r.passed+1); err == nil {
			return r.passed + 1, true
		}
	}
	if fi, ok := r.list.After(r.passed); ok {
		if !r.started || r.relisted {
			return fi.Num, true
		}
		// Listed before, but not there now: list again to see what
		// became of the segments in between.
	}
	if r.relisted || !r.relistNow() {
		if !r.opts.Follow {
			r.atEnd = r.err == nil
		}
		return 0, false
	}
	if fi, ok := r.list.After(r.passed); ok {
		return fi.Num, true
	}
	if !r.opts.Follow {
		r.atEnd = r.err == nil
	}
	return 0, false
}

// pathOf is the path of segment n as last listed (or its plain name).
func (r *Reader) pathOf(n uint64) string {
	if fi, ok := r.list.Find(n); ok {
		return fi.Path
	}
	if fi, err := rotate.Lookup(r.dir, n); err == nil {
		return fi.Path
	}
	return filepath.Join(r.dir, rotate.SegmentName(n))
}

// checkLog checks that v belongs to the log being read.
func (r *Reader) checkLog(v *rotate.View) bool {
	id := v.Header.LogID
	if r.opts.LogID != ([16]byte{}) && id != r.opts.LogID {
		r.err = fmt.Errorf("tail: %s: %w (log id %x, expected %x): the directory holds a new log, or the cursor belongs to another one", v.Path, ErrOtherLog, id, r.opts.LogID)
		return false
	}
	if r.haveID && id != r.logID {
		err := fmt.Errorf("tail: %s: %w (log id %x, the earlier segments have %x)", v.Path, ErrOtherLog, id, r.logID)
		if r.verify != nil {
			r.verify.otherLog(v, err)
			return false
		}
		r.err = err
		return false
	}
	r.logID, r.haveID = id, true
	return true
}

// relistNow reads the directory again; false if that failed (Err says why).
func (r *Reader) relistNow() bool {
	r.relisted = true
	l, err := rotate.List(r.dir)
	if err != nil && !(r.opts.Follow && errors.Is(err, fs.ErrNotExist)) {
		r.err = fmt.Errorf("tail: %w", err)
		return false
	}
	r.list = l
	return true
}

// laterStarted reports whether a segment numbered after cur holds data,
// listing the directory again first if relist is set.
func (r *Reader) laterStarted(cur uint64, relist bool) bool {
	if relist && !r.relistNow() {
		return false
	}
	for _, fi := range r.list.Segments {
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
