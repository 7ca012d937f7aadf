package mmaplog

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/mmaplog/mmaplog/flush"
	"github.com/mmaplog/mmaplog/internal/fault"
	"github.com/mmaplog/mmaplog/internal/fileutil"
	"github.com/mmaplog/mmaplog/ring"
	"github.com/mmaplog/mmaplog/rotate"
)

// Writer appends records to a log directory. It is safe for any number of
// goroutines at once: Write reserves space with one atomic add and copies the
// record into a shared mapping, with no lock and no system call.
//
// The Writer keeps the append path (the active segment, rolling over to the
// next one), the record clock and Sync; the segments' lifecycle around it
// (preparing, activating, finishing, retention, compression, reuse) is a
// rotate.Lifecycle's.
type Writer struct {
	closing atomic.Bool
	active  atomic.Pointer[segment]
	clock   atomic.Pointer[clockBase] // for record time stamps, see now
	coarse  atomic.Int64              // the record clock (Unix ns); 0 while it is stopped, see stamp
	floor   atomic.Int64              // no record is stamped earlier (Unix ns), see raiseClockFloor

	opts    options
	dir     string
	lock    *fileutil.Lock
	logID   [16]byte
	life    *rotate.Lifecycle
	loop    *flush.Loop
	bytesTh int // the "bytes" policy's threshold, 0 under another policy

	rotMu     sync.Mutex    // serialises rolling over to the next segment (life.Take, life.Roll)
	clockKick chan struct{} // starts the record clock
	clockStop chan struct{}
	clockDone chan struct{}

	syncMu sync.Mutex // one Sync at a time

	mu          sync.Mutex // guards the fields below
	syncedBelow uint64     // rolled segments numbered below this were synced by Sync
	bgErr       error      // first background error not yet reported
	stats       Stats      // the Writer's own counters (see stats1)
	recovery    []Repair
	// restarted: the last writer of the log ran before the machine
	// restarted, as far as Open can tell (see ErrPowerLoss).
	restarted bool
}

// segment is a mapped segment file, its appender and its flush region.
type segment = rotate.Live

// newSegmentState makes s, continued after a restart and appended to
// through r, the active segment; its first clean bytes are on disk.
func (w *Writer) newSegmentState(s *rotate.Segment, r *ring.Ring, clean int) *segment {
	return w.life.Resume(s, r, clean, w.logID)
}

// fillNew reports whether new segment files are filled through the write
// path (rotate.LifecycleOptions.FillNew) under flush mode m: the page cache
// then holds them in large folios, which msync writes back whole. The
// policies that msync while the writer writes (per record, or the dirty
// range every interval or N bytes) would write back and write-protect the
// pages of the folio the writer is in, zeros ahead of it included; measured
// (bench/, 200 B records): interval 1.33 M records/s with, 1.51 M without;
// bytes 1.29 M against 1.49 M. Under none and rotate the preparer's time
// decides, and filling makes a new segment several times faster.
func fillNew(m flush.Mode) bool { return m == flush.ModeNone || m == flush.ModeRotate }

// lifecycle returns the options of the Writer's rotate.Lifecycle.
func (w *Writer) lifecycle() rotate.LifecycleOptions {
	o := w.opts
	lo := rotate.LifecycleOptions{
		Size:     o.SegmentSize,
		Perm:     o.FileMode,
		Prefault: !o.NoPrefault,
		FillNew:  fillNew(o.Flush.Mode),
		Ahead:    preparedAhead,
		NoReuse:  o.NoReuse,
		Retention: rotate.Retention{MaxBackups: o.MaxBackups, MaxAge: o.MaxAge, MaxTotalSize: o.MaxTotalSize,
			Compress: o.Compress, KeepUnshipped: o.KeepUnshipped},
		DiskBound: o.Options.DiskBound(),
		Recheck:   keepRecheck,
		Flush:     o.Flush,
		Now:       o.now,
		OnError: func(err error) {
			w.backgroundError(fmt.Errorf("mmaplog: %w", err))
		},
		OnIgnored: func(err error) {
			w.countError(fmt.Errorf("%w: %w", ErrCursorIgnored, err)) // told, not kept for Sync: the writer itself is fine
		},
		OnUnshipped: w.noteUnshipped,
	}
	if o.Clock != nil {
		// Record times come from the test clock: compare the readers'
		// deadline with the real time instead.
		lo.WakeClock = func() int64 { return time.Now().UnixNano() }
	}
	return lo
}

// keepRecheck is how often a writer under KeepUnshipped that rolls over no
// more looks whether its consumers passed the segments it holds.
var keepRecheck = 10 * time.Second

// Stats are counters of a Writer's activity.
type Stats struct {
	Segment         uint64        // number of the active segment
	NextSeq         uint64        // sequence number the next record gets
	Rotations       uint64        // segments rolled since Open
	RotationWaits   uint64        // rotations that had to wait for the next segment to be prepared
	MaxRotationWait time.Duration // longest time a rotation waited for it
	MaxPrepareTime  time.Duration // longest time preparing a segment took
	Removed         uint64        // rolled segments removed by retention
	Compressed      uint64        // rolled segments compressed
	Reused          uint64        // segments made from the file of a removed or compressed one
	BackgroundErrs  uint64        // errors of background work
	// Under Options.KeepUnshipped: Held and HeldBytes are the rolled
	// segments that MaxBackups or MaxAge would have removed and a
	// registered cursor still needs (as of the last pass after a roll);
	// UnshippedRemoved counts the rolled segments MaxTotalSize removed
	// though a cursor still needed them, and UnshippedRecords the records
	// in them that the lowest such cursor had not passed (what a
	// consumer from it finds removed by retention); IgnoredCursors is the
	// number of files under DIR/cursors ignored now (another log's, or
	// unreadable).
	Held             uint64
	HeldBytes        int64
	UnshippedRemoved uint64
	UnshippedRecords uint64
	IgnoredCursors   uint64
	// Wakeups counts the futex wake-ups (system calls) the writer made for
	// readers sleeping at the end of the log: none while nobody sleeps.
	Wakeups uint64
}

// Open opens the log in dir for writing, creating the directory if needed
// (with Options.DirMode), and returns a Writer appending after the last
// record. Only one Writer may have a log open: a second, in this process or
// another, gets an error wrapping ErrLocked that names the holder's pid.
//
// If the previous writer crashed, Open finds the true end of the data,
// verifies every record after the last point known to be clean, and turns
// torn records and reserved-but-never-written holes into padding so that the
// records after them stay readable; Recovery reports what it repaired.
func Open(dir string, o *Options) (*Writer, error) {
	opts, err := o.resolve()
	if err != nil {
		return nil, err
	}
	// A directory Open creates must survive a power loss with the log in
	// it: each one's parent is fsynced.
	if _, err := fileutil.MkdirAllSync(dir, opts.DirMode); err != nil {
		return nil, fmt.Errorf("mmaplog: create log directory: %w", err)
	}
	if st, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("mmaplog: %w", err)
	} else if !st.IsDir() {
		return nil, fmt.Errorf("mmaplog: %s is not a directory", dir)
	}
	lockPath := filepath.Join(dir, rotate.LockName)
	lock, err := fileutil.TryLock(lockPath)
	if err != nil {
		var le *fileutil.LockedError
		if errors.As(err, &le) {
			return nil, &LockedError{Path: le.Path, PID: le.PID}
		}
		return nil, fmt.Errorf("mmaplog: lock %s: %w", dir, err)
	}
	w := &Writer{opts: opts, dir: dir, lock: lock}
	w.rebaseClock()
	if opts.Flush.Mode == flush.ModeBytes {
		w.bytesTh = int(opts.Flush.Bytes)
	}
	w.life = rotate.NewLifecycle(dir, w.lifecycle())
	seg, err := w.recover()
	if err != nil {
		lock.Release()
		return nil, err
	}
	w.active.Store(seg)
	w.life.Start(seg)
	w.clockKick = make(chan struct{}, 1)
	w.clockStop = make(chan struct{})
	w.clockDone = make(chan struct{})
	if w.opts.Clock != nil {
		close(w.clockDone) // a test's clock: nothing to advance or re-base
	} else {
		go w.runClock()
	}
	w.loop = flush.StartLoop(opts.Flush, w.flushLoop, w.backgroundError)
	return w, nil
}

// Write appends p as one record (without one trailing newline, unless
// Options.KeepNewline) and returns len(p). p is copied, never retained. It
// never allocates. A p larger than Options.MaxRecordSize gets ErrTooLarge.
func (w *Writer) Write(p []byte) (int, error) {
	n := len(p)
	if !w.opts.KeepNewline && n > 0 && p[n-1] == '\n' {
		p = p[:n-1]
	}
	if _, err := w.Append(LevelNone, p); err != nil {
		return 0, err
	}
	return n, nil
}

// WriteLevel is Write with the record's level set to l: zerolog calls it
// (mmaplog's Writer is a zerolog.LevelWriter), so a reader can filter by
// level without parsing the JSON.
func (w *Writer) WriteLevel(l zerolog.Level, p []byte) (int, error) {
	n := len(p)
	if !w.opts.KeepNewline && n > 0 && p[n-1] == '\n' {
		p = p[:n-1]
	}
	if _, err := w.Append(LevelFromZerolog(l), p); err != nil {
		return 0, err
	}
	return n, nil
}

// Append appends p, exactly as given, as one record with level l and returns
// its sequence number. Once it returns, the record is in the page cache:
// readers in other processes see it, and it survives this process being
// killed. p is copied, never retained.
func (w *Writer) Append(l Level, p []byte) (uint64, error) {
	if len(p) > w.opts.MaxRecordSize {
		return 0, w.tooLarge(len(p))
	}
	if w.closing.Load() {
		return 0, ErrClosed
	}
	ts := w.stamp()
	for {
		seg := w.active.Load()
		pos, err := seg.Ring.Append(uint8(l), ts, p)
		if err == nil {
			if w.bytesTh > 0 && pos.Off/w.bytesTh != pos.End/w.bytesTh {
				w.loop.Notify()
			}
			return pos.Seq, nil
		}
		if err == ring.ErrTooLarge {
			// It fits a new segment (MaxRecordSize says so), but not this
			// one, which an earlier run made smaller: close it and move on.
			seg.Ring.Seal(true, ts)
		} else if err != ring.ErrFull {
			return pos.Seq, w.appendError(seg, pos, err)
		}
		if err := w.advance(seg); err != nil {
			return 0, err
		}
	}
}

// clockBase pairs a wall-clock time with its monotonic reading.
type clockBase struct {
	wall int64     // Unix nanoseconds
	mono time.Time // the same instant, with its monotonic clock reading
}

// now returns the time stamped on a record: the wall clock, computed from a
// base taken at most a second ago plus the monotonic time elapsed since.
// That reads one clock (CLOCK_MONOTONIC) instead of the two time.Now reads,
// half the cost on the append path; the clock goroutine re-bases every
// second, so steps of the wall clock are followed within a second.
func (w *Writer) now() int64 {
	if w.opts.Clock != nil {
		return w.opts.Clock().UnixNano()
	}
	c := w.clock.Load()
	return c.wall + int64(time.Since(c.mono))
}

// stamp returns the time stamped on a record: the record clock, one load,
// unless it is stopped (no record for a while) or Options.ExactClock is
// set; then it reads the time, never earlier than the clock floor, and
// starts the record clock.
func (w *Writer) stamp() int64 {
	if ts := w.coarse.Load(); ts != 0 {
		return ts
	}
	ts := w.now()
	if w.opts.Clock != nil {
		return ts // a test's clock, taken as it is
	}
	if f := w.floor.Load(); ts < f {
		ts = f
	}
	if !w.opts.ExactClock {
		w.coarse.CompareAndSwap(0, ts) // so that no later stamp goes back before it
		select {
		case w.clockKick <- struct{}{}:
		default:
		}
	}
	return ts
}

// clockIdleTicks is how many ticks without a record stop the record clock.
const clockIdleTicks = 200

// clockRebase is how often the clock goroutine re-bases now on the wall
// clock.
const clockRebase = time.Second

// runClock re-bases now every clockRebase, so that steps of the wall clock
// are followed within that time, and, unless Options.ExactClock is set,
// advances the record clock every ClockResolution while records arrive; it
// stops that (stores 0, so that the next Write reads the time and starts
// it again) once none arrived for clockIdleTicks ticks: an idle writer
// costs no CPU but the re-basing.
func (w *Writer) runClock() {
	defer close(w.clockDone)
	rebase := time.NewTicker(clockRebase)
	defer rebase.Stop()
	t := time.NewTimer(time.Hour)
	t.Stop()
	for {
		select {
		case <-w.clockKick:
		case <-rebase.C:
			w.rebaseClock()
			continue
		case <-w.clockStop:
			return
		}
		last, idle := w.active.Load().Ring.NextSeq(), 0
		for {
			w.advanceClock()
			t.Reset(ClockResolution)
			if !w.clockSleep(t.C, rebase.C) {
				w.coarse.Store(0)
				return
			}
			if seq := w.active.Load().Ring.NextSeq(); seq != last {
				last, idle = seq, 0
			} else if idle++; idle >= clockIdleTicks {
				// Stop, unless a Write read the time meanwhile; the
				// floor keeps the next start from going back before
				// cur (the wall clock may have stepped back).
				cur := w.coarse.Load()
				w.raiseClockFloor(cur)
				if w.coarse.CompareAndSwap(cur, 0) {
					break
				}
				idle = 0
			}
		}
	}
}

// clockSleep waits for tick, re-basing the clock whenever rebase ticks
// meanwhile. It reports false if the clock was stopped instead.
func (w *Writer) clockSleep(tick, rebase <-chan time.Time) bool {
	for {
		select {
		case <-tick:
			return true
		case <-rebase:
			w.rebaseClock()
		case <-w.clockStop:
			return false
		}
	}
}

// advanceClock moves the record clock to now, never back: a Write that
// found it stopped may have stamped a later time than now was read here.
func (w *Writer) advanceClock() {
	for {
		old := w.coarse.Load()
		ts := max(w.now(), old)
		if w.coarse.CompareAndSwap(old, ts) {
			return
		}
	}
}

// raiseClockFloor makes ts the earliest time a record can be stamped with
// from now on (it never lowers the floor): record times never go back
// within a log, across idle periods and writer restarts, though the wall
// clock may step back. Records then carry the floor until the clock
// passes it again, as the record clock does while it runs. Readers that
// seek by time rely on it (tail.Options.Since).
func (w *Writer) raiseClockFloor(ts int64) {
	for {
		f := w.floor.Load()
		if ts <= f || w.floor.CompareAndSwap(f, ts) {
			return
		}
	}
}

func (w *Writer) rebaseClock() {
	t := time.Now()
	w.clock.Store(&clockBase{wall: t.UnixNano(), mono: t})
}

// appendError says where an Append failed.
func (w *Writer) appendError(seg *segment, pos ring.Pos, err error) error {
	if errors.Is(err, fault.ErrFault) && pos.End > 0 {
		// The file was truncated under the record: its number is used,
		// its bytes are not there.
		return fmt.Errorf("mmaplog: record %d not written to %s at offset %d: %w", pos.Seq, seg.Path, pos.Off, err)
	}
	if pos.End > 0 {
		return fmt.Errorf("mmaplog: record %d written to %s at offset %d but not flushed: %w", pos.Seq, seg.Path, pos.Off, err)
	}
	return fmt.Errorf("mmaplog: write to %s: %w", seg.Path, err)
}

func (w *Writer) tooLarge(n int) error {
	return fmt.Errorf("mmaplog: %w: %d-byte record, the limit is %d (Options.MaxRecordSize; a segment of %d bytes holds at most %d)",
		ErrTooLarge, n, w.opts.MaxRecordSize, w.opts.SegmentSize, ring.MaxPayloadFor(int(w.opts.SegmentSize)))
}

// advance rolls over from the full segment seg to the next one. The
// goroutine whose record crossed the end of seg has already closed it with a
// padding record; any goroutine that found seg full may do the rest.
func (w *Writer) advance(seg *segment) error {
	w.rotMu.Lock()
	defer w.rotMu.Unlock()
	if w.active.Load() != seg {
		return nil // someone else rolled over already
	}
	_, count, _ := seg.Ring.WaitSealed()
	if w.closing.Load() {
		return ErrClosed
	}
	next, err := w.life.Take(seg.Ring.FirstSeq() + count)
	if err != nil {
		// Returned to the Write that waits for the segment: counted, told
		// to OnError, but not kept for Sync or Close to return again.
		err = fmt.Errorf("mmaplog: rolling over from %s: %w", seg.Path, err)
		w.countError(err)
		return err
	}
	w.active.Store(next)
	w.life.Roll(seg)
	return nil
}

// backgroundError records an error of background work that nobody has been
// told yet: the next Sync or Close returns it.
func (w *Writer) backgroundError(err error) {
	w.mu.Lock()
	if w.bgErr == nil {
		w.bgErr = err
	}
	w.mu.Unlock()
	w.countError(err)
}

// countError counts an error of background work and tells OnError; the
// caller returns it, or keeps it (backgroundError).
func (w *Writer) countError(err error) {
	w.mu.Lock()
	w.stats.BackgroundErrs++
	w.mu.Unlock()
	if w.opts.OnError != nil {
		w.opts.OnError(err)
	}
}

func (w *Writer) takeBackgroundError() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	err := w.bgErr
	w.bgErr = nil
	return err
}

// flushActive flushes the written part of the active segment: everything
// for Sync, whole pages only for the background flush loop. Flushing the
// page that writers are filling would write-protect it, and the next Write
// into it would take a page fault (and may wait for the page's I/O).
func (w *Writer) flushActive(wait, all bool) error {
	seg := w.active.Load()
	err := seg.FlushMapped(func(r *flush.Region) error {
		to := seg.Ring.Reserved()
		if !all {
			to &^= fileutil.PageSize() - 1
		}
		return r.Flush(to, wait)
	})
	if err != nil {
		return fmt.Errorf("mmaplog: flush %s: %w", seg.Path, err)
	}
	return nil
}

// flushLoop is the flush loop's callback.
func (w *Writer) flushLoop(wait bool) error { return w.flushActive(wait, false) }

// Sync flushes everything written so far to stable storage: the dirty range
// of the active segment with msync(MS_SYNC), the rolled segments not flushed
// yet, and the directory. It also returns the first error of background work
// since the last Sync, if any. It satisfies zap's WriteSyncer.
func (w *Writer) Sync() error {
	if w.closing.Load() {
		return ErrClosed
	}
	if err := w.flushActive(true, true); err != nil {
		return err
	}
	// Segments rolled since the last Sync may still be mapped by the
	// finisher or already closed: fdatasync them by name. One Sync at a
	// time, so that a Sync never returns before the fdatasyncs that an
	// earlier one took on. A segment counts as synced only if it was
	// finished (every record reserved in it published) before its
	// fdatasync: a Write still writing into a rolled segment is flushed
	// by the next Sync.
	w.syncMu.Lock()
	defer w.syncMu.Unlock()
	finished := w.life.Finished()
	active := w.active.Load().Num
	w.mu.Lock()
	from := w.syncedBelow
	w.mu.Unlock()
	var errs []error
	for n := from; n < active; n++ {
		p := filepath.Join(w.dir, rotate.SegmentName(n))
		f, err := fileutil.OpenNoFollow(p, false)
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed by retention, or compressed (synced then)
		}
		if err == nil {
			err = fileutil.Fdatasync(f)
			f.Close()
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("mmaplog: sync %s: %w", p, err))
		}
	}
	if len(errs) == 0 {
		w.mu.Lock()
		w.syncedBelow = max(w.syncedBelow, min(active, finished))
		w.mu.Unlock()
	}
	if err := fileutil.SyncDir(w.dir); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, w.takeBackgroundError())
	return errors.Join(errs...)
}

// Close waits for every Write in flight, flushes the active segment unless
// the policy is None, stops the background goroutines (removing the prepared
// segment nobody used), finishes the rolled segments and releases the lock.
// Writes after Close return ErrClosed. Closing twice returns ErrClosed.
func (w *Writer) Close() error {
	if !w.closing.CompareAndSwap(false, true) {
		return ErrClosed
	}
	w.life.Closing()
	var errs []error
	w.rotMu.Lock()
	if err := w.life.SealActive(w.active.Load()); err != nil {
		errs = append(errs, fmt.Errorf("mmaplog: %w", err))
	}
	w.rotMu.Unlock()
	w.loop.Stop()
	close(w.clockStop)
	<-w.clockDone
	if err := w.life.Close(); err != nil {
		errs = append(errs, fmt.Errorf("mmaplog: close: %w", err))
	}
	errs = append(errs, w.takeBackgroundError())
	if err := w.lock.Release(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Stats returns the Writer's counters.
func (w *Writer) Stats() Stats { return w.stats1(false) }

// ResetMaxima returns the Stats and starts MaxRotationWait and
// MaxPrepareTime over: from then on they are the longest since this call,
// for a monitoring interval or the measured part of a benchmark (the first
// segments of a new log are new files, slower to prepare than the reused
// ones of a log that has reached its retention bound). The counters go on
// counting.
func (w *Writer) ResetMaxima() Stats { return w.stats1(true) }

func (w *Writer) stats1(reset bool) Stats {
	ls := w.life.Stats(reset)
	w.mu.Lock()
	s := w.stats
	w.mu.Unlock()
	s.Rotations, s.RotationWaits = ls.Rotations, ls.RotationWaits
	s.MaxRotationWait, s.MaxPrepareTime = ls.MaxRotationWait, ls.MaxPrepareTime
	s.Removed, s.Compressed, s.Reused = ls.Removed, ls.Compressed, ls.Reused
	s.Held, s.HeldBytes, s.IgnoredCursors = ls.Held, ls.HeldBytes, ls.IgnoredCursors
	s.Wakeups = ls.Wakeups
	seg := w.active.Load()
	s.Segment = seg.Num
	s.NextSeq = seg.Ring.NextSeq()
	if seg.Ring.Sealed() {
		// Full (or closed): the ring counts every Append that found it
		// so, and each retries in the next segment, which starts at the
		// count sealed. Rotations that fail do not use up numbers.
		_, count, _ := seg.Ring.WaitSealed()
		s.NextSeq = seg.Ring.FirstSeq() + count
	}
	return s
}

// Dir returns the log directory.
func (w *Writer) Dir() string { return w.dir }

// LogID returns the identity of the log, the same in every segment header.
func (w *Writer) LogID() [16]byte { return w.logID }

func newLogID() ([16]byte, error) {
	var id [16]byte
	_, err := rand.Read(id[:])
	return id, err
}
