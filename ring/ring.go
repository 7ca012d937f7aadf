package ring

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/mmaplog/mmaplog/internal/fault"
)

// The appender's state word packs the number of records reserved so far
// (high bits) and the next free offset (low bits), so that one atomic add
// reserves both the space and the sequence number.
const (
	offBits  = 36
	offMask  = 1<<offBits - 1
	idxShift = offBits
	idxOne   = 1 << idxShift
)

// Ring appends records to a region without locks. Any number of goroutines
// may call Append at once. The zero value is not usable; see New.
type Ring struct {
	_     [64]byte // keep the hot words on a cache line of their own
	state atomic.Uint64
	// done counts the Appends that finished with the region, but only
	// while counted: when it equals the sealed count, no goroutine touches
	// the region any more. Without a sync hook and with a control mapping
	// (SetControl), WaitReleased proves the same by walking the length
	// words, and Append pays no second atomic.
	done atomic.Uint64
	_    [48]byte

	buf      []byte
	ctl      []byte // where Append finds the wake words: buf, or a mapping of its first page (SetControl)
	limit    uint64 // len(buf)
	start    int    // offset at which this Ring started appending
	firstSeq uint64
	counted  bool // Appends count themselves in done
	walked   int  // WaitReleased found every record below this published

	// Hooks run inside Append while the region is certain to be mapped.
	wake func(word *uint32)       // wakes readers sleeping on OffWake; nil: none
	sync func(off, end int) error // flushes a published record; nil: none
	// wakeClock, if set, gives the time (Unix ns) to compare with the
	// readers' wake deadline instead of the record's time stamp: for a
	// writer whose record times are not the real time (a test clock).
	wakeClock func() int64
	// wokeFor is the deadline (OffWakeUntil) the last wake-up answered:
	// every reader that slept under it was woken, and a reader that
	// sleeps again raises the deadline first (ArmWake), so no record
	// wakes anyone until the word holds another value.
	wokeFor atomic.Int64

	sealed  atomic.Bool
	end     int    // where data ends; valid once sealed
	count   uint64 // records in the region; valid once sealed
	padded  bool   // a padding record closes the region
	sealErr error  // why the ring was sealed without a padding record
}

// New returns a Ring appending to buf (the whole region, header included) at
// offset start. firstSeq is the region's first sequence number and count the
// number of sequence numbers already used in the region (records, and holes
// that recovery turned into padding), so that the next record gets sequence
// number firstSeq+count. start must be aligned and at least HeaderSize.
func New(buf []byte, start int, firstSeq, count uint64) (*Ring, error) {
	if len(buf) > MaxRegionSize || len(buf) < HeaderSize+RecordHeaderSize {
		return nil, fmt.Errorf("ring: region of %d bytes (want %d to %d)", len(buf), HeaderSize+RecordHeaderSize, MaxRegionSize)
	}
	if start < HeaderSize || start%Align != 0 || start > len(buf) {
		return nil, fmt.Errorf("ring: bad start offset %d", start)
	}
	r := &Ring{buf: buf, ctl: buf, limit: uint64(len(buf)), start: start, firstSeq: firstSeq, counted: true, walked: start}
	r.state.Store(count<<idxShift | uint64(start))
	r.done.Store(count)
	return r, nil
}

// MaxPayloadFor returns the largest payload that fits an empty region of the
// given size.
func MaxPayloadFor(regionSize int) int {
	n := regionSize - HeaderSize - RecordHeaderSize
	n &^= Align - 1
	if n > MaxPayload {
		n = MaxPayload
	}
	return n
}

// SetHooks installs the functions Append calls after publishing a record,
// while the region is certain to be mapped (it can be unmapped only once
// WaitReleased returns): wake is called with the OffWake word, already
// incremented, when the record's time stamp lies before the deadline that
// sleeping readers raised in OffWakeUntil (WakeDue); sync (if not nil)
// flushes [off, end). Call SetHooks before the first Append.
func (r *Ring) SetHooks(wake func(word *uint32), sync func(off, end int) error) {
	r.wake, r.sync = wake, sync
	r.counted = sync != nil || &r.ctl[0] == &r.buf[0]
}

// SetControl makes Append read and wake the wake words (OffWake,
// OffWakeUntil) through ctl, a second mapping of the region's first page,
// instead of through the region. After it stores a record's length word an
// Append then touches nothing but ctl (unless a sync hook is set), so that
// once WaitReleased has seen every record published the region may be
// unmapped, although an Append may not have returned yet. ctl must stay
// mapped for as long as such an Append may run: a mapping that is later
// moved (MAP_FIXED, never unmapped) to the first page of another region, or
// to a page of zeros, costs a late Append at most a needless wake-up of that
// region's readers. Call SetControl before the first Append; ctl holds at
// least HeaderSize bytes.
func (r *Ring) SetControl(ctl []byte) {
	if len(ctl) < HeaderSize {
		panic(fmt.Sprintf("ring: control mapping of %d bytes", len(ctl)))
	}
	r.ctl = ctl
	r.counted = r.sync != nil
}

// SetWakeClock makes Append compare the readers' wake deadline with now()
// instead of each record's time stamp, for writers whose time stamps are not
// the real time. It reads that clock only while a deadline is set.
func (r *Ring) SetWakeClock(now func() int64) { r.wakeClock = now }

// Pos is where Append put a record.
type Pos struct {
	Seq      uint64 // the record's sequence number
	Off, End int    // the record occupies [Off, End) of the region
}

// Append copies p into the region as one record with the given time and type
// and returns its sequence number and place. It returns ErrFull when the region has no
// room for it (the caller moves to the next region and tries again there),
// and ErrTooLarge when no region of this size could ever hold it. p is not
// retained.
//
// A memory fault while writing (the mapped file was truncated by someone
// else) is returned as an error wrapping fault.ErrFault instead of crashing.
// An error from the sync hook is returned with the record's position: the
// record is written, but not flushed.
func (r *Ring) Append(typ uint8, ts int64, p []byte) (Pos, error) {
	n := len(p)
	size := uint64(RecordSize(n))
	if n > MaxPayload || size > r.limit-HeaderSize {
		return Pos{}, ErrTooLarge
	}
	st := r.state.Add(idxOne | size)
	end := st & offMask
	off := end - size
	seq := r.firstSeq + st>>idxShift - 1
	if end <= r.limit {
		pos := Pos{Seq: seq, Off: int(off), End: int(end)}
		err := r.publish(pos, ts, typ, p)
		if r.counted {
			r.done.Add(1) // from here on this goroutine leaves the region alone
		}
		return pos, err
	}
	if off <= r.limit {
		// This reservation is the first that does not fit: close the
		// region. Every earlier reservation fits, every later one is past
		// the end, so this goroutine alone writes here.
		if r.limit-off >= RecordHeaderSize && r.pad(int(off), seq, ts) == nil {
			r.padded = true
		}
		r.end = int(off)
		r.count = seq - r.firstSeq
		r.sealed.Store(true)
	}
	return Pos{}, ErrFull
}

// publish writes and publishes the record at pos, wakes sleeping readers and
// runs the sync hook, turning a memory fault into an error. It is
// fault.Guard written out, without its closure and with recover called only
// when something panicked: the append path's guard costs the two calls that
// set and restore the goroutine's panic-on-fault flag, and one defer.
func (r *Ring) publish(pos Pos, ts int64, typ uint8, p []byte) (err error) {
	old := debug.SetPanicOnFault(true)
	returned := false
	defer func() {
		if !old {
			debug.SetPanicOnFault(false)
		}
		if !returned {
			if x := recover(); x != nil {
				err = fault.Error(x, "") // any other panic goes on unwinding
			}
		}
	}()
	PutRecord(r.buf[pos.Off:pos.End:pos.End], pos.Seq, ts, typ, p)
	r.wakeIfDue(r.ctl, ts)
	if r.sync != nil {
		err = r.sync(pos.Off, pos.End)
	}
	returned = true
	return err
}

// wakeIfDue wakes the readers through the wake hook if a record stamped ts
// is due to wake them: the one extra load on the append path while nobody
// sleeps. One wake-up answers each value of the deadline: the readers it
// woke are awake until they arm it again, which changes it, so the records
// written meanwhile cost no system call.
func (r *Ring) wakeIfDue(ctl []byte, ts int64) {
	until := WakeUntil(ctl).Load()
	if until == 0 || r.wake == nil {
		return
	}
	woke := r.wokeFor.Load()
	if until == woke {
		return
	}
	if r.wakeClock != nil {
		ts = r.wakeClock()
	}
	if WakeDue(until, ts) && r.wokeFor.CompareAndSwap(woke, until) {
		w := WakeWord(ctl)
		atomic.AddUint32(w, 1)
		r.wake(w)
	}
}

// pad writes the padding that closes the region at off, turning a memory
// fault into an error.
func (r *Ring) pad(off int, seq uint64, ts int64) error {
	return fault.Guard("", func() error {
		PutPadding(r.buf[off:r.limit], seq, ts)
		return nil
	})
}

// WakeReaders wakes the readers sleeping on the region's OffWake word, if
// their deadline lies after now (Unix ns), through the wake hook. It goes
// through the region itself, not the control mapping: call it while the
// region is mapped. The writer calls it when it rolls over to the next
// region, so that readers waiting at the end of this one move on, and once
// WaitReleased returned, for the records published after that.
func (r *Ring) WakeReaders(now int64) {
	_ = fault.Guard("", func() error {
		r.wakeIfDue(r.buf, now)
		return nil
	})
}

// Seal stops appending: every later Append returns ErrFull. With pad set a
// padding record closes the region (as when it fills up), so that readers
// move on to the next one; without it the region stays open for a later
// writer to continue it. It returns where the data ends (the end of the last
// reservation, or the start of the padding that an Append wrote when the
// region filled up) and whether a padding record closes the region. Records
// reserved before Seal may still be being written; WaitReleased waits for
// them.
func (r *Ring) Seal(pad bool, ts int64) (end int, padded bool) {
	const bump = 1 << (offBits - 1) // far past any region end
	st := r.state.Add(bump)
	prev := (st - bump) & offMask
	if prev <= r.limit {
		r.end = int(prev)
		r.count = st >> idxShift
		if pad && r.limit-prev >= RecordHeaderSize && r.pad(int(prev), r.firstSeq+r.count, ts) == nil {
			r.padded = true
		}
		r.sealed.Store(true)
		return r.end, r.padded
	}
	// An Append crossed the end first and is sealing the region.
	for i := 0; !r.sealed.Load(); i++ {
		backoff(i)
	}
	return r.end, r.padded
}

// Sealed reports whether the region is closed for appending.
func (r *Ring) Sealed() bool { return r.sealed.Load() }

// WaitSealed waits until the region is sealed (by the Append that crossed its
// end, or by Seal) and returns where the data ends, the number of sequence
// numbers used, and whether a padding record closes the region.
func (r *Ring) WaitSealed() (end int, count uint64, padded bool) {
	for i := 0; !r.sealed.Load(); i++ {
		backoff(i)
	}
	return r.end, r.count, r.padded
}

// Reserved returns the end of the space reserved so far (never past the end
// of the region). Every Append that returned before the call lies below it.
func (r *Ring) Reserved() int {
	e := r.state.Load() & offMask
	if e > r.limit {
		e = r.limit
	}
	return int(e)
}

// Start returns the offset at which this Ring started appending.
func (r *Ring) Start() int { return r.start }

// FirstSeq returns the region's first sequence number.
func (r *Ring) FirstSeq() uint64 { return r.firstSeq }

// NextSeq returns the sequence number the next record appended to this ring
// would get if it fits.
func (r *Ring) NextSeq() uint64 { return r.firstSeq + r.state.Load()>>idxShift }

// Bytes returns the region.
func (r *Ring) Bytes() []byte { return r.buf }

// WaitReleased waits, after the ring was sealed, until no Append touches the
// region any more: then every record reserved in it is published, and the
// region may be unmapped. Counted (a sync hook, or no control mapping), it
// waits for every Append to return. Otherwise it walks the length words of
// the records reserved since New (each reservation is exactly one record)
// until each is published: after that store an Append touches only the
// control mapping (SetControl). It gives up after timeout with an error: a
// goroutine stopped for that long between reserving and publishing, or
// bytes that are not the records reserved (another process wrote the file);
// the region must then stay mapped.
func (r *Ring) WaitReleased(timeout time.Duration) error {
	end, count, _ := r.WaitSealed()
	if r.counted {
		var deadline time.Time
		for i := 0; r.done.Load() < count; i++ {
			if i == 64 {
				deadline = time.Now().Add(timeout)
			} else if i > 64 && time.Now().After(deadline) {
				return fmt.Errorf("%d record(s) reserved but not released after %v", count-r.done.Load(), timeout)
			}
			backoff(i)
		}
		return nil
	}
	var werr error
	if err := fault.Guard("", func() error {
		werr = r.walkPublished(end, count, timeout)
		return nil
	}); err != nil {
		return err
	}
	return werr
}

// walkPublished walks the length words of the records reserved between
// where it stopped last time and end, waiting at each one not published
// yet, and checks that they are the count records reserved since New.
func (r *Ring) walkPublished(end int, count uint64, timeout time.Duration) error {
	var deadline time.Time
	off, i := r.walked, 0
	n := r.done.Load() // records found published so far (and those before New)
	for off < end {
		lw := atomic.LoadUint32(word32(r.buf, off))
		if lw == 0 {
			if i == 64 {
				deadline = time.Now().Add(timeout)
			} else if i > 64 && time.Now().After(deadline) {
				r.walked = off
				r.done.Store(n)
				return fmt.Errorf("the record reserved at offset %d is not published after %v", off, timeout)
			}
			backoff(i)
			i++
			continue
		}
		i = 0
		size := RecordSize(int(lw & lengthMask))
		if lw&Committed == 0 || lw&Padding != 0 || size > end-off {
			r.walked = off
			r.done.Store(n)
			return fmt.Errorf("offset %d holds length word %#08x where a record was reserved (did another process write the file?)", off, lw)
		}
		off += size
		n++
	}
	r.walked = off
	r.done.Store(n)
	if n != count {
		return fmt.Errorf("%d records where %d were reserved (did another process write the file?)", n, count)
	}
	return nil
}

// backoff spins briefly, then yields, then sleeps up to a millisecond.
func backoff(i int) {
	switch {
	case i < 16:
		// spin
	case i < 64:
		runtime.Gosched()
	default:
		d := time.Duration(i-63) * 10 * time.Microsecond
		if d > time.Millisecond {
			d = time.Millisecond
		}
		time.Sleep(d)
	}
}
