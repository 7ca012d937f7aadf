package ring

import (
	"errors"
	"fmt"
	"sync/atomic"
)

// ErrHole is the cause given for space that was reserved but never written:
// a writer process died between reserving a record and publishing it.
var ErrHole = errors.New("reserved space never written (writer died mid-record)")

// Resync looks for the first record at or after from that can be proved to
// belong to the log after damage that starts at holeStart: a record (or
// padding) with a valid CRC whose sequence number is at least expect and at
// most expect plus the number of records that could fit between holeStart
// and it. It returns the record's offset, or ok false when there is none
// before the end of b. lastNonZero is the end of the last non-zero 8-byte
// word it passed (holeStart if none), so that a caller can tell a clean
// zeroed tail from garbage.
func Resync(b []byte, holeStart, from int, expect uint64) (off int, ok bool, lastNonZero int) {
	lastNonZero = holeStart
	if from < holeStart {
		from = holeStart
	}
	from = (from + Align - 1) &^ (Align - 1)
	for off = from; off >= 0 && off <= len(b)-8; off += Align {
		w := atomic.LoadUint64(word64(b, off))
		if w == 0 {
			continue
		}
		lastNonZero = off + 8
		lw := uint32(w)
		if lw&Committed == 0 || off > len(b)-RecordHeaderSize {
			continue
		}
		rec, kind, _ := Decode(b, off)
		if kind != KindRecord && kind != KindPadding {
			continue
		}
		maxGap := uint64(off-holeStart) / RecordHeaderSize
		if rec.Seq >= expect && rec.Seq-expect <= maxGap {
			return off, true, lastNonZero
		}
	}
	return 0, false, lastNonZero
}

// Damage is a range of a region that holds no valid record.
type Damage struct {
	From, To int64  // the range [From, To)
	Err      error  // why: ErrHole, or the *CorruptionError of the first bad record
	Seq      uint64 // sequence number expected at From
}

// Gap is a jump in sequence numbers between two valid records: records that
// an earlier repair removed.
type Gap struct {
	Offset   int64  // offset of the record after the gap
	From, To uint64 // missing sequence numbers [From, To)
}

// ScanResult describes what Scan found in a region.
type ScanResult struct {
	Records  uint64   // valid data records
	Padding  uint64   // valid padding records
	NextSeq  uint64   // sequence number that the next appended record gets
	End      int      // offset just past the last valid record: where appending continues
	Full     bool     // the region is closed (padding to its end, or no room for a record)
	Damage   []Damage // ranges skipped because a valid record provably follows them
	Gaps     []Gap    // sequence gaps left by earlier repairs
	DataEnd  int      // End, less a padding record that closes the region
	TailFrom int      // start of non-zero garbage after End (torn tail), or 0
	TailTo   int      // end of that garbage
}

// Scan walks a region from its first record, validating each record and the
// sequence numbers (starting at firstSeq), skipping damage only where Resync
// proves where the next record is. It never modifies b and never reads
// outside it. fn, if not nil, is called for every valid data record in order;
// returning false stops the scan early (the result then describes only what
// was scanned).
func Scan(b []byte, firstSeq uint64, fn func(Record) bool) ScanResult {
	res := ScanResult{NextSeq: firstSeq}
	if len(b) < HeaderSize {
		res.End, res.DataEnd, res.Full = len(b), len(b), true
		return res
	}
	pos := HeaderSize
	for {
		rec, kind, err := Decode(b, pos)
		switch kind {
		case KindEnd:
			res.End, res.DataEnd = pos, pos
			res.Full = true
			return res
		case KindRecord, KindPadding:
			if rec.Seq < res.NextSeq {
				kind = KindCorrupt
				err = &CorruptionError{Offset: int64(pos), Err: fmt.Errorf("%w: sequence %d after %d", ErrSequence, rec.Seq, res.NextSeq)}
				break
			}
			if rec.Seq > res.NextSeq {
				res.Gaps = append(res.Gaps, Gap{Offset: int64(pos), From: res.NextSeq, To: rec.Seq})
			}
			pos += rec.Size
			if kind == KindPadding {
				res.Padding++
				res.NextSeq = rec.Seq
				if pos == len(b) {
					res.End, res.DataEnd = pos, int(rec.Offset)
					res.Full = true
					return res
				}
				continue
			}
			res.Records++
			res.NextSeq = rec.Seq + 1
			if fn != nil && !fn(rec) {
				res.End, res.DataEnd = pos, pos
				return res
			}
			continue
		}
		// KindEmpty or KindCorrupt: find out whether valid records follow.
		next, ok, dirty := Resync(b, pos, pos, res.NextSeq)
		if !ok {
			res.End, res.DataEnd = pos, pos
			if dirty > pos {
				res.TailFrom, res.TailTo = pos, dirty
			}
			return res
		}
		if err == nil {
			err = &CorruptionError{Offset: int64(pos), Err: ErrHole}
		}
		res.Damage = append(res.Damage, Damage{From: int64(pos), To: int64(next), Err: err, Seq: res.NextSeq})
		pos = next
	}
}
