// Package header is the codec of the fixed-size headers at the start of
// mmaplog's mapped files: ring segments (docs/FORMAT.md, "Segment header")
// and shared-memory regions (docs/COUNTERS.md, "Region header"). Both have
// the same shape, which this package reads and writes; each format lays out
// its own fields after it and says what a mismatch means:
//
//	0        8         10          12
//	+--------+---------+-----------+-- format's fields --+-------+
//	| magic  | version | hdr size  |        ...          | CRC   |
//	| 8 B    | u16     | u16       |                     | u32   |
//	+--------+---------+-----------+---------------------+-------+
//
// All integers are little-endian. The magic is stored last, with one
// atomic 64-bit store (Publish), so that a reader sees either a zero magic
// (the header is being written, or never was) or the whole header. The CRC
// is CRC-32C (Castagnoli) of the bytes from CRCFrom up to the CRC itself;
// a CRCFrom of 0 covers the magic too, as Publish stores it.
package header

import (
	"encoding/binary"
	"hash/crc32"
	"sync/atomic"
	"unsafe"
)

// Offsets of the common fields.
const (
	OffMagic   = 0
	OffVersion = 8
	OffSize    = 10
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Format describes one kind of header.
type Format struct {
	Magic   [8]byte
	Version uint16
	Size    int // header size in bytes, stored at OffSize
	CRCFrom int // first byte the CRC covers (0: the magic too)
	CRCAt   int // offset of the CRC: the end of what it covers
}

// Magic is what the magic word of a header says.
type Magic uint8

const (
	// Absent: a zero magic, the header not written yet (or never).
	Absent Magic = iota
	// Present: the format's magic.
	Present
	// Foreign: anything else: not this format.
	Foreign
)

func (f *Format) word() uint64 { return binary.LittleEndian.Uint64(f.Magic[:]) }

func magicWord(b []byte) *atomic.Uint64 {
	_ = b[OffMagic+7]
	return (*atomic.Uint64)(unsafe.Pointer(&b[OffMagic]))
}

// Load reads the magic of the header at the start of b atomically.
func (f *Format) Load(b []byte) Magic {
	switch m := magicWord(b).Load(); m {
	case 0:
		return Absent
	case f.word():
		return Present
	}
	return Foreign
}

// Publish stores the magic atomically: the last store of a header.
func (f *Format) Publish(b []byte) { magicWord(b).Store(f.word()) }

// Seal writes the version, the header size and the CRC of the header at
// the start of b, whose format's own fields are written already. The CRC
// is computed with the magic that Publish stores.
func (f *Format) Seal(b []byte) {
	_ = b[f.Size-1]
	binary.LittleEndian.PutUint16(b[OffVersion:], f.Version)
	binary.LittleEndian.PutUint16(b[OffSize:], uint16(f.Size))
	binary.LittleEndian.PutUint32(b[f.CRCAt:], f.sum(b))
}

// sum is the CRC of the header in b, over the format's magic where it
// covers it.
func (f *Format) sum(b []byte) uint32 {
	c := uint32(0)
	from := f.CRCFrom
	if from < OffVersion {
		c = crc32.Update(c, castagnoli, f.Magic[from:])
		from = OffVersion
	}
	return crc32.Update(c, castagnoli, b[from:f.CRCAt])
}

// CRC returns the CRC stored in the header at the start of b and the one
// its bytes have.
func (f *Format) CRC(b []byte) (stored, computed uint32) {
	return binary.LittleEndian.Uint32(b[f.CRCAt:]), f.sum(b)
}

// VersionOf returns the version stored in the header at the start of b.
func VersionOf(b []byte) uint16 { return binary.LittleEndian.Uint16(b[OffVersion:]) }

// SizeOf returns the header size stored in the header at the start of b.
func SizeOf(b []byte) uint16 { return binary.LittleEndian.Uint16(b[OffSize:]) }
