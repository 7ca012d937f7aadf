package rotate

import (
	"fmt"
	"os"
	"time"

	"github.com/mmaplog/mmaplog/ring"
)

// finisher finishes rolled segments in order (finish), and under MaxAge or
// KeepUnshipped applies the retention every so often though nothing rolls
// over: segments age, and consumers pass the segments held for them.
func (l *Lifecycle) finisher() {
	defer close(l.finished)
	var tick <-chan time.Time
	if iv := l.recheck(); iv > 0 {
		t := time.NewTicker(iv)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case seg, ok := <-l.finishCh:
			if !ok {
				return
			}
			l.finish(seg)
		case <-tick:
			l.retain(l.active.Load(), l.finishedNum.Load(), 0, true)
		}
	}
}

// recheck returns how often the finisher applies the retention on its own
// (0: never).
func (l *Lifecycle) recheck() time.Duration {
	r := l.o.Retention
	if r.MaxAge <= 0 && !r.KeepUnshipped {
		return 0
	}
	iv := time.Minute
	if r.MaxAge > 0 {
		iv = min(max(r.MaxAge/10, time.Second), time.Minute)
	}
	if r.KeepUnshipped && l.o.Recheck > 0 {
		iv = min(iv, l.o.Recheck)
	}
	return iv
}

// finish finishes the rolled segment seg: it waits until every record
// reserved in it is published, marks it sealed, flushes it as the policy
// asks, sets its modification time (MaxAge counts from the roll), unmaps it
// or gives its mapping to the pool, and applies the retention (and
// compression).
func (l *Lifecycle) finish(seg *Live) {
	err := truncated(seg.Segment)
	if err == nil {
		err = seg.Ring.WaitReleased(10 * time.Second)
	}
	if err != nil {
		// A goroutine reserved space and never wrote it, or another
		// process truncated the file: leave the mapping in place (a
		// Write may still be under way in it) and let recovery repair
		// the hole, but let retention go on (removing a mapped file is
		// safe).
		l.report(fmt.Errorf("finishing %s: %w", seg.Path, err))
		l.finishedNum.Store(seg.Num + 1)
		return
	}
	if err := storeState(seg, ring.StateSealed); err != nil {
		// Truncated by another process just now: its records are gone,
		// and there is nothing to flush.
		l.report(fmt.Errorf("finishing %s: %w", seg.Path, err))
	} else if l.o.Flush.SyncsRolled() {
		if err := seg.Region.Flush(len(seg.Data), true); err != nil {
			l.report(fmt.Errorf("msync %s: %w", seg.Path, err))
		}
	}
	now := l.o.Now()
	os.Chtimes(seg.Path, now, now) // MaxAge counts from the roll
	if err := seg.release(l.pool); err != nil {
		l.report(fmt.Errorf("unmap %s: %w", seg.Path, err))
	}
	l.finishedNum.Store(seg.Num + 1)
	active := l.active.Load()
	l.retain(active, seg.Num+1, 0, true)
	// The preparer waiting for room looks again only now, once this pass
	// may have pooled a file for it: one directory listing, not two.
	select {
	case l.finishedSig <- struct{}{}:
	default:
	}
	l.compressRolled(active, seg.Num+1)
}

// retention returns the Retention the Lifecycle applies.
func (l *Lifecycle) retention() Retention {
	r := l.o.Retention
	r.SyncDir, r.Pool, r.Seqs = true, l.pool, &l.seqs
	return r
}

// retain removes what the retention rules say must go. reserve is a
// segment about to be created; cleanup removes leftovers of compressions
// (only the finisher, which compresses, may ask for it). It reports whether
// the directory is still over its bound (rolled segments not finished yet).
func (l *Lifecycle) retain(active, finished uint64, reserve int64, cleanup bool) bool {
	l.retMu.Lock()
	reserve += l.pool.Bytes() // pooled files are on disk, under no segment name
	// The caller read finished before waiting for retMu, maybe for the
	// pass that just finished more: the later, the truer.
	finished = max(finished, l.finishedNum.Load())
	st := State{Active: active, Finished: finished, Reserve: reserve}
	keep := l.o.Retention.KeepUnshipped
	var cs []Cursor
	var ignored []error
	if keep {
		// The cursors are read at every pass (a directory listing and a
		// small file each): after each roll and while the preparer waits
		// for room, never on the Write path.
		st.Keep, cs, ignored = l.cursors.read(l.dir, l.logID)
	}
	res, err := l.retention().Apply(l.dir, st, l.o.Now(), cleanup)
	l.mu.Lock()
	if keep {
		l.stats.IgnoredCursors = uint64(l.cursors.ignoring())
	}
	if keep && cleanup {
		// The finisher's passes (cleanup), which know the active
		// segment (the preparer's assume one ahead), one after the
		// other: the last one's count stands.
		l.stats.Held, l.stats.HeldBytes = uint64(res.Held), res.HeldBytes
	}
	l.mu.Unlock()
	l.retMu.Unlock()
	if l.o.OnIgnored != nil {
		for _, e := range ignored {
			l.o.OnIgnored(e)
		}
	}
	l.count(res.Actions, err)
	l.tellUnshipped(res.Actions, cs)
	return res.Over && err == nil
}

// tellUnshipped tells OnUnshipped the removals among acts of segments a
// cursor of cs still needed.
func (l *Lifecycle) tellUnshipped(acts []Action, cs []Cursor) {
	var removed []Action
	for _, a := range acts {
		if a.Unshipped {
			removed = append(removed, a)
		}
	}
	if len(removed) > 0 && l.o.OnUnshipped != nil {
		l.o.OnUnshipped(removed, cs)
	}
}

// makeRoom runs in the preparer before it creates a segment: it removes
// what retention says must go to fit the new segment within the bounds
// and, if the segments that must go are not finished yet (the finisher
// lags behind a fast writer), waits for them, so that the directory never
// exceeds its bound. Rolling over then waits too: that is the bound's
// price.
//
// Segment num is only prepared once segment num-Ahead was taken to become
// the active one, so everything below num-Ahead counts as rolled (even if
// the writer has not quite swapped its pointer yet).
//
// A segment made from a pooled file adds nothing to the directory (the
// pool's files are counted already), so then there is nothing to do: the
// finisher's pass after each roll enforces the bounds as before.
func (l *Lifecycle) makeRoom(num uint64) {
	active := uint64(0)
	if ahead := uint64(max(l.o.Ahead, 1)); num > ahead {
		active = num - ahead
	}
	for {
		add := l.newBytes()
		if add == 0 || !l.retain(active, l.finishedNum.Load(), add, false) || l.closing.Load() {
			return
		}
		select {
		case <-l.finishedSig:
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// newBytes returns what the next segment adds to the directory: nothing
// when it is made from a pooled file (counted already).
func (l *Lifecycle) newBytes() int64 {
	if l.pool.Len() > 0 {
		return 0
	}
	return l.o.Size
}

// compressRolled compresses finished rolled segments, outside retMu so that
// the preparer never waits for a compression. The plain file of a
// compressed segment is kept for reuse only within the disk bound: the
// rolled segments and the kept files together may take what the bound
// leaves beside the active and prepared segments.
func (l *Lifecycle) compressRolled(active, finished uint64) {
	if !l.o.Retention.Compress {
		return
	}
	r := l.retention()
	if bound := l.o.DiskBound; bound > 0 {
		r.PoolBound = max(bound-int64(1+l.o.Ahead)*l.o.Size, 1)
	}
	acts, err := r.CompressRolled(l.dir, State{Active: active, Finished: finished})
	l.count(acts, err)
}

// count counts what retention or compression did, and reports its error.
func (l *Lifecycle) count(acts []Action, err error) {
	l.mu.Lock()
	for _, a := range acts {
		switch a.Op {
		case OpRemoved:
			l.stats.Removed++
		case OpCompressed:
			l.stats.Compressed++
		}
	}
	l.mu.Unlock()
	if err != nil {
		l.report(fmt.Errorf("retention in %s: %w", l.dir, err))
	}
}
