package ring

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"sync/atomic"
)

// MaxRegionSize is the largest region (segment) the format allows, 1 GiB: a
// padding record covering the rest of any region must fit one length word.
const MaxRegionSize = 1 << 30

// Record is one decoded record. Payload aliases the region it was decoded
// from: copy it if it must outlive the region's mapping.
type Record struct {
	Offset  int64  // offset of the record in its region
	Size    int    // bytes the record takes, padding to alignment included
	Seq     uint64 // sequence number
	Time    int64  // Unix nanoseconds, when the writer appended it
	Type    uint8  // record type: the log level for log records
	Padding bool   // a padding record: skip it
	Payload []byte // the payload (nil for padding)
}

// Kind tells what Decode found at an offset.
type Kind int

const (
	// KindRecord is a valid data record.
	KindRecord Kind = iota
	// KindPadding is a valid padding record; skip Size bytes.
	KindPadding
	// KindEmpty is a zero length word: nothing written here (yet).
	KindEmpty
	// KindEnd means that no record fits between the offset and the end of
	// the region: the region is finished.
	KindEnd
	// KindCorrupt is a non-zero length word that does not make a valid
	// record; the error says why.
	KindCorrupt
)

func (k Kind) String() string {
	switch k {
	case KindRecord:
		return "record"
	case KindPadding:
		return "padding"
	case KindEmpty:
		return "empty"
	case KindEnd:
		return "end"
	case KindCorrupt:
		return "corrupt"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Decode examines the record at off in b. It validates the offset and every
// length against len(b) before touching anything, so it is safe on arbitrary
// bytes. The length word is read with an atomic load, so b may be a mapping
// that a writer appends to concurrently: a record that Decode returns as
// KindRecord was completely written.
//
// For KindCorrupt the error is a *CorruptionError (without Path).
func Decode(b []byte, off int) (Record, Kind, error) {
	r, k, cause := decode(b, off)
	if cause != nil {
		return r, k, &CorruptionError{Offset: int64(off), Err: cause}
	}
	return r, k, nil
}

// decode is Decode with the cause of KindCorrupt alone, for the caller to
// say where it is.
func decode(b []byte, off int) (Record, Kind, error) {
	var r Record
	r.Offset = int64(off)
	if off < 0 || off%Align != 0 {
		return r, KindCorrupt, fmt.Errorf("%w: offset %d is not %d-byte aligned", ErrBadLength, off, Align)
	}
	if off > len(b)-RecordHeaderSize {
		return r, KindEnd, nil
	}
	lw := atomic.LoadUint32(word32(b, off))
	if lw == 0 {
		return r, KindEmpty, nil
	}
	if lw&Committed == 0 {
		return r, KindCorrupt, fmt.Errorf("%w: length word %#08x lacks the committed bit", ErrBadFlags, lw)
	}
	n := int(lw & lengthMask)
	size := RecordSize(n)
	if size > len(b)-off {
		return r, KindCorrupt, fmt.Errorf("%w: %d-byte record at %d runs past the region end %d", ErrBadLength, size, off, len(b))
	}
	h := b[off : off+size]
	stored := binary.LittleEndian.Uint32(h[4:])
	r.Size = size
	r.Seq = binary.LittleEndian.Uint64(h[8:])
	r.Time = int64(binary.LittleEndian.Uint64(h[16:]))
	r.Type = h[24]
	// The length word is repeated inside the checksummed header, so a
	// damaged length word is caught without folding it into the CRC.
	if cp := binary.LittleEndian.Uint32(h[28:]); cp != lw {
		return r, KindCorrupt, fmt.Errorf("%w: length word %#08x, its checksummed copy %#08x", ErrBadLength, lw, cp)
	}
	if lw&Padding != 0 {
		r.Padding = true
		if c := recordCRC(h[8:RecordHeaderSize]); c != stored {
			return r, KindCorrupt, fmt.Errorf("padding header %w (stored %#08x, computed %#08x)", ErrChecksum, stored, c)
		}
		return r, KindPadding, nil
	}
	if c := recordCRC(h[8 : RecordHeaderSize+n]); c != stored {
		return r, KindCorrupt, fmt.Errorf("record %w (stored %#08x, computed %#08x)", ErrChecksum, stored, c)
	}
	r.Payload = h[RecordHeaderSize : RecordHeaderSize+n : RecordHeaderSize+n]
	return r, KindRecord, nil
}

// recordCRC is the CRC-32C of a record's bytes from offset 8 (sequence
// number, time, type, the copy of the length word, the payload).
func recordCRC(body []byte) uint32 { return crc32.Update(0, castagnoli, body) }

// PutRecord writes a complete data record at the start of dst, which must be
// exactly RecordSize(len(p)) bytes, and publishes it by storing its length
// word last, atomically.
func PutRecord(dst []byte, seq uint64, ts int64, typ uint8, p []byte) {
	n := len(p)
	_ = dst[RecordSize(n)-1]
	binary.LittleEndian.PutUint64(dst[8:], seq)
	binary.LittleEndian.PutUint64(dst[16:], uint64(ts))
	lw := uint32(Committed) | uint32(n)
	binary.LittleEndian.PutUint32(dst[24:], uint32(typ)) // type byte, then 3 reserved zero bytes
	binary.LittleEndian.PutUint32(dst[28:], lw)          // the length word's checksummed copy
	copy(dst[RecordHeaderSize:], p)
	for i := RecordHeaderSize + n; i < len(dst); i++ {
		dst[i] = 0
	}
	binary.LittleEndian.PutUint32(dst[4:], recordCRC(dst[8:RecordHeaderSize+n]))
	atomic.StoreUint32(word32(dst, 0), lw)
}

// PadCause is the type byte of a padding record: why it is there.
type PadCause uint8

const (
	// PadClose: a padding record that closes a region (the normal kind).
	PadClose PadCause = 0
	// PadUnfinished: crash recovery covered writes that a crashed writer
	// reserved and never finished (their Write never returned): the
	// sequence numbers skipped after it belonged to no record.
	PadUnfinished PadCause = 1
	// PadDamaged: crash recovery covered damaged bytes: the sequence
	// numbers skipped after it were records, lost.
	PadDamaged PadCause = 2
)

// PutPadding writes a padding record covering the whole of dst (at least
// RecordHeaderSize bytes, a multiple of Align) and publishes it. seq is the
// sequence number of the next data record expected after the padding; ts is
// the time it was written. Bytes after the padding header are left as they
// are: readers skip them.
func PutPadding(dst []byte, seq uint64, ts int64) { PutRepairPadding(dst, seq, ts, PadClose) }

// PutRepairPadding is PutPadding with the padding's cause in its type byte:
// what crash recovery writes over a range it repaired.
func PutRepairPadding(dst []byte, seq uint64, ts int64, cause PadCause) {
	n := len(dst) - RecordHeaderSize
	if n < 0 || len(dst)%Align != 0 {
		panic(fmt.Sprintf("ring: padding of %d bytes", len(dst)))
	}
	binary.LittleEndian.PutUint64(dst[8:], seq)
	binary.LittleEndian.PutUint64(dst[16:], uint64(ts))
	lw := uint32(Committed|Padding) | uint32(n)
	binary.LittleEndian.PutUint32(dst[24:], uint32(cause))
	binary.LittleEndian.PutUint32(dst[28:], lw)
	binary.LittleEndian.PutUint32(dst[4:], recordCRC(dst[8:RecordHeaderSize]))
	atomic.StoreUint32(word32(dst, 0), lw)
}

// LengthWord returns the length word of the record at off in b, for atomic
// loads (a follower watches the word where the next record will be).
func LengthWord(b []byte, off int) *uint32 { return word32(b, off) }
