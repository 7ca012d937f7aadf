package ring

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/mmaplog/mmaplog/internal/header"
)

// Format constants. docs/FORMAT.md describes each field.
const (
	// Version is the format version this package writes and reads.
	Version = 1
	// HeaderSize is the size of the region header; the first record starts
	// at this offset.
	HeaderSize = 128
	// RecordHeaderSize is the size of a record's fixed header; the payload
	// follows it. It is also the smallest possible record.
	RecordHeaderSize = 32
	// Align is the alignment of every record's offset and size.
	Align = 8
	// MaxPayload is the largest payload the length word can describe.
	MaxPayload = 1<<30 - 1

	// Committed is set in the length word of every written record.
	Committed = 1 << 31
	// Padding is set in the length word of a padding record, which readers
	// skip: it closes a region or covers a repaired hole.
	Padding = 1 << 30
	// lengthMask extracts the payload length from the length word.
	lengthMask = 1<<30 - 1
)

// Header field offsets (see docs/FORMAT.md, "Segment header"). Code outside
// this package reaches the fields through Header (ParseHeader, PutHeader) and
// the control-area accessors below; the offsets are exported to say where a
// damaged field is (CorruptionError.Offset).
const (
	OffMagic      = header.OffMagic
	OffVersion    = header.OffVersion
	OffHeaderSize = header.OffSize
	OffFlags      = 12
	OffSegment    = 16
	OffFirstSeq   = 24
	OffCreated    = 32
	OffSize       = 40
	OffLogID      = 48
	offReserved   = 64
	OffHeaderCRC  = 68

	// The control area (72..127) is shared mutable state, outside the CRC,
	// reached with the accessors WakeWord, WakeUntil, LoadState and
	// StoreState.

	// OffWake is a 32-bit futex word that the writer increments and wakes
	// when a reader asked to be woken (OffWakeUntil).
	OffWake = 72
	// offRetired (76) was a count of sleeping readers in earlier versions;
	// it is no longer read or written.
	offRetired = 76
	// OffState is the segment's state word (a State).
	OffState = 80
	// OffWakeUntil is a 64-bit "wake me until" deadline (Unix ns): readers
	// about to sleep on OffWake raise it, and the writer wakes them for
	// every record stamped before it.
	OffWakeUntil = 88
)

// State is the state word of a segment (OffState), set by the writer.
type State uint32

const (
	// StateOpen: a writer appends to the segment, or did until it crashed.
	StateOpen State = 0
	// StateSealed: the segment was rolled and every record reserved in it
	// is published; nothing will ever be written to it again.
	StateSealed State = 1
	// StateClosed: the writer closed the log cleanly with this segment
	// active: every record reserved in it is published. A later writer
	// sets it back to StateOpen before it appends.
	StateClosed State = 2
)

func (s State) String() string {
	switch s {
	case StateOpen:
		return "open"
	case StateSealed:
		return "sealed"
	case StateClosed:
		return "closed"
	}
	return fmt.Sprintf("State(%d)", uint32(s))
}

// Finished reports whether every record reserved in a segment in this state
// is published: bytes that are not a valid record there are damage, never
// a write in progress or one that a crashed writer left unfinished.
func (s State) Finished() bool { return s == StateSealed || s == StateClosed }

// LoadState returns the state word of the region header in b.
func LoadState(b []byte) State { return State(atomic.LoadUint32(word32(b, OffState))) }

// StoreState sets the state word of the region header in b.
func StoreState(b []byte, s State) { atomic.StoreUint32(word32(b, OffState), uint32(s)) }

// WakeWord returns the futex word of the region header in b (OffWake).
func WakeWord(b []byte) *uint32 { return word32(b, OffWake) }

// WakeUntil returns the "wake me until" deadline word of the region header
// in b (OffWakeUntil), in Unix nanoseconds; 0 means no reader asked.
func WakeUntil(b []byte) *atomic.Int64 {
	return (*atomic.Int64)(unsafe.Pointer(word64(b, OffWakeUntil)))
}

// MaxWakeArm is the longest a reader may ask to be woken for: it raises the
// deadline to at most its clock plus this much. A reader killed while it
// sleeps therefore costs the writer wake-ups for at most this long.
const MaxWakeArm = 100 * time.Millisecond

// wakeHorizon bounds how far past a record's time stamp a deadline may lie
// and still be honoured: a deadline further ahead was set by a clock that
// has since stepped back, and is replaced by the next reader that arms.
const wakeHorizon = int64(10 * MaxWakeArm)

// ArmWake raises the deadline word of the region header in b to until
// (Unix ns, at most now+MaxWakeArm), or where it is later already, by a
// nanosecond: every arming changes the word, since the writer wakes the
// readers once for each value it holds; a deadline implausibly far past now
// is replaced. A reader calls it before it sleeps on WakeWord, then checks
// once more for a record before sleeping.
func ArmWake(b []byte, now, until int64) {
	until = min(until, now+int64(MaxWakeArm))
	w := WakeUntil(b)
	for {
		cur := w.Load()
		next := until
		if cur >= until && cur-now <= wakeHorizon {
			next = cur + 1
		}
		if w.CompareAndSwap(cur, next) {
			return
		}
	}
}

// WakeDue reports whether a record stamped ts (Unix ns) must wake the readers
// of a region whose deadline word holds until.
func WakeDue(until, ts int64) bool { return until != 0 && ts < until && until-ts <= wakeHorizon }

// ClearControl zeroes the control area of a copy of a region header, but
// for a state word of state: what a compressed copy of a segment holds,
// since readers may write a live segment's control area at any moment.
func ClearControl(b []byte, state State) {
	clear(b[OffWake:HeaderSize])
	StoreState(b, state)
}

// Disarm clears the deadline word: recovery does it, so that a reader that
// died asleep costs a new writer nothing.
func Disarm(b []byte) { WakeUntil(b).Store(0) }

// Magic is the first 8 bytes of every region, stored last when a region is
// activated so that a half-initialised header is never mistaken for one.
var Magic = [8]byte{'M', 'M', 'A', 'P', 'L', 'O', 'G', 0}

// Sentinel causes, wrapped in a *CorruptionError or returned as they are.
var (
	ErrBadMagic   = errors.New("bad magic: not an mmaplog segment")
	ErrVersion    = errors.New("unsupported format version")
	ErrChecksum   = errors.New("checksum mismatch")
	ErrBadLength  = errors.New("record length out of bounds")
	ErrBadFlags   = errors.New("invalid record flags")
	ErrShort      = errors.New("region too short")
	ErrNotStarted = errors.New("segment not activated yet (header is zero)")
	ErrSequence   = errors.New("sequence number out of order")
	// ErrPowerLoss is the cause of damage in a log whose last writer ran
	// before the machine restarted (a power loss, a kernel crash) and did
	// not close it: zeros where records were reserved are records whose
	// pages never reached the disk, lost whether or not their Write
	// returned, not writes that never completed.
	ErrPowerLoss = errors.New("the machine went down since the log was last written (power loss or kernel crash), before all of it was flushed")
	// ErrTooLarge is returned by Append for a payload that can never fit.
	ErrTooLarge = errors.New("record too large")
	// ErrFull is returned by Append when the region has no room left for
	// the record; the caller moves on to the next region.
	ErrFull = errors.New("region full")
)

// CorruptionError locates damage: the region (a file path, set by whoever
// mapped it), the byte offset in it, and the cause.
type CorruptionError struct {
	Path   string
	Offset int64
	Err    error
}

func (e *CorruptionError) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("corruption at offset %d: %v", e.Offset, e.Err)
	}
	return fmt.Sprintf("%s: corruption at offset %d: %v", e.Path, e.Offset, e.Err)
}

func (e *CorruptionError) Unwrap() error { return e.Err }

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Header is the decoded, CRC-checked part of a region header.
type Header struct {
	Version  uint16
	Segment  uint64   // segment number, increasing by one per segment
	FirstSeq uint64   // sequence number of the segment's first record
	Created  int64    // activation time, Unix nanoseconds
	Size     uint64   // size of the whole region in bytes
	LogID    [16]byte // identity of the log, the same in all its segments
}

// segmentHeader is the shape the segment header shares with other mapped
// files' headers: magic, version, header size and CRC.
var segmentHeader = header.Format{Magic: Magic, Version: Version, Size: HeaderSize, CRCFrom: OffMagic, CRCAt: OffHeaderCRC}

// PutHeader writes h into the first HeaderSize bytes of b and then stores the
// magic atomically, so that a concurrent reader sees either a zero magic
// (not started) or the whole header. Version is always set to Version.
func PutHeader(b []byte, h Header) {
	_ = b[HeaderSize-1]
	binary.LittleEndian.PutUint32(b[OffFlags:], 0)
	binary.LittleEndian.PutUint64(b[OffSegment:], h.Segment)
	binary.LittleEndian.PutUint64(b[OffFirstSeq:], h.FirstSeq)
	binary.LittleEndian.PutUint64(b[OffCreated:], uint64(h.Created))
	binary.LittleEndian.PutUint64(b[OffSize:], h.Size)
	copy(b[OffLogID:OffLogID+16], h.LogID[:])
	binary.LittleEndian.PutUint32(b[offReserved:], 0)
	segmentHeader.Seal(b)
	segmentHeader.Publish(b)
}

// ParseHeader decodes and validates the header at the start of b. It returns
// ErrNotStarted for an all-zero magic (a preallocated segment that the writer
// has not activated yet), and a *CorruptionError for anything else wrong.
// It checks that the header's size field matches len(b) only when
// checkSize is set (a compressed segment holds fewer bytes than its size).
func ParseHeader(b []byte, checkSize bool) (Header, error) {
	var h Header
	if len(b) < HeaderSize {
		return h, &CorruptionError{Offset: 0, Err: fmt.Errorf("%w: %d bytes, a header needs %d", ErrShort, len(b), HeaderSize)}
	}
	switch segmentHeader.Load(b) {
	case header.Absent:
		return h, ErrNotStarted
	case header.Foreign:
		return h, &CorruptionError{Offset: 0, Err: fmt.Errorf("%w (found %q)", ErrBadMagic, b[:8])}
	}
	h.Version = header.VersionOf(b)
	if h.Version != Version {
		return h, &CorruptionError{Offset: OffVersion, Err: fmt.Errorf("%w %d (this build reads version %d)", ErrVersion, h.Version, Version)}
	}
	if want, c := segmentHeader.CRC(b); c != want {
		return h, &CorruptionError{Offset: OffHeaderCRC, Err: fmt.Errorf("header %w (stored %#08x, computed %#08x)", ErrChecksum, want, c)}
	}
	if hs := header.SizeOf(b); hs != HeaderSize {
		return h, &CorruptionError{Offset: OffHeaderSize, Err: fmt.Errorf("header size %d, want %d", hs, HeaderSize)}
	}
	h.Segment = binary.LittleEndian.Uint64(b[OffSegment:])
	h.FirstSeq = binary.LittleEndian.Uint64(b[OffFirstSeq:])
	h.Created = int64(binary.LittleEndian.Uint64(b[OffCreated:]))
	h.Size = binary.LittleEndian.Uint64(b[OffSize:])
	copy(h.LogID[:], b[OffLogID:OffLogID+16])
	if h.Size < HeaderSize || h.Size > MaxRegionSize {
		return h, &CorruptionError{Offset: OffSize, Err: fmt.Errorf("%w: region size %d", ErrBadLength, h.Size)}
	}
	if checkSize && h.Size != uint64(len(b)) {
		return h, &CorruptionError{Offset: OffSize, Err: fmt.Errorf("%w: header says %d bytes, region has %d (truncated or extended by someone else?)", ErrShort, h.Size, len(b))}
	}
	return h, nil
}

func word64(b []byte, off int) *uint64 {
	_ = b[off+7]
	return (*uint64)(unsafe.Pointer(&b[off]))
}

func word32(b []byte, off int) *uint32 {
	_ = b[off+3]
	return (*uint32)(unsafe.Pointer(&b[off]))
}

// RecordSize returns the aligned size a record with an n-byte payload takes.
func RecordSize(n int) int {
	return (RecordHeaderSize + n + Align - 1) &^ (Align - 1)
}

// CheckSegmentHeader is the one validator of a segment's header: it parses
// the header at the start of b (ParseHeader), checks that it names segment
// num (the number in the file's name), and compares its size with n, the
// bytes the segment's file holds (n < 0 for a compressed segment, whose
// length its reader checks as it decompresses). A plain file shorter than
// its header says is reported as truncated, with a nil error: what is left
// is still readable. A longer one is an error. Errors are *CorruptionError
// without Path, or ErrNotStarted.
func CheckSegmentHeader(b []byte, num uint64, n int64) (h Header, truncated bool, err error) {
	h, err = ParseHeader(b, false)
	if err != nil {
		return h, false, err
	}
	if h.Segment != num {
		return h, false, &CorruptionError{Offset: OffSegment, Err: fmt.Errorf("header names segment %d, the file name says %d (renamed or copied?)", h.Segment, num)}
	}
	if n >= 0 && uint64(n) > h.Size {
		return h, false, &CorruptionError{Offset: OffSize, Err: fmt.Errorf("%w: header says %d bytes, the file has %d (extended by someone else?)", ErrBadLength, h.Size, n)}
	}
	return h, n >= 0 && uint64(n) < h.Size, nil
}
