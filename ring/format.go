package ring

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"sync/atomic"
	"unsafe"
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

// Header field offsets (see docs/FORMAT.md, "Segment header").
const (
	offMagic    = 0
	offVersion  = 8
	offHdrSize  = 10
	offFlags    = 12
	offSegment  = 16
	offFirstSeq = 24
	offCreated  = 32
	offSize     = 40
	offLogID    = 48
	offReserved = 64
	offHdrCRC   = 68
	// crcEnd is where the CRC-covered part of the header ends.
	crcEnd = 68

	// The control area (72..127) is shared mutable state, outside the CRC.

	// OffWake is a 32-bit word that the writer increments (and futex-wakes)
	// when readers sleep on it.
	OffWake = 72
	// OffSleepers counts readers sleeping on OffWake.
	OffSleepers = 76
	// OffSealed is set to 1 once every record of a rolled segment is known
	// to be published; recovery need not scan such a segment.
	OffSealed = 80
)

// Magic is the first 8 bytes of every region, stored last when a region is
// activated so that a half-initialised header is never mistaken for one.
var Magic = [8]byte{'M', 'M', 'A', 'P', 'L', 'O', 'G', 0}

var magicWord = binary.LittleEndian.Uint64(Magic[:])

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

// PutHeader writes h into the first HeaderSize bytes of b and then stores the
// magic atomically, so that a concurrent reader sees either a zero magic
// (not started) or the whole header. Version is always set to Version.
func PutHeader(b []byte, h Header) {
	_ = b[HeaderSize-1]
	binary.LittleEndian.PutUint16(b[offVersion:], Version)
	binary.LittleEndian.PutUint16(b[offHdrSize:], HeaderSize)
	binary.LittleEndian.PutUint32(b[offFlags:], 0)
	binary.LittleEndian.PutUint64(b[offSegment:], h.Segment)
	binary.LittleEndian.PutUint64(b[offFirstSeq:], h.FirstSeq)
	binary.LittleEndian.PutUint64(b[offCreated:], uint64(h.Created))
	binary.LittleEndian.PutUint64(b[offSize:], h.Size)
	copy(b[offLogID:offLogID+16], h.LogID[:])
	binary.LittleEndian.PutUint32(b[offReserved:], 0)
	var mg [8]byte
	copy(mg[:], Magic[:])
	c := crc32.Update(0, castagnoli, mg[:])
	c = crc32.Update(c, castagnoli, b[8:crcEnd])
	binary.LittleEndian.PutUint32(b[offHdrCRC:], c)
	atomic.StoreUint64(word64(b, offMagic), magicWord)
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
	m := atomic.LoadUint64(word64(b, offMagic))
	if m == 0 {
		return h, ErrNotStarted
	}
	if m != magicWord {
		return h, &CorruptionError{Offset: 0, Err: fmt.Errorf("%w (found %q)", ErrBadMagic, b[:8])}
	}
	h.Version = binary.LittleEndian.Uint16(b[offVersion:])
	if h.Version != Version {
		return h, &CorruptionError{Offset: offVersion, Err: fmt.Errorf("%w %d (this build reads version %d)", ErrVersion, h.Version, Version)}
	}
	c := crc32.Update(0, castagnoli, b[0:crcEnd])
	if want := binary.LittleEndian.Uint32(b[offHdrCRC:]); c != want {
		return h, &CorruptionError{Offset: offHdrCRC, Err: fmt.Errorf("header %w (stored %#08x, computed %#08x)", ErrChecksum, want, c)}
	}
	if hs := binary.LittleEndian.Uint16(b[offHdrSize:]); hs != HeaderSize {
		return h, &CorruptionError{Offset: offHdrSize, Err: fmt.Errorf("header size %d, want %d", hs, HeaderSize)}
	}
	h.Segment = binary.LittleEndian.Uint64(b[offSegment:])
	h.FirstSeq = binary.LittleEndian.Uint64(b[offFirstSeq:])
	h.Created = int64(binary.LittleEndian.Uint64(b[offCreated:]))
	h.Size = binary.LittleEndian.Uint64(b[offSize:])
	copy(h.LogID[:], b[offLogID:offLogID+16])
	if h.Size < HeaderSize || h.Size > MaxRegionSize {
		return h, &CorruptionError{Offset: offSize, Err: fmt.Errorf("%w: region size %d", ErrBadLength, h.Size)}
	}
	if checkSize && h.Size != uint64(len(b)) {
		return h, &CorruptionError{Offset: offSize, Err: fmt.Errorf("%w: header says %d bytes, region has %d (truncated or extended by someone else?)", ErrShort, h.Size, len(b))}
	}
	return h, nil
}

// Control returns a pointer to one of the 32-bit words of the control area
// of a region (OffWake, OffSleepers, OffSealed), for atomic access.
func Control(b []byte, off int) *uint32 {
	_ = b[off+3]
	return (*uint32)(unsafe.Pointer(&b[off]))
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
