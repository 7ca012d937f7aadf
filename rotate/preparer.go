package rotate

import (
	"os"
	"sync"
	"time"

	"github.com/mmaplog/mmaplog/internal/fileutil"
)

// Preparer keeps the next segments ready in the background: created,
// preallocated, mapped and pre-faulted, so that rolling over costs the
// writer no system call.
type Preparer struct {
	dir      string
	size     int64
	perm     os.FileMode
	prefault bool
	fillNew  bool
	syncDir  bool
	// mapControl maps each segment's first page once more, for the
	// Appends' wake words (Lifecycle.newLive takes it over).
	mapControl bool
	pool       *Pool

	ready chan prepared
	stop  chan struct{}
	done  chan struct{}

	mu      sync.Mutex
	lastErr error // the last preparation error, while the goroutine backs off
}

type prepared struct {
	seg *Segment
	err error
}

// PreparerOptions configure a Preparer.
type PreparerOptions struct {
	// Ahead is how many segments are kept prepared (default 1). Two
	// absorb the occasional filesystem stall of tens of milliseconds
	// that would otherwise make a rotation wait.
	Ahead    int
	Size     int64       // segment size in bytes
	Perm     os.FileMode // file permissions
	Prefault bool        // pre-fault the mapping for writing
	// FillNew fills a new file's pages through the write path before
	// pre-faulting (faster; see createFrom): not where msync runs while
	// the writer writes.
	FillNew bool
	// MapControl maps each segment's first page once more for the
	// Appends' wake words (fileutil.MapControl), ahead of the roll.
	MapControl bool
	// SyncDir fsyncs the directory after each segment is created, so that
	// the new file's name survives a power loss. Flush policies that promise
	// durability need it; without them it only costs time.
	SyncDir bool
	// BeforeCreate, if set, is called in the preparing goroutine before
	// each segment is created, with its number: the place to make room
	// (retention) so that the new file stays within the disk bounds.
	BeforeCreate func(num uint64)
	// OnCreate, if set, is called in the preparing goroutine with how long
	// each successful preparation took and whether it reused a file of
	// Pool (for statistics).
	OnCreate func(d time.Duration, reused bool)
	// Pool, if set, is where segments are made from before new files are
	// created (see CreateFrom).
	Pool *Pool
}

// StartPreparer starts preparing segments in dir, numbered from first. Call
// Take to get each, and Close when done.
func StartPreparer(dir string, first uint64, o PreparerOptions) *Preparer {
	p := &Preparer{
		dir: dir, size: o.Size, perm: o.Perm, prefault: o.Prefault, fillNew: o.FillNew, mapControl: o.MapControl, syncDir: o.SyncDir, pool: o.Pool,
		ready: make(chan prepared, max(o.Ahead, 1)-1),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	go p.run(first, o.BeforeCreate, o.OnCreate)
	return p
}

func (p *Preparer) run(num uint64, beforeCreate func(uint64), onCreate func(time.Duration, bool)) {
	defer close(p.done)
	wait := 10 * time.Millisecond
	for {
		start := time.Now()
		if beforeCreate != nil {
			beforeCreate(num)
		}
		seg, reused, err := createFrom(p.pool, p.dir, num, p.size, p.perm, p.prefault, p.fillNew)
		if err == nil {
			if err = p.makeReady(seg, reused); err != nil {
				seg.Remove()
				seg = nil
			}
		}
		if err != nil {
			p.mu.Lock()
			p.lastErr = err
			p.mu.Unlock()
			select {
			case p.ready <- prepared{err: err}:
			case <-p.stop:
				return
			}
			// Back off before trying again (a full disk stays full for a
			// while); Take meanwhile returns the last error at once.
			select {
			case <-time.After(wait):
			case <-p.stop:
				return
			}
			if wait < time.Second {
				wait *= 2
			}
			continue
		}
		wait = 10 * time.Millisecond
		p.mu.Lock()
		p.lastErr = nil
		p.mu.Unlock()
		if onCreate != nil {
			onCreate(time.Since(start), reused)
		}
		select {
		case p.ready <- prepared{seg: seg}:
			num++
		case <-p.stop:
			// Nobody took it: it was never activated, remove it.
			seg.Remove()
			fileutil.SyncDir(p.dir)
			return
		}
	}
}

// makeReady does what is left to make seg, just created (reused: from a pooled
// file), ready for the writer, so that the Write that rolls over to it
// makes no system call and takes no page fault: its header page writable
// again after a reused file's cleared header was flushed (which leaves the
// page read-only), its control page mapped (MapControl), and the directory
// synced.
func (p *Preparer) makeReady(seg *Segment, reused bool) error {
	if reused && p.prefault {
		if err := fileutil.PrefaultWrite(seg.Data[:fileutil.PageSize()]); err != nil {
			return err
		}
	}
	if p.mapControl {
		if ctl, err := fileutil.MapControl(seg.File); err == nil {
			_ = fileutil.PrefaultWrite(ctl) // a fault left is taken by the first Append
			seg.ctl = ctl
		}
	}
	if p.syncDir {
		return fileutil.SyncDir(p.dir)
	}
	return nil
}

// Take returns the prepared segment, waiting for it if it is not ready yet.
// If the last preparation failed and the next attempt is not ready, it
// returns that error at once instead of waiting.
func (p *Preparer) Take() (*Segment, error) {
	select {
	case r := <-p.ready:
		return r.seg, r.err
	default:
	}
	p.mu.Lock()
	err := p.lastErr
	p.mu.Unlock()
	if err != nil {
		return nil, err
	}
	r := <-p.ready
	return r.seg, r.err
}

// Close stops the goroutine and removes the prepared segments nobody took.
func (p *Preparer) Close() {
	close(p.stop)
	<-p.done
	removed := false
	for {
		select {
		case r := <-p.ready:
			if r.seg != nil {
				r.seg.Remove()
				removed = true
			}
			continue
		default:
		}
		break
	}
	if removed {
		fileutil.SyncDir(p.dir)
	}
}
