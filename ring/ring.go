package ring

import (
	"fmt"
	"runtime"
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
	// done counts reservations whose owner called Release: when it equals
	// the sealed count, no goroutine touches the region any more. It shares
	// the state word's cache line, which the appending core already owns.
	done atomic.Uint64
	_    [48]byte

	buf      []byte
	limit    uint64 // len(buf)
	start    int    // offset at which this Ring started appending
	firstSeq uint64

	// Hooks run inside Append while the region is certain to be mapped.
	wake func(word *uint32)       // wakes readers sleeping on OffWake; nil: none
	sync func(off, end int) error // flushes a published record; nil: none
	// wakeClock, if set, gives the time (Unix ns) to compare with the
	// readers' wake deadline instead of the record's time stamp: for a
	// writer whose record times are not the real time (a test clock).
	wakeClock func() int64

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
	r := &Ring{buf: buf, limit: uint64(len(buf)), start: start, firstSeq: firstSeq}
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
		r.done.Add(1) // from here on this goroutine leaves the region alone
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
// runs the sync hook, turning a memory fault into an error.
func (r *Ring) publish(pos Pos, ts int64, typ uint8, p []byte) error {
	return fault.Guard("", func() error {
		PutRecord(r.buf[pos.Off:pos.End:pos.End], pos.Seq, ts, typ, p)
		r.wakeIfDue(ts)
		if r.sync != nil {
			return r.sync(pos.Off, pos.End)
		}
		return nil
	})
}

// wakeIfDue wakes the readers through the wake hook if a record stamped ts
// is due to wake them: the one extra load on the append path while nobody
// sleeps.
func (r *Ring) wakeIfDue(ts int64) {
	until := WakeUntil(r.buf).Load()
	if until == 0 || r.wake == nil {
		return
	}
	if r.wakeClock != nil {
		ts = r.wakeClock()
	}
	if WakeDue(until, ts) {
		w := WakeWord(r.buf)
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
// their deadline lies after now (Unix ns), through the wake hook. The writer
// calls it when it rolls over to the next region, so that readers waiting at
// the end of this one move on.
func (r *Ring) WakeReaders(now int64) {
	_ = fault.Guard("", func() error {
		r.wakeIfDue(now)
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

// WaitReleased waits, after the ring was sealed, until every Append that
// reserved space in the region has finished with it: then every record is
// published and no goroutine touches the region any more, so it may be
// unmapped. It gives up after
// timeout with an error: a goroutine stopped for that long between
// reserving and releasing (the region must then stay mapped).
func (r *Ring) WaitReleased(timeout time.Duration) error {
	_, count, _ := r.WaitSealed()
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
