package rotate

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/mmaplog/mmaplog/internal/fault"
	"github.com/mmaplog/mmaplog/internal/fileutil"
	"github.com/mmaplog/mmaplog/ring"
)

// Retention bounds the rolled segments of a log. Its fields mean what
// lumberjack's fields of the same names mean; a zero or negative field sets
// no bound of that kind.
type Retention struct {
	// MaxBackups is the number of rolled segments to keep.
	MaxBackups int
	// MaxAge removes rolled segments rolled longer ago than this.
	MaxAge time.Duration
	// MaxTotalSize bounds the bytes of all segment files of the log,
	// active and prepared segments included.
	MaxTotalSize int64
	// Compress compresses rolled segments with zstd (see CompressRolled).
	Compress bool
	// SyncDir fsyncs the directory after removals, so that they survive a
	// power loss (a removal that does not is simply done again).
	SyncDir bool
	// Pool, if set, receives the plain segment files that Apply removes
	// and the plain files of segments CompressRolled compressed: the
	// writer makes its next segments from them (see Pool.Put).
	Pool *Pool
	// PoolBound, if positive, bounds what the plain file of a compressed
	// segment may add: CompressRolled gives it to Pool only while the
	// rolled segments (those below State.Active, compressed or not) and
	// the pooled files, it included, take at most PoolBound bytes, and
	// removes it otherwise. A writer sets it to its disk bound less the
	// active and prepared segments, so that a kept file never takes the
	// directory over that bound (a compressed segment is smaller than its
	// plain file, but not nothing).
	PoolBound int64
	// KeepUnshipped keeps every rolled segment that holds a record
	// numbered State.Keep or later (one a consumer has not passed yet)
	// from MaxBackups and MaxAge: only MaxTotalSize removes it, and says
	// so (Action.Unshipped); while kept, its file is not given to Pool
	// either. Which records a segment holds comes from its header's
	// FirstSeq and the next segment's (Seqs caches them); a segment whose
	// range cannot be read is kept, as one that may hold such records.
	KeepUnshipped bool
	// Seqs, if set, keeps the first sequence numbers of segments read
	// for KeepUnshipped from one Apply to the next (a compressed
	// segment's header costs a decompression). Nil reads them each time.
	Seqs *SeqCache
}

// Op is the kind of an Action.
type Op uint8

const (
	// OpRemoved: a file was removed (retention, or a leftover).
	OpRemoved Op = iota + 1
	// OpCompressed: a rolled segment was compressed (and its plain file
	// removed).
	OpCompressed
)

func (o Op) String() string {
	switch o {
	case OpRemoved:
		return "removed"
	case OpCompressed:
		return "compressed"
	}
	return fmt.Sprintf("Op(%d)", uint8(o))
}

// Action is one thing Apply or CompressRolled did.
type Action struct {
	Path   string
	Op     Op
	Reason Reason // why
	// FirstSeq and NextSeq say which records a segment Apply removed
	// held, FirstSeq to NextSeq-1, under KeepUnshipped (0: not known;
	// its header could not be read).
	FirstSeq, NextSeq uint64
	// Unshipped is set on a removal by MaxTotalSize of a segment holding
	// records numbered State.Keep or later (KeepUnshipped): records a
	// consumer has not passed yet, from max(FirstSeq, State.Keep) to
	// NextSeq-1.
	Unshipped bool
}

// Result is what Apply did, and whether the bounds still do not hold.
type Result struct {
	Actions []Action
	// Over is set when the directory is still over MaxBackups or
	// MaxTotalSize because the segments that would have to go are not
	// finished yet: the caller should wait for them before adding a
	// segment. Segments kept for State.Keep (KeepUnshipped) do not make it
	// over MaxBackups: waiting would not make them go.
	Over bool
	// Held and HeldBytes count the rolled segments that MaxBackups or
	// MaxAge would have removed and KeepUnshipped kept.
	Held      int
	HeldBytes int64
}

// State tells Apply where the writer is.
type State struct {
	// Active is the number of the segment being written; segments with
	// lower numbers are rolled and count towards MaxBackups.
	Active uint64
	// Finished: segments numbered below it are rolled and finished (every
	// record published and flushed as the policy asks), so they may be
	// removed or compressed. Rolled segments not yet finished are counted
	// but never touched.
	Finished uint64
	// Reserve is bytes about to be added to the directory (a segment being
	// prepared); MaxTotalSize counts them.
	Reserve int64
	// Keep is the lowest sequence number a consumer still needs (the
	// lowest NextSeq of the registered cursors): with KeepUnshipped,
	// rolled segments holding it or later records are kept. 0: none.
	Keep uint64
}

// Apply enforces the retention on dir: it removes the oldest finished rolled
// segments while there are more than MaxBackups rolled segments, while the
// directory (plus Reserve) is over MaxTotalSize, and while they are older
// than MaxAge; with KeepUnshipped, MaxBackups and MaxAge stop at the first
// segment holding records from State.Keep on. It also cleans up what
// interrupted compressions left (with cleanup set: only where no
// compression can be running). It is quick: it lists and removes files,
// and under KeepUnshipped reads a segment header or two (SeqCache).
func (r Retention) Apply(dir string, st State, now time.Time, cleanup bool) (Result, error) {
	l, err := List(dir)
	if err != nil {
		return Result{}, err
	}
	p := &applying{r: r}
	if p.cleanUp(dir, l, st, cleanup) {
		if l, err = List(dir); err != nil {
			return Result{Actions: p.acts}, err
		}
	}
	res, left, removed, k := p.enforce(l, st, now)
	if p.changed && r.SyncDir {
		if err := fileutil.SyncDir(dir); err != nil {
			p.errs = append(p.errs, err)
		}
	}
	// Over MaxBackups counts only if the oldest rolled segment left is
	// one retention will remove once it is finished: not one kept for a
	// consumer (nor, then, any after it, which hold later records).
	over := r.MaxTotalSize > 0 && res.total > r.MaxTotalSize
	if r.MaxBackups > 0 && left > r.MaxBackups {
		for _, s := range l.Segments {
			if s.Num >= st.Active {
				break
			}
			if !removed[s.Num] {
				over = over || !k.holds(s)
				break
			}
		}
	}
	res.Actions, res.Over = p.acts, over
	return res.Result, errors.Join(p.errs...)
}

// applying is one Apply: what it did so far.
type applying struct {
	r       Retention
	acts    []Action
	errs    []error
	changed bool // a file left its name: List again, fsync the directory
}

// remove removes the file at path, reporting a.
func (p *applying) remove(path string, a Action) bool {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		p.errs = append(p.errs, err)
		return false
	}
	p.changed = true
	a.Path, a.Op = path, OpRemoved
	p.acts = append(p.acts, a)
	return true
}

// release takes a finished plain segment away from its name, into the
// pool where there is one, reporting a.
func (p *applying) release(fi FileInfo, a Action) bool {
	if fi.Compressed || p.r.Pool == nil {
		return p.remove(fi.Path, a)
	}
	pooled, err := p.r.Pool.Put(fi)
	if err != nil {
		p.errs = append(p.errs, err)
		return false
	}
	a.Reason.Pooled = pooled
	p.changed = true
	a.Path, a.Op = fi.Path, OpRemoved
	p.acts = append(p.acts, a)
	return true
}

// cleanUp removes what interrupted compressions left: temporary files
// (with cleanup set) and plain files whose compressed copy is complete.
// It reports whether a file went.
func (p *applying) cleanUp(dir string, l Listing, st State, cleanup bool) bool {
	for _, t := range l.Temp {
		// Only leftovers of compressions: a segment being prepared is a
		// temporary file too, and removing it would break the preparer.
		if cleanup && strings.HasSuffix(t, CompressedExt+tmpExt) {
			p.remove(t, Action{Reason: Reason{Rule: RuleLeftover}})
		}
	}
	for _, d := range l.Duplicates {
		if d.Compressed && d.Num < st.Finished {
			// A compression finished but the original was not removed yet.
			for _, s := range l.Segments {
				if s.Num != d.Num || s.Compressed {
					continue
				}
				a := Action{Reason: Reason{Rule: RuleCompressedCopy}}
				// Pooled within PoolBound only, as the compressor
				// itself would.
				if p.r.PoolBound > 0 && !p.r.poolFits(dir, st) {
					p.remove(s.Path, a)
					continue
				}
				p.release(s, a)
			}
		}
	}
	return p.changed
}

// enforced is what enforce leaves: the Result so far and the bytes the
// log takes (Reserve included) once its removals are done.
type enforced struct {
	Result
	total int64
}

// enforce removes the finished rolled segments of l that the bounds say
// must go, oldest first. It returns how many rolled segments are left,
// which it removed, and the keeper it asked.
func (p *applying) enforce(l Listing, st State, now time.Time) (res enforced, left int, removed map[uint64]bool, k *keeper) {
	r := p.r
	var rolled []FileInfo
	nrolled := 0
	res.total = l.DiskUsage() + st.Reserve
	for _, s := range l.Segments {
		if s.Num < st.Active {
			nrolled++
		}
		if s.Num < st.Finished && s.Num < st.Active {
			rolled = append(rolled, s)
		}
	}
	k = r.keeper(l, st)
	// counted: the rolled segments left, less those kept for a consumer
	// that MaxBackups would have removed (Held).
	left, counted := nrolled, nrolled
	removed = map[uint64]bool{}
	// Once a segment is held, so is every later one: they hold later
	// records, and retention removes the oldest first (readers rely on
	// it: a segment missing after an older one is damage, not retention).
	holding := false
	for _, s := range rolled {
		holding = holding || k.holds(s)
		a := Action{}
		if k != nil {
			a.FirstSeq, a.NextSeq = k.span(s)
		}
		backups := r.MaxBackups > 0 && counted > r.MaxBackups
		aged := r.MaxAge > 0 && now.Sub(time.Unix(0, s.ModTime)) > r.MaxAge
		if !r.why(&a, st, res.total, holding, backups, aged) {
			if holding && (backups || aged) {
				res.Held++
				res.HeldBytes += s.Size
				if backups {
					counted--
				}
			}
			continue
		}
		if p.release(s, a) {
			res.total -= s.Size
			left--
			counted--
			removed[s.Num] = true
		}
	}
	return res, left, removed, k
}

// why fills in the Reason of a removal of a rolled segment (held: kept
// for a consumer; backups, aged: over MaxBackups, older than MaxAge), or
// reports that none applies. total is what the log takes.
func (r Retention) why(a *Action, st State, total int64, held, backups, aged bool) bool {
	switch {
	case backups && !held:
		a.Reason = Reason{Rule: RuleMaxBackups, MaxBackups: r.MaxBackups}
	case r.MaxTotalSize > 0 && total > r.MaxTotalSize:
		a.Reason = Reason{Rule: RuleMaxTotalSize, Bytes: total, MaxTotalSize: r.MaxTotalSize}
		if held {
			a.Unshipped = true
			a.Reason.Keep = st.Keep
		}
	case aged && !held:
		a.Reason = Reason{Rule: RuleMaxAge, MaxAge: r.MaxAge}
	default:
		return false
	}
	return true
}

// CompressRolled compresses the finished rolled segments of dir that are not
// compressed yet (if Compress is set), oldest first. It is slow (it reads
// and compresses whole segments): call it from a background goroutine, not
// under a lock that Apply needs. A segment that Apply removes meanwhile is
// skipped.
func (r Retention) CompressRolled(dir string, st State) ([]Action, error) {
	if !r.Compress {
		return nil, nil
	}
	l, err := List(dir)
	if err != nil {
		return nil, err
	}
	var acts []Action
	var errs []error
	for _, s := range l.Segments {
		if s.Compressed || s.Num >= st.Finished || s.Num >= st.Active {
			continue
		}
		out, err := compressSegment(s, r.Pool, func() bool { return r.poolFits(dir, st) })
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		acts = append(acts, Action{Path: out, Op: OpCompressed, Reason: Reason{Rule: RuleCompress}})
	}
	return acts, errors.Join(errs...)
}

// poolFits reports whether the plain file of a segment just compressed (its
// compressed copy in place) may go to the pool within PoolBound: what the
// rolled segments take now, both copies counted, is what they and the pool
// take once the plain file moved there.
func (r Retention) poolFits(dir string, st State) bool {
	if r.PoolBound <= 0 {
		return true
	}
	l, err := List(dir)
	if err != nil {
		return false
	}
	n := r.Pool.Bytes()
	for _, s := range append(l.Segments, l.Duplicates...) {
		if s.Num < st.Active {
			n += s.Size
		}
	}
	return n <= r.PoolBound
}

// CompressSegment compresses a rolled plain segment to a .zst file holding its
// bytes up to the padding record that closed it, then removes the original.
// The steps, in this order, are what readers rely on (docs/FORMAT.md,
// "Compressed segments"):
//
//  1. write NNNN.mlog.zst.tmp (the header with its control area cleared,
//     then the records), fsync it;
//  2. rename it to NNNN.mlog.zst, fsync the directory;
//  3. unlink NNNN.mlog, fsync the directory.
//
// So the segment exists under at least one of its names at every moment (a
// crash leaves one complete copy, or two), and Lookup, which tries the plain
// name before the compressed one, always finds it. A reader that has the
// plain file open reads on from the unlinked file. The compressed file keeps
// the original's modification time (the roll time, which MaxAge counts
// from).
func CompressSegment(fi FileInfo) (string, error) { return compressSegment(fi, nil, nil) }

// compressSegment is CompressSegment, giving the plain file to pool in step
// 3 (renamed away instead of unlinked: the same for readers) if there is one
// and fits (nil: always) says it may take it.
func compressSegment(fi FileInfo, pool *Pool, fits func() bool) (string, error) {
	v, err := OpenView(fi)
	if err != nil {
		return "", err
	}
	// The view holds a shared lock on the plain file, which keeps Reclaim
	// (Pool.Put) from taking it: close it before step 3.
	defer func() {
		if v != nil {
			v.Close()
		}
	}()
	var end int
	if err := fault.Guard(v.Path, func() error {
		end = ring.Scan(v.Data, v.Header.FirstSeq, nil).DataEnd
		return nil
	}); err != nil {
		return "", err
	}
	out := fi.Path + CompressedExt
	tmp := out + tmpExt
	if err := writeCompressed(tmp, fi, v, end); err != nil {
		return "", err
	}
	mt := time.Unix(0, fi.ModTime)
	os.Chtimes(tmp, mt, mt)
	if err := os.Rename(tmp, out); err != nil {
		os.Remove(tmp)
		return "", err
	}
	if err := fileutil.SyncDir(filepath.Dir(fi.Path)); err != nil {
		return "", err
	}
	if err := v.Close(); err != nil {
		return "", fmt.Errorf("compress %s: %w", fi.Path, err)
	}
	v = nil
	// From here on the segment is compressed. A retention pass beside
	// this one may have released the plain file already, as soon as the
	// compressed copy appeared: that is no failure.
	if pool != nil && (fits == nil || fits()) {
		st, err := os.Stat(fi.Path)
		if errors.Is(err, fs.ErrNotExist) {
			return out, nil
		}
		if err == nil {
			fi.Size = st.Size()
		}
		if _, err := pool.Put(fi); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
	} else if err := os.Remove(fi.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	return out, fileutil.SyncDir(filepath.Dir(fi.Path))
}

// writeCompressed writes tmp, the compressed copy of the plain segment fi
// open as v, whose records end at end, and fsyncs it (step 1 of
// CompressSegment). On failure tmp is gone.
func writeCompressed(tmp string, fi FileInfo, v *View, end int) error {
	f, err := fileutil.CreateExclusive(tmp, 0o600)
	if err != nil {
		return err
	}
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("compress %s: %w", fi.Path, err)
	}
	if st, err := os.Stat(fi.Path); err == nil {
		f.Chmod(st.Mode().Perm())
	}
	enc, err := zstd.NewWriter(f, zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(true))
	if err != nil {
		return fail(err)
	}
	if err := fault.Guard(v.Path, func() error {
		// The header from a private copy: followers write the control
		// area of a segment (its wake words) at any moment, and bytes
		// that change while the encoder reads them would not match the
		// frame's checksum. The records never change once published.
		hdr := make([]byte, ring.HeaderSize)
		copy(hdr, v.Data[:ring.HeaderSize])
		ring.ClearControl(hdr, ring.StateSealed)
		if _, err := enc.Write(hdr); err != nil {
			return err
		}
		_, err := enc.Write(v.Data[ring.HeaderSize:end])
		return err
	}); err != nil {
		enc.Close()
		return fail(err)
	}
	if err := enc.Close(); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}
