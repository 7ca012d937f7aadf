package rotate

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mmaplog/mmaplog/flush"
	"github.com/mmaplog/mmaplog/internal/fault"
	"github.com/mmaplog/mmaplog/internal/fileutil"
	"github.com/mmaplog/mmaplog/ring"
)

// Lifecycle runs the life of a log's segments around the one a writer
// appends to: it keeps the next ones prepared (a Preparer, making them from
// the files of a Pool where it can), activates each when the writer rolls
// over to it (Take writes its header: the one place a segment header is
// made), and finishes each rolled one in a goroutine of its own (Roll):
// it waits until every record reserved in it is published, marks it
// sealed, flushes it as the flush policy asks and unmaps it (or keeps its
// mapping for its file's reuse), then applies the retention and compresses.
// Before each new file the preparer makes room for it within the disk
// bounds, waiting for the finisher if the segments that must go are not
// finished yet.
//
// The writer keeps the append path: the active segment, which it swaps
// for Take's under a lock of its own (Take and Roll are called by one
// goroutine at a time), and its flushes. The Lifecycle tells it what it
// must report through LifecycleOptions' callbacks and Stats.
//
// A writer makes its first active segment with Create, or continues one
// with Resume, calls Start with it, rolls over with Take and Roll, and at
// Close calls Closing, SealActive and Close.
type Lifecycle struct {
	o     LifecycleOptions
	dir   string
	logID [16]byte // set by Create or Resume
	prep  *Preparer
	pool  *Pool // rolled segment files kept for reuse; nil under NoReuse

	closing     atomic.Bool
	active      atomic.Uint64 // the number of the active segment
	finishedNum atomic.Uint64 // rolled segments numbered below this are finished
	finishedSig chan struct{} // signalled when a rolled segment is finished
	finishCh    chan *Live    // rolled segments to finish, in order
	finished    chan struct{} // closed when the finisher returns
	wakes       atomic.Uint64 // futex wake-ups paid for sleeping readers

	retMu   sync.Mutex // one retention pass at a time; guards cursors
	seqs    SeqCache
	cursors consumers

	// Take's and Roll's, serialised by their caller.
	remake    bool // the next segment, remakeNum, must be made again (see Take)
	remakeNum uint64
	waited    time.Duration // how long the last Take waited
	sealed    *Live         // the active segment SealActive found released

	mu    sync.Mutex // guards stats
	stats Stats
}

// LifecycleOptions configure a Lifecycle.
type LifecycleOptions struct {
	Size     int64       // segment size in bytes
	Perm     os.FileMode // permission of segment files
	Prefault bool        // pre-fault segments for writing as they are prepared
	FillNew  bool        // with Prefault: fill new files through the write path first (PreparerOptions.FillNew)
	// Ahead is how many segments are kept prepared (see PreparerOptions).
	Ahead int
	// NoReuse makes every segment from a new file: no Pool.
	NoReuse bool
	// Retention bounds the rolled segments; the Lifecycle sets its Pool,
	// PoolBound, SyncDir (always) and Seqs. A small log's rolled segments
	// (MaxBackups+1 segments of at most keepMappedMax bytes) stay mapped
	// until retention pools their files, so that reusing them costs no
	// mapping, no pre-faulting and no unmapping.
	Retention Retention
	// DiskBound is the most bytes the directory may hold (0 or less:
	// unbounded): the plain files of compressed segments are pooled only
	// within it, beside the active and prepared segments.
	DiskBound int64
	// Recheck bounds how long a retention pass under KeepUnshipped waits
	// while nothing rolls over, so that held segments go once their
	// consumers passed them (0: every minute, or as MaxAge asks).
	Recheck time.Duration
	// Flush is the writer's flush policy: rolled segments are flushed
	// (msync MS_SYNC) and the directory fsynced at Close under every
	// policy but None; under Write each record's pages are flushed by
	// Append (ring hook) and each segment's header when it is activated;
	// the active segment is flushed at SealActive unless it is None.
	Flush flush.Policy
	// Now is the time of segment headers, of the roll (the modification
	// time MaxAge counts from) and of retention. Default time.Now.
	Now func() time.Time
	// WakeClock, if set, is the clock readers' wake deadlines are compared
	// with (ring.Ring.SetWakeClock): set it when record times are not the
	// real time.
	WakeClock func() int64

	// OnError receives errors of background work: finishing, flushing and
	// unmapping rolled segments, retention, compression, a prepared
	// segment found damaged and made again, the flush of an activated
	// segment's header. Nobody else is told.
	OnError func(error)
	// OnIgnored receives why a file in the cursors folder is ignored
	// under KeepUnshipped (another log's, unreadable), once until what is
	// wrong with it changes.
	OnIgnored func(error)
	// OnUnshipped receives, after a retention pass under KeepUnshipped,
	// the removals of segments holding records a registered cursor had
	// not passed (Action.Unshipped: MaxTotalSize left no choice), with
	// the cursors read for that pass, lowest first.
	OnUnshipped func(removed []Action, cursors []Cursor)
}

// Stats are counters of a Lifecycle's activity.
type Stats struct {
	Rotations       uint64        // segments rolled (Roll)
	RotationWaits   uint64        // rotations whose Take waited more than 50 µs for the next segment
	MaxRotationWait time.Duration // longest wait of a Take
	MaxPrepareTime  time.Duration // longest preparation of a segment
	Removed         uint64        // rolled segments removed by retention
	Compressed      uint64        // rolled segments compressed
	Reused          uint64        // segments made from a pooled file
	// Held and HeldBytes are the rolled segments that MaxBackups or MaxAge
	// would have removed and KeepUnshipped kept, as of the finisher's last
	// pass; IgnoredCursors the files in the cursors folder ignored at the
	// last pass.
	Held           uint64
	HeldBytes      int64
	IgnoredCursors uint64
	// Wakeups counts the futex wake-ups (system calls) made for readers
	// sleeping at the end of the log.
	Wakeups uint64
}

// keepMappedMax bounds the rolled segments whose mappings a Lifecycle keeps
// for their reuse: only when its retained segments fit (small segments,
// where mapping and pre-faulting cost most per byte written).
const keepMappedMax = 64 << 20

// NewLifecycle returns the Lifecycle of the segments of the log in dir. It
// starts nothing: see Create, Resume and Start.
func NewLifecycle(dir string, o LifecycleOptions) *Lifecycle {
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Lifecycle{o: o, dir: dir}
}

// Create makes segment num, whose first record is firstSeq, the active
// segment of the log logID, synchronously: for a writer opening a log it
// cannot append to (new, or whose last segment is full or cannot be
// continued). A retention pass makes room for it first. Every segment the
// Lifecycle makes from then on carries logID.
func (l *Lifecycle) Create(num, firstSeq uint64, logID [16]byte) (*Live, error) {
	l.logID = logID
	l.retain(num, num, l.o.Size, false)
	s, err := l.create(num)
	if err != nil {
		return nil, err
	}
	err = l.putHeader(s, firstSeq)
	if err == nil {
		err = l.flushHeader(s)
	}
	if err != nil {
		s.Remove()
		return nil, fmt.Errorf("new segment %s: %w", s.Path, err)
	}
	r, err := ring.New(s.Data, ring.HeaderSize, firstSeq, 0)
	if err != nil {
		s.Remove()
		return nil, err
	}
	return l.newLive(s, r, 0), nil
}

// Resume makes s, a segment of the log logID continued after a restart,
// the active segment, appended to through r; its first clean bytes are on
// stable storage already. Every segment the Lifecycle makes from then on
// carries logID.
func (l *Lifecycle) Resume(s *Segment, r *ring.Ring, clean int, logID [16]byte) *Live {
	l.logID = logID
	return l.newLive(s, r, clean)
}

// Start starts the background work behind the active segment, made by
// Create or Resume: preparing the next segments and finishing rolled ones.
func (l *Lifecycle) Start(active *Live) {
	l.active.Store(active.Num)
	l.finishedNum.Store(active.Num)
	if !l.o.NoReuse {
		l.pool = NewPool(l.dir, l.o.Size, l.o.Ahead)
		if n := l.o.Retention.MaxBackups; n > 0 && int64(n+1)*l.o.Size <= keepMappedMax {
			l.pool.KeepMappings(int64(n+l.o.Ahead+1) * l.o.Size)
		}
	}
	l.finishCh = make(chan *Live, 64)
	l.finishedSig = make(chan struct{}, 1)
	l.finished = make(chan struct{})
	go l.finisher()
	l.prep = StartPreparer(l.dir, active.Num+1, PreparerOptions{
		Size:         l.o.Size,
		Perm:         l.o.Perm,
		Prefault:     l.o.Prefault,
		FillNew:      l.o.FillNew,
		MapControl:   l.o.Flush.Mode != flush.ModeWrite,
		SyncDir:      true, // in the background, segments ahead: it costs no Write anything
		Ahead:        l.o.Ahead,
		BeforeCreate: l.makeRoom,
		Pool:         l.pool,
		OnCreate:     l.prepared,
	})
}

// prepared counts a preparation that took d.
func (l *Lifecycle) prepared(d time.Duration, reused bool) {
	l.mu.Lock()
	l.stats.MaxPrepareTime = max(l.stats.MaxPrepareTime, d)
	if reused {
		l.stats.Reused++
	}
	l.mu.Unlock()
}

// Take returns the next segment, activated: its header written, first
// record firstSeq (the count of records sealed in the active segment),
// waiting for the preparer if it is not ready. A prepared segment that
// another process truncated meanwhile is never written into (that would
// raise SIGBUS, or make every Append into it fail): it is discarded,
// reported (OnError), and made again here. If making it fails, or it is
// damaged again at once, Take fails, and the next call tries again with
// the same number, so that segment numbers stay consecutive.
func (l *Lifecycle) Take(firstSeq uint64) (*Live, error) {
	start := time.Now()
	s, err := l.next()
	if err != nil {
		return nil, err
	}
	for tries := 1; ; tries++ {
		err := l.putHeader(s, firstSeq)
		if err == nil {
			break
		}
		num := s.Num
		err = fmt.Errorf("prepared segment %s: %w; discarding it to make the segment again", s.Path, err)
		if rerr := s.Remove(); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			err = fmt.Errorf("%w (removing it: %v)", err, rerr)
		}
		if tries == 2 {
			// Damaged again as soon as made: someone keeps at it.
			// Fail this Take; the next one tries again.
			l.remake, l.remakeNum = true, num
			return nil, err
		}
		l.report(err)
		if s, err = l.remakeSegment(num); err != nil {
			return nil, err
		}
	}
	if err := l.flushHeader(s); err != nil {
		// The header is written; only its flush failed, as a record's
		// would: said, and the roll goes on.
		l.report(err)
	}
	l.waited = time.Since(start)
	r, err := ring.New(s.Data, ring.HeaderSize, firstSeq, 0)
	if err != nil {
		return nil, err // cannot happen: the segment is the size it was made
	}
	l.active.Store(s.Num)
	return l.newLive(s, r, 0), nil
}

// Roll hands seg, the segment the writer just rolled over from (Take's
// segment is active in its place), to the finisher. Readers sleeping at
// its end are woken to move on to the next one.
func (l *Lifecycle) Roll(seg *Live) {
	seg.Ring.WakeReaders(time.Now().UnixNano())
	l.mu.Lock()
	l.stats.Rotations++
	if l.waited > 50*time.Microsecond {
		l.stats.RotationWaits++
	}
	l.stats.MaxRotationWait = max(l.stats.MaxRotationWait, l.waited)
	l.mu.Unlock()
	l.finishCh <- seg
}

// next returns the segment to activate: the preparer's, or the one a
// failed Take left to make again.
func (l *Lifecycle) next() (*Segment, error) {
	if l.remake {
		return l.remakeSegment(l.remakeNum)
	}
	return l.prep.Take()
}

// create makes segment num from a new file, as the preparer would, and
// fsyncs the directory.
func (l *Lifecycle) create(num uint64) (*Segment, error) {
	s, _, err := createFrom(nil, l.dir, num, l.o.Size, l.o.Perm, l.o.Prefault, l.o.FillNew)
	if err != nil {
		return nil, err
	}
	if err := fileutil.SyncDir(l.dir); err != nil {
		s.Remove()
		return nil, err
	}
	return s, nil
}

// remakeSegment makes segment num in place of a prepared one that was
// discarded (the file it replaces was counted in the disk bound already).
// On failure the next Take tries again.
func (l *Lifecycle) remakeSegment(num uint64) (*Segment, error) {
	s, err := l.create(num)
	if err != nil {
		l.remake, l.remakeNum = true, num
		return nil, err
	}
	l.remake = false
	return s, nil
}

// putHeader makes s, created or prepared, the next segment of the log by
// writing its header, first record firstSeq: the one place a segment
// header is made. A file no longer as long as its mapping (truncated by
// another process) is an error, as is a memory fault while writing.
func (l *Lifecycle) putHeader(s *Segment, firstSeq uint64) error {
	if err := truncated(s); err != nil {
		return err
	}
	h := ring.Header{
		Segment:  s.Num,
		FirstSeq: firstSeq,
		Created:  l.o.Now().UnixNano(),
		Size:     uint64(len(s.Data)),
		LogID:    l.logID,
	}
	return fault.Guard("", func() error {
		ring.PutHeader(s.Data, h)
		return nil
	})
}

// flushHeader flushes the header page of the segment s just activated
// under the Write policy, before any record is written: each record's flush
// covers only its own pages, and a record on disk in a segment whose header
// is not is lost (recovery removes a segment whose header is zero). Under
// the other policies the first flush of a segment starts at its first page.
func (l *Lifecycle) flushHeader(s *Segment) error {
	if l.o.Flush.Mode != flush.ModeWrite {
		return nil
	}
	if err := fileutil.Msync(s.Data, 0, ring.HeaderSize, true); err != nil {
		return fmt.Errorf("flush the header of %s: %w", s.Path, err)
	}
	return nil
}

// newLive makes s, appended to through r, a Live segment: flushed from
// clean on, with the hooks of the flush policy and of the readers' wake-ups.
func (l *Lifecycle) newLive(s *Segment, r *ring.Ring, clean int) *Live {
	seg := &Live{Segment: s, Ring: r, Region: flush.NewRegion(s.Data, s.File, clean)}
	seg.Region.SetPublished(seg.published)
	var sync func(off, end int) error
	if l.o.Flush.Mode == flush.ModeWrite {
		sync = seg.Region.FlushRange
	}
	r.SetHooks(l.wake, sync)
	if sync == nil {
		// Appends reach the wake words through a mapping of their own,
		// so that the finisher proves the segment released from its
		// length words, without a second atomic per record; where that
		// mapping cannot be made, Appends count themselves instead.
		ctl := s.ctl // mapped by the preparer
		s.ctl = nil
		if ctl == nil {
			ctl, _ = fileutil.MapControl(s.File)
		}
		if ctl != nil {
			seg.ctl = ctl
			r.SetControl(ctl)
		}
	}
	if l.o.WakeClock != nil {
		r.SetWakeClock(l.o.WakeClock)
	}
	return seg
}

// wake wakes the readers sleeping on a segment's wake word. A reader about
// to sleep raises the segment's "wake me until" deadline (at most 100 ms
// ahead), re-checks for a record, and only then sleeps; the writer pays for
// a wake-up (one system call) only for records stamped before that
// deadline, so a reader killed in its sleep costs at most 100 ms of them.
func (l *Lifecycle) wake(word *uint32) {
	l.wakes.Add(1)
	fileutil.FutexWake(word, math.MaxInt32)
}

// Closing tells the Lifecycle that its writer is closing: a preparer
// waiting for room stops waiting (what it prepares will not be used). Call
// it before waiting for a roll in progress to end, then SealActive.
func (l *Lifecycle) Closing() { l.closing.Store(true) }

// SealActive closes the active segment seg for good, at the writer's
// Close: no record can be reserved in it any more, and once every one
// reserved is published it is marked closed (what a reader finds after the
// last record is then damage, not a write in progress) and flushed unless
// the policy is None. A file truncated by another process lost its records
// past its end, and its mapping faults there: the error says so rather
// than wait for records that read as zeros, and the mapping is left alone
// (a Write still under way in it fails by itself). Call it with the
// writer's rolling over stopped, then Close.
func (l *Lifecycle) SealActive(seg *Live) error {
	l.closing.Store(true)
	end, _ := seg.Ring.Seal(false, 0)
	err := truncated(seg.Segment)
	if err == nil {
		err = seg.Ring.WaitReleased(10 * time.Second)
	}
	if err != nil {
		return fmt.Errorf("close %s: %w", seg.Path, err)
	}
	l.sealed = seg // every reservation is published: Close may unmap it
	if err := storeState(seg, ring.StateClosed); err != nil {
		return fmt.Errorf("close %s: %w", seg.Path, err)
	}
	if l.o.Flush.Mode != flush.ModeNone {
		if err := seg.Region.Flush(end, true); err != nil {
			return fmt.Errorf("close: msync %s: %w", seg.Path, err)
		}
	}
	return nil
}

// Close stops preparing (removing the prepared segments nobody took),
// finishes the rolled segments, removes the pooled files, unmaps the
// active segment if SealActive found it released, and fsyncs the
// directory unless the policy is None.
func (l *Lifecycle) Close() error {
	l.closing.Store(true)
	var errs []error
	if l.prep != nil {
		l.prep.Close()
		close(l.finishCh)
		<-l.finished
	}
	if err := l.pool.Close(); err != nil {
		errs = append(errs, err)
	}
	if l.sealed != nil {
		if err := l.sealed.unmap(); err != nil {
			errs = append(errs, err)
		}
	}
	if l.o.Flush.SyncsRolled() {
		if err := fileutil.SyncDir(l.dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Finished returns the number below which rolled segments are finished:
// every record reserved in them published, and flushed as the policy asks.
func (l *Lifecycle) Finished() uint64 { return l.finishedNum.Load() }

// Stats returns the counters; with reset set, MaxRotationWait and
// MaxPrepareTime start over.
func (l *Lifecycle) Stats(reset bool) Stats {
	l.mu.Lock()
	s := l.stats
	if reset {
		l.stats.MaxRotationWait, l.stats.MaxPrepareTime = 0, 0
	}
	l.mu.Unlock()
	s.Wakeups = l.wakes.Load()
	return s
}

// report tells OnError.
func (l *Lifecycle) report(err error) {
	if l.o.OnError != nil {
		l.o.OnError(err)
	}
}
