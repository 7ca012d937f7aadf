// Package ring is the record format of mmaplog and the lock-free appender and
// validating decoder that work on it. It works on a byte region, usually a
// shared mapping of a segment file, but it knows nothing of files: the
// region could as well be anonymous memory.
//
// # Layout of a region
//
// A region starts with a HeaderSize-byte header (magic, version, segment
// number, first sequence number, creation time, size, log id, CRC, then a
// small control area that writer and readers share) and continues with
// records, each aligned to 8 bytes:
//
//	+--------+--------+-----------------+-----------------+------+-----+--------+---------+-----+
//	| length | CRC-32C|  sequence (u64) |  time (i64, ns) | type | rsv | length | payload | pad |
//	|  u32   |  u32   |                 |                 |  u8  | 3B  |  copy  |         | 0-7 |
//	+--------+--------+-----------------+-----------------+------+-----+--------+---------+-----+
//	0        4        8                 16                24     25    28       32
//
// The length word holds the payload length in its low 30 bits, bit 31
// (Committed) is always set in a written record and bit 30 (Padding) marks a
// padding record. A zero length word means that nothing has been written
// there yet. The writer fills everything else first and stores the length
// word last, atomically, so a reader sees a record whole or not at all.
// The CRC-32C (Castagnoli) covers bytes 8 to the end of the payload (for
// padding, to the end of its 32-byte header only), which include a copy of
// the length word at offset 28: a reader checks that the two agree.
//
// docs/FORMAT.md in the repository has the byte diagrams and the rules a
// reader follows; the constants here refer to it.
//
// # Appending
//
// A Ring hands out space with a single atomic add on a word that packs the
// next free offset and the number of records reserved so far. The number
// gives the record its sequence number (the region's first sequence number
// plus the count), so that file order and sequence order agree without a
// lock. The goroutine whose reservation crosses the end of the region writes
// a padding record over the rest and seals the ring; every other goroutine
// that did not fit gets ErrFull and moves on to the next region.
//
// # Reading
//
// Decode validates one record at an offset: alignment, bounds of every
// length, the flag bits, the CRC. Walker is the format's one decoder loop:
// it walks a region (whole, or through a moving window), checks sequence
// order, finds damage and proves where reading resumes after it, the record
// whose checksum holds and whose sequence number fits. The tail reader,
// Verify and crash recovery all walk with it; Scan is a Walker run over a
// whole region. All are fuzzed.
//
// # Control area
//
// The header's control area is shared, mutable state between the writer and
// readers (WakeWord, WakeUntil, ArmWake, LoadState, StoreState): the futex
// word followers sleep on, the "wake me until" deadline they raise before
// sleeping, which the writer compares with each record's time stamp, and
// the segment's state (open, sealed, closed).
package ring
