package mmaplog

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"math"
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
	prep    *rotate.Preparer
	pool    *rotate.Pool // rolled segment files kept for reuse; nil under NoReuse
	loop    *flush.Loop
	bytesTh int // the "bytes" policy's threshold, 0 under another policy

	rotMu       sync.Mutex // serialises rolling over to the next segment
	remake      bool       // under rotMu: the next segment, remakeNum, must be made again (see takeNext)
	remakeNum   uint64
	finishCh    chan *segment
	finishedNum atomic.Uint64 // rolled segments numbered below this are finished
	finishedSig chan struct{} // signalled when a rolled segment is finished
	finished    chan struct{}
	clockKick   chan struct{} // starts the record clock
	clockStop   chan struct{}
	clockDone   chan struct{}
	retMu       sync.Mutex // one retention pass at a time
	seqs        *rotate.SeqCache
	ignored     map[string]string // under retMu: cursor files ignored by KeepUnshipped, and what was reported

	wakes atomic.Uint64 // futex wake-ups paid for sleeping readers

	syncMu sync.Mutex // one Sync at a time

	mu          sync.Mutex // guards the fields below
	syncedBelow uint64     // rolled segments numbered below this were synced by Sync
	bgErr       error      // first background error not yet reported
	stats       Stats
	recovery    []Repair
	// restarted: the last writer of the log ran before the machine
	// restarted, as far as Open can tell (see ErrPowerLoss).
	restarted bool
}

// segment is a mapped segment file and its appender.
type segment struct {
	*rotate.Segment
	ring   *ring.Ring
	region *flush.Region
	end    int    // where its data ended when it was rolled or sealed
	ctl    []byte // its first page mapped once more, for Appends after they published (ring.SetControl)

	// mapMu keeps the mapping alive for flushes made outside the append
	// path (Sync, the flush loop, the "write" policy): they hold it shared, and
	// the finisher takes it exclusively to unmap.
	mapMu    sync.RWMutex
	unmapped bool
}

func (w *Writer) newSegmentState(s *rotate.Segment, r *ring.Ring, clean int) *segment {
	seg := &segment{Segment: s, ring: r, region: flush.NewRegion(s.Data, s.File, clean)}
	seg.region.SetPublished(seg.published)
	var sync func(off, end int) error
	if w.opts.Flush.Mode == flush.ModeWrite {
		sync = seg.region.FlushRange
	}
	r.SetHooks(w.wakeReaders, sync)
	if sync == nil {
		// Appends reach the wake words through a mapping of their own,
		// so that the finisher proves the segment released from its
		// length words, without a second atomic per record; where that
		// mapping cannot be made, Appends count themselves instead.
		if ctl, err := fileutil.MapControl(s.File); err == nil {
			seg.ctl = ctl
			r.SetControl(ctl)
		}
	}
	if w.opts.Clock != nil {
		// Record times come from the test clock: compare the readers'
		// deadline with the real time instead.
		r.SetWakeClock(func() int64 { return time.Now().UnixNano() })
	}
	return seg
}

// wakeReaders wakes the readers sleeping on a segment's wake word. A reader
// about to sleep raises the segment's "wake me until" deadline (at most
// 100 ms ahead), re-checks for a record, and only then sleeps; the writer
// pays for a wake-up (one system call) only for records stamped before that
// deadline, so a reader killed in its sleep costs at most 100 ms of them.
func (w *Writer) wakeReaders(word *uint32) {
	w.wakes.Add(1)
	fileutil.FutexWake(word, math.MaxInt32)
}

// published returns the end of the records published from offset from on
// (at most to): a flush moves its mark only that far, so that a record
// reserved before it and published after it is flushed by the next one
// (flush.Region.SetPublished). Each reservation is one record, whose length
// word Append stores last; a zero word is a record not published yet.
func (seg *segment) published(from, to int) int {
	off := max(from, ring.HeaderSize)
	data := seg.Data
	_ = fault.Guard(seg.Path, func() error {
		for off+4 <= to {
			lw := atomic.LoadUint32(ring.LengthWord(data, off))
			if lw&ring.Committed == 0 {
				break
			}
			size := ring.RecordSize(int(lw & (ring.Padding - 1)))
			if off+size > to {
				break
			}
			off += size
		}
		return nil
	})
	return off
}

// flushMapped runs fn on seg's region unless seg was unmapped meanwhile
// (then the finisher has flushed it as the policy asks).
func (seg *segment) flushMapped(fn func(*flush.Region) error) error {
	seg.mapMu.RLock()
	defer seg.mapMu.RUnlock()
	if seg.unmapped {
		return nil
	}
	return fn(seg.region)
}

// unmap closes seg once no flush is using its mapping.
func (seg *segment) unmap() error { return seg.release(nil) }

// release is unmap, but hands the segment's mapping to pool (Pool.Keep) for
// the file's reuse instead of unmapping it, if the pool takes it.
func (seg *segment) release(pool *rotate.Pool) error {
	seg.mapMu.Lock()
	defer seg.mapMu.Unlock()
	if seg.unmapped {
		return nil
	}
	seg.unmapped = true
	if pool.Keep(seg.Num, seg.Data) {
		seg.Data = nil // the pool's now
	}
	err := seg.Close()
	if cerr := fileutil.ReleaseControl(seg.ctl); err == nil {
		err = cerr
	}
	seg.ctl = nil
	return err
}

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
	w := &Writer{opts: opts, dir: dir, lock: lock, seqs: &rotate.SeqCache{}, ignored: map[string]string{}}
	w.rebaseClock()
	if opts.Flush.Mode == flush.ModeBytes {
		w.bytesTh = int(opts.Flush.Bytes)
	}
	seg, err := w.recover()
	if err != nil {
		lock.Release()
		return nil, err
	}
	w.active.Store(seg)
	w.finishCh = make(chan *segment, 64)
	w.finishedSig = make(chan struct{}, 1)
	w.finished = make(chan struct{})
	go w.finisher()
	w.clockKick = make(chan struct{}, 1)
	w.clockStop = make(chan struct{})
	w.clockDone = make(chan struct{})
	if w.opts.Clock != nil {
		close(w.clockDone) // a test's clock: nothing to advance or re-base
	} else {
		go w.runClock()
	}
	if !opts.NoReuse {
		w.pool = rotate.NewPool(dir, opts.SegmentSize, preparedAhead)
		if opts.MaxBackups >= 0 && int64(opts.MaxBackups+1)*opts.SegmentSize <= keepMappedMax {
			// Small segments: a rolled segment stays mapped until
			// retention pools it, so that its reuse costs no mapping,
			// no pre-faulting and no unmapping.
			w.pool.KeepMappings(int64(opts.MaxBackups+preparedAhead+1) * opts.SegmentSize)
		}
	}
	w.prep = rotate.StartPreparer(dir, seg.Num+1, rotate.PreparerOptions{
		Size:         opts.SegmentSize,
		Perm:         opts.FileMode,
		Prefault:     !opts.NoPrefault,
		SyncDir:      true, // in the background, two segments ahead: it costs no Write anything
		Ahead:        preparedAhead,
		BeforeCreate: w.makeRoom,
		Pool:         w.pool,
		OnCreate: func(d time.Duration, reused bool) {
			w.mu.Lock()
			w.stats.MaxPrepareTime = max(w.stats.MaxPrepareTime, d)
			if reused {
				w.stats.Reused++
			}
			w.mu.Unlock()
		},
	})
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
		pos, err := seg.ring.Append(uint8(l), ts, p)
		if err == nil {
			if w.bytesTh > 0 && pos.Off/w.bytesTh != pos.End/w.bytesTh {
				w.loop.Notify()
			}
			return pos.Seq, nil
		}
		if err == ring.ErrTooLarge {
			// It fits a new segment (MaxRecordSize says so), but not this
			// one, which an earlier run made smaller: close it and move on.
			seg.ring.Seal(true, ts)
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
		last, idle := w.active.Load().ring.NextSeq(), 0
		for {
			w.advanceClock()
			t.Reset(ClockResolution)
			if !w.clockSleep(t.C, rebase.C) {
				w.coarse.Store(0)
				return
			}
			if seq := w.active.Load().ring.NextSeq(); seq != last {
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

// advance rolls over from the full segment seg to the prepared next one. The
// goroutine whose record crossed the end of seg has already closed it with a
// padding record; any goroutine that found seg full may do the rest.
func (w *Writer) advance(seg *segment) error {
	w.rotMu.Lock()
	defer w.rotMu.Unlock()
	if w.active.Load() != seg {
		return nil // someone else rolled over already
	}
	end, count, _ := seg.ring.WaitSealed()
	if w.closing.Load() {
		return ErrClosed
	}
	start := time.Now()
	next, h, err := w.takeNext(seg.ring.FirstSeq() + count)
	if err != nil {
		// Returned to the Write that waits for the segment: counted, told
		// to OnError, but not kept for Sync or Close to return again.
		err = fmt.Errorf("mmaplog: rolling over from %s: %w", seg.Path, err)
		w.countError(err)
		return err
	}
	waited := time.Since(start)
	r, err := ring.New(next.Data, ring.HeaderSize, h.FirstSeq, 0)
	if err != nil {
		return err // cannot happen: the preparer made the segment this size
	}
	ns := w.newSegmentState(next, r, 0)
	w.active.Store(ns)
	seg.end = end
	// Readers sleeping at the end of seg must now move on to the next one.
	seg.ring.WakeReaders(time.Now().UnixNano())
	w.mu.Lock()
	w.stats.Rotations++
	if waited > 50*time.Microsecond {
		w.stats.RotationWaits++
	}
	w.stats.MaxRotationWait = max(w.stats.MaxRotationWait, waited)
	w.mu.Unlock()
	w.finishCh <- seg
	return nil
}

// takeNext takes the next segment from the preparer and activates it (writes
// its header, first record firstSeq). A prepared segment that another
// process truncated meanwhile is never written into (that would raise
// SIGBUS, or make every Append into it fail): it is discarded, reported as
// a background error, and made again here. If making it fails, the next
// call tries again, so that segment numbers stay consecutive. rotMu is
// held.
func (w *Writer) takeNext(firstSeq uint64) (*rotate.Segment, ring.Header, error) {
	var next *rotate.Segment
	var err error
	if w.remake {
		next, err = w.remakeSegment(w.remakeNum)
	} else {
		next, err = w.prep.Take()
	}
	if err != nil {
		return nil, ring.Header{}, err
	}
	for tries := 1; ; tries++ {
		h := ring.Header{
			Segment:  next.Num,
			FirstSeq: firstSeq,
			Created:  w.opts.now().UnixNano(),
			Size:     uint64(len(next.Data)),
			LogID:    w.logID,
		}
		aerr := writeHeader(next, h)
		if aerr == nil {
			if err := w.flushHeader(next); err != nil {
				// The header is written; only its flush failed, as a
				// record's would: said, and the roll goes on.
				w.backgroundError(err)
			}
			return next, h, nil
		}
		num := next.Num
		aerr = fmt.Errorf("mmaplog: prepared segment %s: %w; discarding it to make the segment again", next.Path, aerr)
		if err := next.Remove(); err != nil && !errors.Is(err, fs.ErrNotExist) {
			aerr = fmt.Errorf("%w (removing it: %v)", aerr, err)
		}
		if tries == 2 {
			// Damaged again as soon as made: someone keeps at it.
			// Fail this Write; the next one tries again.
			w.remake, w.remakeNum = true, num
			return nil, ring.Header{}, aerr
		}
		w.backgroundError(aerr)
		if next, err = w.remakeSegment(num); err != nil {
			return nil, ring.Header{}, err
		}
	}
}

// writeHeader writes the header h into the prepared segment s, which makes
// it the next segment of the log, unless the file is no longer as long as
// its mapping (truncated by another process): an error, as is a memory
// fault while writing.
func writeHeader(s *rotate.Segment, h ring.Header) error {
	if err := truncated(s); err != nil {
		return err
	}
	return fault.Guard("", func() error {
		ring.PutHeader(s.Data, h)
		return nil
	})
}

// truncated returns an error wrapping ring.ErrShort if s's file is shorter
// than its mapping: another process truncated it, the bytes past its end
// are gone, and touching the mapping there would raise SIGBUS.
func truncated(s *rotate.Segment) error {
	st, err := s.File.Stat()
	if err != nil {
		return err
	}
	if st.Size() < int64(len(s.Data)) {
		return fmt.Errorf("%w: the file is %d bytes, %d when it was mapped (truncated by another process?)", ring.ErrShort, st.Size(), len(s.Data))
	}
	return nil
}

// flushHeader flushes the header page of the segment s just activated
// under the "write" policy, before any record is written: each record's
// flush covers only its own pages, and a record on disk in a segment whose
// header is not is lost (recovery removes a segment whose header is zero).
func (w *Writer) flushHeader(s *rotate.Segment) error {
	if w.opts.Flush.Mode != flush.ModeWrite {
		return nil // the first flush of the segment starts at its first page
	}
	if err := fileutil.Msync(s.Data, 0, ring.HeaderSize, true); err != nil {
		return fmt.Errorf("mmaplog: flush the header of %s: %w", s.Path, err)
	}
	return nil
}

// remakeSegment makes segment num as the preparer would, in place of a
// prepared one that was discarded. The file it replaces was counted in the
// disk bound already. On failure the next rotation tries again (remake).
// rotMu is held.
func (w *Writer) remakeSegment(num uint64) (*rotate.Segment, error) {
	s, err := rotate.Create(w.dir, num, w.opts.SegmentSize, w.opts.FileMode, !w.opts.NoPrefault)
	if err == nil {
		if err = fileutil.SyncDir(w.dir); err != nil {
			s.Remove()
		}
	}
	if err != nil {
		w.remake, w.remakeNum = true, num
		return nil, err
	}
	w.remake = false
	return s, nil
}

// finisher finishes rolled segments in order: it waits until every record
// reserved in one is published, marks it sealed, flushes it as the policy
// asks, unmaps it, and applies retention (and compression).
func (w *Writer) finisher() {
	defer close(w.finished)
	var ageTick <-chan time.Time
	if w.opts.MaxAge > 0 || w.opts.KeepUnshipped {
		// Under KeepUnshipped, held segments go once their consumers
		// passed them, though the writer rolls over no more.
		iv := time.Minute
		if w.opts.MaxAge > 0 {
			iv = min(max(w.opts.MaxAge/10, time.Second), time.Minute)
		}
		if w.opts.KeepUnshipped {
			iv = min(iv, keepRecheck)
		}
		t := time.NewTicker(iv)
		defer t.Stop()
		ageTick = t.C
	}
	for {
		select {
		case seg, ok := <-w.finishCh:
			if !ok {
				return
			}
			w.finish(seg)
		case <-ageTick:
			w.applyRetention(w.active.Load().Num, w.oldestUnfinished(), 0, true)
		}
	}
}

func (w *Writer) finish(seg *segment) {
	err := truncated(seg.Segment)
	if err == nil {
		err = seg.ring.WaitReleased(10 * time.Second)
	}
	if err != nil {
		// A goroutine reserved space and never wrote it, or another
		// process truncated the file: leave the mapping in place (a
		// Write may still be under way in it) and let recovery repair
		// the hole, but let retention go on (removing a mapped file is
		// safe).
		w.backgroundError(fmt.Errorf("mmaplog: finishing %s: %w", seg.Path, err))
		w.finishedNum.Store(seg.Num + 1)
		return
	}
	if err := storeState(seg, ring.StateSealed); err != nil {
		// Truncated by another process just now: its records are gone,
		// and there is nothing to flush.
		w.backgroundError(fmt.Errorf("mmaplog: finishing %s: %w", seg.Path, err))
	} else if w.opts.Flush.SyncsRolled() {
		if err := seg.region.Flush(len(seg.Data), true); err != nil {
			w.backgroundError(fmt.Errorf("mmaplog: msync %s: %w", seg.Path, err))
		}
	}
	now := w.opts.now()
	os.Chtimes(seg.Path, now, now) // MaxAge counts from the roll
	if err := seg.release(w.pool); err != nil {
		w.backgroundError(fmt.Errorf("mmaplog: unmap %s: %w", seg.Path, err))
	}
	w.finishedNum.Store(seg.Num + 1)
	active := w.active.Load().Num
	w.applyRetention(active, seg.Num+1, 0, true)
	// The preparer waiting for room looks again only now, once this pass
	// may have pooled a file for it: one directory listing, not two.
	select {
	case w.finishedSig <- struct{}{}:
	default:
	}
	w.compressRolled(active, seg.Num+1)
}

// storeState sets the state word in seg's header, turning a memory fault
// (the file truncated by another process) into an error.
func storeState(seg *segment, st ring.State) error {
	return fault.Guard("", func() error {
		ring.StoreState(seg.Data, st)
		return nil
	})
}

// oldestUnfinished returns the number below which rolled segments are
// finished.
func (w *Writer) oldestUnfinished() uint64 { return w.finishedNum.Load() }

func (w *Writer) retention() rotate.Retention {
	return rotate.Retention{MaxBackups: w.opts.MaxBackups, MaxAge: w.opts.MaxAge, MaxTotalSize: w.opts.MaxTotalSize,
		Compress: w.opts.Compress, SyncDir: true, Pool: w.pool, KeepUnshipped: w.opts.KeepUnshipped, Seqs: w.seqs}
}

// keepRecheck is how often a writer under KeepUnshipped that rolls over no
// more looks whether its consumers passed the segments it holds.
var keepRecheck = 10 * time.Second

// applyRetention removes what the retention rules say must go. reserve is a
// segment about to be created; cleanup removes leftovers of compressions
// (only the finisher, which compresses, may ask for it). It reports whether
// the directory is still over its bound (rolled segments not finished yet).
func (w *Writer) applyRetention(active, finished uint64, reserve int64, cleanup bool) bool {
	w.retMu.Lock()
	reserve += w.pool.Bytes() // pooled files are on disk, under no segment name
	// The caller read finished before waiting for retMu, maybe for the
	// pass that just finished more: the later, the truer.
	finished = max(finished, w.oldestUnfinished())
	st := rotate.State{Active: active, Finished: finished, Reserve: reserve}
	var cs []CursorPos
	var ignored []error
	if w.opts.KeepUnshipped {
		// The cursors are read at every pass (a directory listing and a
		// small file each): after each roll and while the preparer waits
		// for room, never on the Write path.
		st.Keep, cs, ignored = w.consumers()
	}
	res, err := w.retention().Apply(w.dir, st, w.opts.now(), cleanup)
	if w.opts.KeepUnshipped && cleanup {
		// The finisher's passes (cleanup), which know the active
		// segment (the preparer's assume one ahead), one after the
		// other: the last one's count stands.
		w.mu.Lock()
		w.stats.Held, w.stats.HeldBytes = uint64(res.Held), res.HeldBytes
		w.mu.Unlock()
	}
	w.retMu.Unlock()
	for _, e := range ignored {
		w.countError(e) // told, not kept for Sync: the writer itself is fine
	}
	w.countActions(res.Actions, err)
	w.noteKept(res, st.Keep, cs)
	return res.Over && err == nil
}

// makeRoom runs in the preparer before it creates a segment: it removes what
// retention says must go to fit the new segment within the bounds and, if
// the segments that must go are not finished yet (the finisher lags behind
// a fast writer), waits for them, so that the directory never exceeds its
// bound. Rolling over then waits too: that is the bound's price.
//
// Segment num is only prepared once segment num-preparedAhead was taken to
// become the active one, so everything below num-preparedAhead counts as
// rolled (even if the writer has not quite swapped its pointer yet).
//
// A segment made from a pooled file adds nothing to the directory (the
// pool's files are counted already), so then there is nothing to do: the
// finisher's pass after each roll enforces the bounds as before.
func (w *Writer) makeRoom(num uint64) {
	active := uint64(0)
	if num > preparedAhead {
		active = num - preparedAhead
	}
	for {
		add := w.newBytes()
		if add == 0 || !w.applyRetention(active, w.oldestUnfinished(), add, false) || w.closing.Load() {
			return
		}
		select {
		case <-w.finishedSig:
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// newBytes returns what the next segment adds to the directory: nothing
// when it is made from a pooled file (counted already).
func (w *Writer) newBytes() int64 {
	if w.pool.Len() > 0 {
		return 0
	}
	return w.opts.SegmentSize
}

// compressRolled compresses finished rolled segments, outside retMu so that
// the preparer never waits for a compression. The plain file of a
// compressed segment is kept for reuse only within the disk bound: the
// rolled segments and the kept files together may take what the bound
// leaves beside the active and prepared segments.
func (w *Writer) compressRolled(active, finished uint64) {
	if !w.opts.Compress {
		return
	}
	r := w.retention()
	if bound := w.opts.Options.DiskBound(); bound > 0 {
		r.PoolBound = max(bound-(1+preparedAhead)*w.opts.SegmentSize, 1)
	}
	acts, err := r.CompressRolled(w.dir, rotate.State{Active: active, Finished: finished})
	w.countActions(acts, err)
}

func (w *Writer) countActions(acts []rotate.Action, err error) {
	w.mu.Lock()
	for _, a := range acts {
		switch a.Op {
		case rotate.OpRemoved:
			w.stats.Removed++
		case rotate.OpCompressed:
			w.stats.Compressed++
		}
	}
	w.mu.Unlock()
	if err != nil {
		w.backgroundError(fmt.Errorf("mmaplog: retention in %s: %w", w.dir, err))
	}
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
	err := seg.flushMapped(func(r *flush.Region) error {
		to := seg.ring.Reserved()
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
	finished := w.finishedNum.Load()
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
	var errs []error
	w.rotMu.Lock()
	seg := w.active.Load()
	end, _ := seg.ring.Seal(false, 0)
	// A file truncated by another process lost its records past its end,
	// and its mapping faults there: say so rather than wait for records
	// that read as zeros, and leave the mapping alone (a Write still under
	// way in it fails by itself).
	werr := truncated(seg.Segment)
	if werr == nil {
		werr = seg.ring.WaitReleased(10 * time.Second)
	}
	if werr != nil {
		errs = append(errs, fmt.Errorf("mmaplog: close %s: %w", seg.Path, werr))
	} else {
		// Every record reserved in it is published: what a reader finds
		// after the last one is damage, not a write in progress.
		if err := storeState(seg, ring.StateClosed); err != nil {
			errs = append(errs, fmt.Errorf("mmaplog: close %s: %w", seg.Path, err))
		} else if w.opts.Flush.Mode != flush.ModeNone {
			if err := seg.region.Flush(end, true); err != nil {
				errs = append(errs, fmt.Errorf("mmaplog: close: msync %s: %w", seg.Path, err))
			}
		}
	}
	w.rotMu.Unlock()
	w.loop.Stop()
	close(w.clockStop)
	<-w.clockDone
	w.prep.Close()
	close(w.finishCh)
	<-w.finished
	if err := w.pool.Close(); err != nil {
		errs = append(errs, fmt.Errorf("mmaplog: close: %w", err))
	}
	if werr == nil {
		// A Write that never published would still write into the
		// mapping: only unmap when every reservation is published.
		if err := seg.unmap(); err != nil {
			errs = append(errs, err)
		}
	}
	if w.opts.Flush.SyncsRolled() {
		if err := fileutil.SyncDir(w.dir); err != nil {
			errs = append(errs, err)
		}
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
	w.mu.Lock()
	s := w.stats
	if reset {
		w.stats.MaxRotationWait, w.stats.MaxPrepareTime = 0, 0
	}
	w.mu.Unlock()
	seg := w.active.Load()
	s.Segment = seg.Num
	s.NextSeq = seg.ring.NextSeq()
	if seg.ring.Sealed() {
		// Full (or closed): the ring counts every Append that found it
		// so, and each retries in the next segment, which starts at the
		// count sealed. Rotations that fail do not use up numbers.
		_, count, _ := seg.ring.WaitSealed()
		s.NextSeq = seg.ring.FirstSeq() + count
	}
	s.Wakeups = w.wakes.Load()
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
