package tail

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/mmaplog/mmaplog/internal/fault"
	"github.com/mmaplog/mmaplog/internal/fileutil"
	"github.com/mmaplog/mmaplog/ring"
	"github.com/mmaplog/mmaplog/rotate"
)

// Record is one log record. Payload points into the mapped segment: it is
// valid until the next call to Next or Close; copy it to keep it.
type Record struct {
	Seq     uint64 // sequence number: one more than the previous record's
	Time    int64  // when it was written, Unix nanoseconds
	Type    uint8  // record type (the level, for log records)
	Payload []byte
	Segment uint64 // number of the segment holding it
	Offset  int64  // its offset in the segment
	Size    int    // bytes it takes in the segment (header and padding included)
}

// Damage is a range that a Reader skipped or could not read.
type Damage struct {
	Path     string
	From, To int64  // byte range in the segment; To is -1 for "to the end of the file"
	Lost     uint64 // records lost, as the sequence numbers prove (0 if unknown)
	Err      error
}

func (d Damage) String() string {
	to := fmt.Sprint(d.To)
	if d.To < 0 {
		to = "end"
	}
	s := fmt.Sprintf("%s: offsets %d to %s skipped", d.Path, d.From, to)
	if d.Lost > 0 {
		s += fmt.Sprintf(", %d record(s) lost", d.Lost)
	}
	if d.Err != nil {
		s += ": " + d.Err.Error()
	}
	return s
}

// ErrOtherLog is wrapped by the error of a Reader that met a segment of
// another log than the one it was asked for (Options.LogID, such as a
// cursor's): the directory was replaced by a new log, or the cursor belongs
// elsewhere.
var ErrOtherLog = errors.New("segment belongs to another log")

// Defaults of the follow-mode Options.
const (
	// DefaultHoleWait is how long a following Reader waits for a record
	// that was reserved but not yet published while the writer lives.
	DefaultHoleWait = 10 * time.Second
	// DefaultWaitTimeout is the longest a caught-up Reader sleeps in Wait
	// before it looks again without being woken.
	DefaultWaitTimeout = 5 * time.Millisecond
	// MaxIdleWait is how long an idle follower sleeps at most without
	// being woken by the writer (the timeout doubles from WaitTimeout
	// while nothing comes). It bounds how late a Wait sees ctx done.
	MaxIdleWait = 100 * time.Millisecond
)

// Options configure a Reader. A nil *Options reads every record from the
// oldest one present to the end of what is written, and stops there.
type Options struct {
	// FromSeq starts at the record with this sequence number: records with
	// lower numbers are skipped. 0 reads from the oldest record present. If
	// retention removed the record already, the Reader starts at the oldest
	// one and reports the records lost (Damage).
	FromSeq uint64
	// FromEnd starts after the newest record present at Open: only
	// records written later are read (with Follow). It overrides FromSeq.
	FromEnd bool
	// LogID, if not zero, is the identity of the log to read (a cursor's):
	// a segment of another log stops the Reader with ErrOtherLog.
	LogID [16]byte

	// Follow makes the Reader follow the writer: at the end of what is
	// written, Next returns false with a nil Err ("no data yet"), Wait
	// waits for more, and the Reader goes on across rotations into new
	// segments.
	Follow bool
	// HoleWait bounds how long a following Reader waits at a record that
	// the live writer reserved but has not published while later records
	// are there (a writer goroutine stopped between the two). After that
	// the range is skipped and reported as Damage. When the writer is dead
	// (it holds no lock on DIR/LOCK) the range is skipped as soon as a
	// provably valid record follows it. Default DefaultHoleWait.
	HoleWait time.Duration
	// WaitTimeout is how long Wait first sleeps before it looks again
	// without being woken by the writer; it doubles while the log stays
	// idle, up to MaxIdleWait. Default DefaultWaitTimeout.
	WaitTimeout time.Duration

	// OnDamage, if set, is called for every damaged range as it is met
	// (they are also collected; see Reader.Damage).
	OnDamage func(Damage)
}

// Reader reads the records of a log in sequence order. It is not safe for
// concurrent use.
type Reader struct {
	dir      string
	lockPath string
	opts     Options

	segs     []rotate.FileInfo // the last listing of the directory
	passed   uint64            // segments numbered up to this one are done
	relisted bool              // the directory was listed during this Next
	view     *rotate.View      // the segment being read
	// truncReported is 1 + the number of the segment whose truncation was
	// reported last (0: none).
	truncReported uint64
	z             *zstream // its decompressing stream, for a compressed one
	ctl           []byte   // writable mapping of its first page (nil: none)
	pos           int
	nextSeq       uint64
	started       bool // nextSeq is known
	logID         [16]byte
	haveID        bool
	atEnd         bool // static reading reached the end
	rec           Record
	err           error
	damage        []Damage
	lost          uint64
	released      int // the view's pages below this offset were given back

	// Follow state: where the Reader found nothing to read and since when.
	emptySeg   uint64
	emptyAt    int
	emptySince time.Time
	checkAt    time.Time
	checkEvery time.Duration
	scanned    bool // nothing followed emptyAt when the writer was not running
	evidence   bool // woken by the writer while emptyAt stayed empty: it wrote elsewhere
	scanAt     time.Time
	scanEvery  time.Duration
	idle       int // Waits in a row that found nothing
}

// releaseChunk is how far a Reader gets past the pages it read before it
// gives them back, so that its resident set stays small on large segments.
const releaseChunk = 4 << 20

// Open opens the log in dir for reading. It does not take the writer's lock:
// reading while a writer appends is safe.
func Open(dir string, o *Options) (*Reader, error) {
	r := &Reader{dir: dir, lockPath: filepath.Join(dir, rotate.LockName), emptyAt: -1}
	if o != nil {
		r.opts = *o
	}
	l, err := rotate.List(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist) && r.opts.Follow:
		// Started before the writer created the log: wait for it.
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("tail: no log directory %s", dir)
	case err != nil:
		return nil, fmt.Errorf("tail: %w", err)
	}
	r.segs = l.Segments
	if r.opts.HoleWait <= 0 {
		r.opts.HoleWait = DefaultHoleWait
	}
	if r.opts.WaitTimeout <= 0 {
		r.opts.WaitTimeout = DefaultWaitTimeout
	}
	r.chooseStart()
	return r, nil
}

// Next advances to the next record and reports whether there is one. It
// returns false at the end of what is written (in follow mode: for now; call
// Wait, then Next again) and on an error that stops reading; Err tells
// which.
func (r *Reader) Next() bool {
	if r.err != nil || r.atEnd {
		return false
	}
	r.relisted = false
	for {
		if r.view == nil && !r.openNext() {
			return false
		}
		ok, more := r.step()
		if ok {
			if off := int(r.rec.Offset); off-r.released >= releaseChunk {
				r.release(off) // the pages before the record just read
			}
			r.idle = 0
			return true
		}
		if !more {
			return false
		}
	}
}

// step decodes at the current position. ok: a record is ready; more: keep
// going (false at the end of what is written or on a fatal error).
func (r *Reader) step() (ok, more bool) {
	v := r.view
	defer func() {
		if p := recover(); p != nil {
			err := fault.Error(p, v.Path)
			r.report(Damage{Path: v.Path, From: int64(r.pos), To: -1, Err: err})
			r.closeView()
			ok, more = false, true
		}
	}()
	old := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(old)

	// base is the segment offset of v.Data[0]: 0 for a mapping, the
	// window's start for a compressed segment read as a stream.
	base := 0
	if r.z != nil {
		if err := r.z.prepare(r.pos); err != nil {
			r.report(Damage{Path: v.Path, From: int64(r.pos), To: -1, Err: &ring.CorruptionError{Path: v.Path, Offset: int64(r.pos), Err: fmt.Errorf("zstd: %w", err)}})
			r.closeView()
			return false, true
		}
		v.Data, base = r.z.buf, r.z.base
	}
	rec, kind, err := ring.Decode(v.Data, r.pos-base)
	rec.Offset += int64(base)
	switch kind {
	case ring.KindRecord, ring.KindPadding:
		if rec.Seq < r.nextSeq {
			err = &ring.CorruptionError{Offset: int64(r.pos), Err: fmt.Errorf("%w: %d after %d", ring.ErrSequence, rec.Seq, r.nextSeq)}
			break
		}
		if rec.Seq > r.nextSeq {
			r.report(Damage{Path: v.Path, From: int64(r.pos), To: int64(r.pos), Lost: rec.Seq - r.nextSeq,
				Err: fmt.Errorf("sequence jumps from %d to %d (records removed by an earlier repair)", r.nextSeq, rec.Seq)})
		}
		r.pos += rec.Size
		if kind == ring.KindPadding {
			r.nextSeq = rec.Seq
			return false, true
		}
		r.nextSeq = rec.Seq + 1
		if rec.Seq < r.opts.FromSeq {
			return false, true
		}
		r.rec = Record{Seq: rec.Seq, Time: rec.Time, Type: rec.Type, Payload: rec.Payload, Segment: v.Num, Offset: rec.Offset, Size: rec.Size}
		return true, true
	case ring.KindEnd:
		r.reportTruncated(v)
		r.closeView()
		return false, true
	case ring.KindEmpty:
		if !v.Compressed {
			if r.opts.Follow {
				if r.waitAtEmpty(v) {
					return false, false
				}
			} else if !r.laterStarted(v.Num, false) && !r.deadHole(v) {
				// The end of the data written so far.
				r.reportTruncated(v)
				r.atEnd = true
				return false, false
			}
		}
	}
	// A hole or a corrupt record: skip to the next provably valid record.
	if err == nil {
		err = &ring.CorruptionError{Offset: int64(r.pos), Err: ring.ErrHole}
	}
	setPath(err, v.Path)
	var ce *ring.CorruptionError
	if base != 0 && errors.As(err, &ce) && ce.Offset >= 0 {
		ce.Offset += int64(base)
	}
	next, found, _ := ring.Resync(v.Data, r.pos-base, r.pos-base, r.nextSeq)
	next += base
	if found && next == r.pos {
		return false, true // published meanwhile: read it
	}
	if found {
		d := Damage{Path: v.Path, From: int64(r.pos), To: int64(next), Err: err}
		if nr, _, _ := ring.Decode(v.Data, next-base); nr.Seq > r.nextSeq {
			d.Lost = nr.Seq - r.nextSeq
			r.nextSeq = nr.Seq
		}
		r.report(d)
		r.pos = next
		return false, true
	}
	// Nothing valid follows in this segment: the next segment's header
	// says where the log goes on.
	r.report(Damage{Path: v.Path, From: int64(r.pos), To: -1, Err: err})
	r.closeView()
	return false, true
}

// waitAtEmpty decides, in follow mode, what a zero length word at the
// current position means: the end of what is written so far, a record that a
// live writer goroutine is still writing (wait: true), or a hole that will
// never be filled (false: skip it). It looks past the word only now and then:
// scanning the rest of a segment costs a few milliseconds.
func (r *Reader) waitAtEmpty(v *rotate.View) (wait bool) {
	now := time.Now()
	if r.emptyAt != r.pos || r.emptySeg != v.Num {
		r.emptyAt, r.emptySeg, r.emptySince = r.pos, v.Num, now
		r.checkEvery = 100 * time.Millisecond
		r.checkAt = now.Add(20 * time.Millisecond)
		r.scanned, r.evidence = false, false
		r.scanAt, r.scanEvery = now.Add(r.opts.HoleWait), r.opts.HoleWait
		return true
	}
	if now.Before(r.checkAt) {
		return true
	}
	r.checkAt = now.Add(r.checkEvery)
	r.checkEvery = min(2*r.checkEvery, 5*time.Second)
	sealed := atomic.LoadUint32(ring.Control(v.Data, ring.OffSealed)) == 1
	alive, _, _ := fileutil.IsLocked(r.lockPath)
	if alive {
		r.scanned = false
		if !sealed {
			if now.Sub(r.emptySince) < r.opts.HoleWait {
				return true // a writer goroutine may still publish it
			}
			// Waiting at the end of what is written is the normal
			// idle state: look past it only when the writer woke this
			// reader for records elsewhere, and otherwise rarely.
			if !r.evidence || r.ctl == nil {
				if now.Before(r.scanAt) {
					return true
				}
				r.scanEvery = min(2*r.scanEvery, 10*time.Minute)
				r.scanAt = now.Add(r.scanEvery)
			}
		}
	}
	if r.scanned {
		return true // nothing followed, and no writer ran since
	}
	_, found, _ := ring.Resync(v.Data, r.pos, r.pos, r.nextSeq)
	// The scan touched the rest of the segment: give those pages back.
	page := fileutil.PageSize()
	from := (r.pos/page + 1) * page
	_ = fileutil.DontNeed(v.Data, from, len(v.Data)-from)
	if found || r.laterStarted(v.Num, true) {
		return false
	}
	r.scanned = !alive
	return true
}

// deadHole reports, for the static Reader at a zero length word in the last
// segment, whether it is a hole to skip: valid records follow it and no
// writer holds the log (one that died between reserving and publishing).
func (r *Reader) deadHole(v *rotate.View) bool {
	if alive, _, _ := fileutil.IsLocked(r.lockPath); alive {
		return false
	}
	_, found, _ := ring.Resync(v.Data, r.pos, r.pos, r.nextSeq)
	return found
}

// openNext opens the next segment; false at the end of the log (for now, in
// follow mode) or on error.
func (r *Reader) openNext() bool {
	var err error
	for tries := 0; ; tries++ {
		fi, ok := r.nextListed()
		if !ok {
			if !r.opts.Follow || r.relisted || !r.relist() {
				return false
			}
			continue
		}
		var v *rotate.View
		var z *zstream
		if fi.Compressed {
			v, z, err = openStream(fi)
		} else {
			v, err = rotate.OpenView(fi)
		}
		if errors.Is(err, fs.ErrNotExist) && tries < 8 {
			// Removed by retention, or compressed, since the listing.
			r.relist()
			continue
		}
		if errors.Is(err, ring.ErrShort) && !fi.Compressed && !r.laterStarted(fi.Num, false) {
			// The newest file, still being created and preallocated by
			// the writer's preparer: as good as not started.
			err = ring.ErrNotStarted
		}
		if errors.Is(err, ring.ErrNotStarted) && r.laterStarted(fi.Num, false) {
			// Later segments hold data. The writer activates segments
			// in order, so if this one is still zero now, it will never
			// start; if it started meanwhile, read it.
			if _, perr := peekHeader(fi); !errors.Is(perr, ring.ErrNotStarted) {
				continue
			}
			r.report(Damage{Path: fi.Path, From: 0, To: -1, Err: &ring.CorruptionError{Path: fi.Path, Offset: 0,
				Err: errors.New("segment header is zero but later segments hold data (zeroed, or never activated)")}})
			r.passed = fi.Num
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
			if errors.As(err, &ce) {
				r.report(Damage{Path: fi.Path, From: 0, To: -1, Err: err})
				r.passed = fi.Num
				continue
			}
			r.err = fmt.Errorf("tail: %w", err)
			return false
		}
		closeV := func() {
			v.Close()
			if z != nil {
				z.close()
			}
		}
		if !r.checkLog(v) {
			closeV()
			return false
		}
		first := v.Header.FirstSeq
		switch {
		case !r.started:
			r.started = true
			if r.opts.FromSeq > 0 && first > r.opts.FromSeq {
				r.report(Damage{Path: fi.Path, From: 0, To: 0, Lost: first - r.opts.FromSeq,
					Err: fmt.Errorf("records from %d on were asked for, the oldest segment starts at %d (removed by retention)", r.opts.FromSeq, first)})
			}
		case first > r.nextSeq:
			r.report(Damage{Path: fi.Path, From: 0, To: 0, Lost: first - r.nextSeq,
				Err: fmt.Errorf("segment starts at sequence %d, %d expected (records missing before it: removed by retention before they were read, or damaged)", first, r.nextSeq)})
		case first < r.nextSeq:
			r.report(Damage{Path: fi.Path, From: 0, To: -1,
				Err: &ring.CorruptionError{Path: fi.Path, Offset: 24, Err: fmt.Errorf("%w: segment starts at %d, the previous one ended at %d", ring.ErrSequence, first, r.nextSeq)}})
			closeV()
			r.passed = fi.Num
			continue
		}
		r.nextSeq = first
		r.view, r.z = v, z
		r.pos = ring.HeaderSize
		r.released = 0
		if r.opts.Follow && !v.Compressed {
			r.mapControl()
		}
		return true
	}
}

// checkLog checks that v belongs to the log being read.
func (r *Reader) checkLog(v *rotate.View) bool {
	id := v.Header.LogID
	if r.opts.LogID != ([16]byte{}) && id != r.opts.LogID {
		r.err = fmt.Errorf("tail: %s: %w (log id %x, expected %x): the directory holds a new log, or the cursor belongs to another one", v.Path, ErrOtherLog, id, r.opts.LogID)
		return false
	}
	if r.haveID && id != r.logID {
		r.err = fmt.Errorf("tail: %s: %w (log id %x, the earlier segments have %x)", v.Path, ErrOtherLog, id, r.logID)
		return false
	}
	r.logID, r.haveID = id, true
	return true
}

// nextListed returns the first listed segment after the ones passed.
func (r *Reader) nextListed() (rotate.FileInfo, bool) {
	for _, fi := range r.segs {
		if fi.Num > r.passed {
			return fi, true
		}
	}
	return rotate.FileInfo{}, false
}

// relist reads the directory again; false if that failed (Err says why).
func (r *Reader) relist() bool {
	r.relisted = true
	l, err := rotate.List(r.dir)
	if err != nil && !(r.opts.Follow && errors.Is(err, fs.ErrNotExist)) {
		r.err = fmt.Errorf("tail: %w", err)
		return false
	}
	r.segs = l.Segments
	return true
}

// laterStarted reports whether a segment numbered after cur holds data,
// listing the directory again first if relist is set.
func (r *Reader) laterStarted(cur uint64, relist bool) bool {
	if relist && !r.relist() {
		return false
	}
	for _, fi := range r.segs {
		if fi.Num <= cur {
			continue
		}
		_, err := peekHeader(fi)
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
	for i := len(r.segs) - 1; i >= 0; i-- {
		fi := r.segs[i]
		h, err := peekHeader(fi)
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

// mapControl maps the first page of the current segment writable, for the
// futex wait on its control words. A Reader without write access to the
// segment files goes without it and polls.
func (r *Reader) mapControl() {
	f, err := fileutil.OpenNoFollow(r.view.Path, true)
	if err != nil {
		return
	}
	defer f.Close()
	if b, err := fileutil.Map(f, fileutil.PageSize(), true); err == nil {
		r.ctl = b
	}
}

// release gives back the pages of the current mapping below off.
func (r *Reader) release(off int) {
	if r.view == nil || r.view.Compressed {
		return
	}
	_ = fileutil.DontNeed(r.view.Data, 0, off)
	r.released = off
}

// reportTruncated reports, once, that the current segment's file is shorter
// than its header says: someone truncated it, and what was after the cut is
// lost.
func (r *Reader) reportTruncated(v *rotate.View) {
	if !v.Truncated || r.truncReported == v.Num+1 {
		return
	}
	r.truncReported = v.Num + 1
	r.report(Damage{Path: v.Path, From: int64(len(v.Data)), To: -1,
		Err: &ring.CorruptionError{Path: v.Path, Offset: int64(len(v.Data)), Err: fmt.Errorf("%w: file truncated to %d bytes, its header says %d", ring.ErrShort, len(v.Data), v.Header.Size)}})
}

func (r *Reader) closeView() {
	if r.view != nil {
		r.passed = r.view.Num
		r.view.Close()
		r.view = nil
	}
	if r.z != nil {
		r.z.close()
		r.z = nil
	}
	if r.ctl != nil {
		fileutil.Unmap(r.ctl)
		r.ctl = nil
	}
}

func (r *Reader) report(d Damage) {
	r.damage = append(r.damage, d)
	r.lost += d.Lost
	if r.opts.OnDamage != nil {
		r.opts.OnDamage(d)
	}
}

func setPath(err error, path string) {
	var ce *ring.CorruptionError
	if errors.As(err, &ce) && ce.Path == "" {
		ce.Path = path
	}
}

// Wait waits, in follow mode, until more records may be there: it spins
// briefly, then yields, then sleeps on the segment's wake word, where the
// writer wakes it when it publishes a record (a futex on the shared mapping,
// which the writer pays for only while a reader sleeps), or a timeout
// (Options.WaitTimeout, growing to MaxIdleWait while the log is idle). It
// returns when ctx is done, with its error, at most MaxIdleWait late.
// Call Next after it: Wait may return without anything new.
func (r *Reader) Wait(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if r.err != nil || !r.opts.Follow {
		return nil
	}
	if r.view == nil || r.ctl == nil {
		// Between segments, or no writable control page: sleep, growing.
		d := min(time.Duration(50<<min(r.idle, 10))*time.Microsecond, r.idleTimeout())
		r.idle++
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
		r.idle = 0
	} else {
		r.idle++
	}
	return ctx.Err()
}

// futexWait is Wait on the current segment. It reports whether the length
// word at the position became non-zero.
func (r *Reader) futexWait() (ready bool) {
	defer func() {
		if p := recover(); p != nil {
			_ = fault.Error(p, r.view.Path) // Next meets the fault and reports it
			ready = true
		}
	}()
	defer fault.Catch()()
	data, pos := r.view.Data, r.pos
	if pos+ring.RecordHeaderSize > len(data) {
		return true
	}
	word := (*uint32)(ring.Control(data[pos:pos+4], 0))
	if r.idle == 0 {
		// Busy a moment ago: the next record is likely microseconds away.
		for i := 0; i < 200; i++ {
			if atomic.LoadUint32(word) != 0 {
				return true
			}
		}
		for i := 0; i < 20; i++ {
			runtime.Gosched()
			if atomic.LoadUint32(word) != 0 {
				return true
			}
		}
	}
	sleepers := ring.Control(r.ctl, ring.OffSleepers)
	wake := ring.Control(r.ctl, ring.OffWake)
	atomic.AddUint32(sleepers, 1)
	w := atomic.LoadUint32(wake)
	if atomic.LoadUint32(word) == 0 {
		fileutil.FutexWait(wake, w, r.idleTimeout())
	}
	atomic.AddUint32(sleepers, ^uint32(0))
	if atomic.LoadUint32(word) != 0 {
		return true
	}
	if atomic.LoadUint32(wake) != w {
		// Woken, yet nothing here: the writer published elsewhere
		// (a later record past one still being written, or a roll).
		r.evidence = true
		return true
	}
	return false
}

// idleTimeout is how long Wait sleeps without being woken: WaitTimeout at
// first, doubling while nothing comes, up to MaxIdleWait, so that an idle
// follower costs next to no CPU.
func (r *Reader) idleTimeout() time.Duration {
	return min(r.opts.WaitTimeout<<min(r.idle, 8), max(MaxIdleWait, r.opts.WaitTimeout))
}

// Record returns the current record (after Next returned true).
func (r *Reader) Record() Record { return r.rec }

// Err returns the error that stopped the Reader, or nil at the end of the
// log (or, in follow mode, when there is no data yet). Damage that the
// Reader skipped is not an error: see Damage.
func (r *Reader) Err() error { return r.err }

// Damage returns the damaged ranges met so far.
func (r *Reader) Damage() []Damage { return r.damage }

// Lost returns the number of records the damage met so far cost.
func (r *Reader) Lost() uint64 { return r.lost }

// NextSeq returns the sequence number of the record the Reader expects next
// (0 before it read any segment).
func (r *Reader) NextSeq() uint64 { return r.nextSeq }

// LogID returns the identity of the log, once a segment has been read.
func (r *Reader) LogID() ([16]byte, bool) { return r.logID, r.haveID }

// Close releases the current mapping.
func (r *Reader) Close() error {
	r.closeView()
	r.atEnd = true
	return nil
}
