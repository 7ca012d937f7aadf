package tail

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/mmaplog/mmaplog/internal/fault"
	"github.com/mmaplog/mmaplog/internal/fileutil"
	"github.com/mmaplog/mmaplog/ring"
	"github.com/mmaplog/mmaplog/rotate"
)

// This file finds where a Reader starts for Options.Since and Options.Last,
// and gets to Options.FromSeq inside a plain segment, without reading the
// log from its start: the segments by their header and the time of their
// first record, then a binary search by byte offset inside one segment, each
// probe resynchronising on the next record whose checksum holds and whose
// sequence number fits where it lies (the rule ring.Walker resumes by after
// damage, docs/FORMAT.md). The search only picks a record to start from; the
// Reader walks on from it with ring.Walker, so whatever it returns is
// validated as ever. docs/READING.md describes it for users.

const (
	// TimeSlack is how far out of order record times may be and still be
	// found exactly by Since and Until: the search looks for a record
	// stamped earlier than the time asked for less TimeSlack, and reads on
	// from there. Goroutines writing at once stamp their records a little
	// before they take their place in the log, so times may go back by a
	// tick of the writer's clock (mmaplog.ClockResolution) or a pause of
	// the goroutine; a clock set back by more is a TimeStep.
	TimeSlack = 10 * time.Millisecond
	// UntilGrace is how long past Options.Until a following Reader that
	// has read everything waits for records stamped before Until, before
	// it is done.
	UntilGrace = time.Second

	// seekWalk: below this distance the search stops and the Reader walks.
	seekWalk = 16 << 10
	// probeZeros: a probe that meets this many zero bytes in a row gives
	// up: it is past the end of what is written (or in a payload of zeros,
	// which only costs the search precision).
	probeZeros = 8 << 10
	// firstRead is what the search reads of a segment to get its header
	// and first record (more if the record is larger).
	firstRead = 4 << 10
	// seekQuiet is how far the Reader walks from where a search took it
	// with read-ahead off: a reader that wants a few records after a time
	// reads those pages only (the read-ahead of a mapping may read
	// megabytes around the page a fault is in); one that reads on gets
	// read-ahead back after this much.
	seekQuiet = 256 << 10
)

// TimeStep is a place where record times go back, met by the search for
// Options.Since, Until or Last: the record Seq (in Path) is stamped Time,
// earlier by more than TimeSlack than the record Before, which comes before
// it in the log and is stamped BeforeTime. The system clock was set back
// while the log was written, or a writer started with an earlier clock. The
// search treats time as non-decreasing, reading on from before the step;
// it cannot see a step between the records it reads (see Options.Since).
type TimeStep struct {
	Path       string
	Seq        uint64
	Time       int64
	Before     uint64
	BeforeTime int64
}

func (s TimeStep) String() string {
	return fmt.Sprintf("%s: record %d is stamped %s, %v before record %d (%s): the clock went back while the log was written",
		s.Path, s.Seq, time.Unix(0, s.Time).UTC().Format(time.RFC3339Nano), time.Duration(s.BeforeTime-s.Time), s.Before,
		time.Unix(0, s.BeforeTime).UTC().Format(time.RFC3339Nano))
}

// mark is a record the search proved: where it lies and what it says.
type mark struct {
	off, end int64 // its offset in the segment, and the offset after it
	seq      uint64
	time     int64
}

func markOf(rec ring.Record) mark {
	return mark{off: rec.Offset, end: rec.Offset + int64(rec.Size), seq: rec.Seq, time: rec.Time}
}

// seekState is what a Reader keeps for the options this file implements.
type seekState struct {
	hint     mark   // the record the time search found, where FromSeq names it
	hintSeg  uint64 // its segment
	hintOK   bool
	sinceMet bool   // a record stamped at or after Since was read
	stopSeq  uint64 // a static Reader ends before this sequence number
	stopSet  bool
	// quietUntil: read-ahead is off in segment quietSeg up to this offset
	// (0: not off); quietNext: the next segment opened starts so;
	// quietHop: the walk may take it into one more segment.
	quietUntil int64
	quietSeg   uint64
	quietNext  bool
	quietHop   bool
	starts     []segStart // segment headers and first records, by listing index
}

// segStart is what the search read of a segment: its header, and its first
// record.
type segStart struct {
	read  bool // tried
	hdr   bool // h is valid
	h     ring.Header
	first mark
	ok    bool // first is a data record
}

// probe looks in b, the bytes of a plain segment, for the first data
// record at or after from and before limit that provably follows lo: a
// record whose checksum holds, whose sequence number is above lo's and below
// seqBound, and not further above lo's than the records the bytes in between
// could hold (ring.Resync's rule). It skips padding that fits the same way.
// It gives up after probeZeros zero bytes in a row. The caller has made
// memory faults errors.
func probe(b []byte, from, limit int64, lo mark, seqBound uint64) (mark, bool) {
	from = max((from+ring.Align-1)&^(ring.Align-1), lo.end)
	limit = min(limit, int64(len(b)))
	zeros := int64(0)
	for off := from; off+ring.RecordHeaderSize <= limit; {
		// Most words are not a record's start: tell them by the length
		// word and its copy before decoding.
		lw := atomic.LoadUint32(ring.LengthWord(b, int(off)))
		if lw != 0 && (lw&ring.Committed == 0 || binary.LittleEndian.Uint32(b[off+28:]) != lw) {
			zeros = 0
			off += ring.Align
			continue
		}
		rec, kind, _ := ring.Decode(b, int(off))
		switch kind {
		case ring.KindEmpty:
			if zeros += ring.Align; zeros >= probeZeros {
				return mark{}, false
			}
			off += ring.Align
			continue
		case ring.KindEnd:
			return mark{}, false
		case ring.KindRecord, ring.KindPadding:
			if rec.Seq > lo.seq && rec.Seq < seqBound && rec.Seq-lo.seq-1 <= uint64(off-lo.end)/ring.RecordHeaderSize {
				if kind == ring.KindRecord {
					return markOf(rec), true
				}
				off += int64(rec.Size)
				zeros = 0
				continue
			}
		}
		zeros = 0
		off += ring.Align
	}
	return mark{}, false
}

// bisect narrows down, in b (a plain segment's bytes), where records start
// to be at or after a target: from lo, a record before the target, it
// probes the middle of what is left up to limit, and returns the last
// record it proved to be before the target, within seekWalk of the first
// one at or after it (or of the end of what is written). check, if set,
// sees every record probed after lo; false stops the search there.
// Sequence numbers in b are below seqBound.
func bisect(b []byte, lo mark, limit int64, seqBound uint64, atOrAfter func(mark) bool, check func(lo, r mark) bool) mark {
	limit = min(limit, int64(len(b)))
	for limit-lo.end > seekWalk {
		m := (lo.end + (limit-lo.end)/2) &^ (ring.Align - 1)
		r, ok := probe(b, m, limit, lo, seqBound)
		switch {
		case !ok:
			limit = m // nothing from m on: the end of what is written, or damage
		case check != nil && !check(lo, r):
			return lo
		case atOrAfter(r):
			limit, seqBound = m, r.seq // nothing valid between m and r
		default:
			lo = r
		}
	}
	return lo
}

// firstMark returns the record at the start of b, a plain segment whose
// first sequence number is first, if it is a data record.
func firstMark(b []byte, first uint64) (mark, bool) {
	rec, kind, _ := ring.Decode(b, ring.HeaderSize)
	if kind != ring.KindRecord || rec.Seq < first {
		return mark{}, false
	}
	return markOf(rec), true
}

// seekTo moves the walk of v, the segment just opened (its first record
// numbered first), to the record Options.FromSeq names or one shortly before
// it, found by the time search (the hint) or a binary search by sequence
// number: without it, the walk goes through every record before it. Damage
// before that record is then not read, nor reported. Streams (compressed
// segments) are read from their start.
//
// Where a search placed the walk (here, or in resolveStart), the walk reads
// without read-ahead for seekQuiet bytes, into the next segment too.
func (r *Reader) seekTo(v *rotate.View, first uint64) {
	target := r.opts.FromSeq
	hint, useHint := r.seek.hint, r.seek.hintOK && r.seek.hintSeg == v.Num
	r.seek.hintOK = false
	// Quiet: the first segment after resolveStart's search, or the next
	// one the walk went on into, once.
	quiet := r.seek.quietNext || r.seek.quietUntil != 0 && r.seek.quietSeg != v.Num && r.seek.quietHop
	if !r.seek.quietNext && quiet {
		r.seek.quietHop = false
	}
	r.seek.quietNext, r.seek.quietUntil = false, 0
	if v.Stream() {
		return
	}
	lo := mark{off: ring.HeaderSize, seq: first}
	found := false
	if target > first {
		_ = fault.Guard(v.Path, func() error {
			b := v.Data
			adviseRandom(b)
			if useHint && hint.seq == target {
				if rec, kind, _ := ring.Decode(b, int(hint.off)); kind == ring.KindRecord && rec.Seq == hint.seq {
					lo, found = hint, true
					return nil
				}
			}
			if start, ok := firstMark(b, first); ok && start.seq < target {
				lo = bisect(b, start, int64(len(b)), math.MaxUint64, func(m mark) bool { return m.seq >= target }, nil)
				found = lo.off > start.off
			}
			return nil
		})
	}
	if found {
		r.walk = ring.Walker{Path: v.Path, Pos: lo.off, Seq: lo.seq, DataEnd: lo.off}
		r.nextSeq = lo.seq
	}
	if found || quiet {
		adviseRandom(v.Data)
		r.seek.quietUntil, r.seek.quietSeg = lo.off+seekQuiet, v.Num
		if found {
			r.seek.quietHop = true
		}
	} else if target > first {
		adviseNormal(v.Data)
	}
}

// readStart reads the header and first record of segment i of the listing,
// once: a plain file by a read of its first page without read-ahead, a
// compressed one by decompressing its start.
func (r *Reader) readStart(i int) *segStart {
	if len(r.seek.starts) != len(r.list.Segments) {
		r.seek.starts = make([]segStart, len(r.list.Segments))
	}
	s := &r.seek.starts[i]
	if s.read {
		return s
	}
	s.read = true
	fi := r.list.Segments[i]
	if fi.Compressed {
		r.readStartCompressed(fi, s)
		return s
	}
	f, err := fileutil.OpenNoFollow(fi.Path, false)
	if err != nil {
		return s
	}
	defer f.Close()
	if errors.Is(fileutil.LockShared(f), fileutil.ErrLockBusy) {
		return s // being taken for reuse
	}
	st, err := f.Stat()
	if err != nil {
		return s
	}
	size := st.Size()
	adviseRandomFile(f)
	buf := make([]byte, min(size, firstRead))
	n, _ := f.ReadAt(buf, 0)
	buf = buf[:n]
	if n < ring.HeaderSize {
		return s
	}
	h, _, err := ring.CheckSegmentHeader(buf, fi.Num, size)
	if err != nil {
		return s
	}
	s.h, s.hdr = h, true
	if n < ring.HeaderSize+ring.RecordHeaderSize {
		return s
	}
	if lw := binary.LittleEndian.Uint32(buf[ring.HeaderSize:]); lw&ring.Committed != 0 && lw&ring.Padding == 0 {
		need := int64(ring.HeaderSize + ring.RecordSize(int(lw&ring.MaxPayload)))
		if need > int64(n) && need <= size {
			buf = make([]byte, need)
			n, _ = f.ReadAt(buf, 0)
			buf = buf[:n]
		}
	}
	if rec, kind, _ := ring.Decode(buf, ring.HeaderSize); kind == ring.KindRecord && rec.Seq >= h.FirstSeq {
		s.first, s.ok = markOf(rec), true
	}
	return s
}

// readStartCompressed reads the header and first record of a compressed
// segment: it decompresses only as far as they go.
func (r *Reader) readStartCompressed(fi rotate.FileInfo, s *segStart) {
	f, err := fileutil.OpenNoFollow(fi.Path, false)
	if err != nil {
		return
	}
	defer f.Close()
	dec, err := zstd.NewReader(f, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxMemory(ring.MaxRegionSize))
	if err != nil {
		return
	}
	defer dec.Close()
	buf := make([]byte, ring.HeaderSize+ring.RecordHeaderSize)
	n, _ := io.ReadFull(dec, buf)
	if n < ring.HeaderSize {
		return
	}
	h, _, err := ring.CheckSegmentHeader(buf[:n], fi.Num, -1)
	if err != nil {
		return
	}
	s.h, s.hdr = h, true
	if n < len(buf) {
		return
	}
	if lw := binary.LittleEndian.Uint32(buf[ring.HeaderSize:]); lw&ring.Committed != 0 && lw&ring.Padding == 0 {
		need := ring.HeaderSize + ring.RecordSize(int(lw&ring.MaxPayload))
		if uint64(need) > h.Size {
			return
		}
		buf = append(buf, make([]byte, need-len(buf))...)
		if _, err := io.ReadFull(dec, buf[n:]); err != nil {
			return
		}
	}
	if rec, kind, _ := ring.Decode(buf, ring.HeaderSize); kind == ring.KindRecord && rec.Seq >= h.FirstSeq {
		s.first, s.ok = markOf(rec), true
	}
}

// timeStep reports a step back in record times.
func (r *Reader) timeStep(s TimeStep) {
	if r.opts.OnTimeStep != nil {
		r.opts.OnTimeStep(s)
	}
}

// timeLowerBound finds where to start reading for the first record stamped
// at or after t (Unix ns): the sequence number of a record stamped before t
// less TimeSlack, as late in the log as the search can prove, or 0 for the
// oldest record. Reading on from there, the first record stamped at or after
// t is the one asked for, if record times do not go back (see TimeStep). It
// also sets the hint that takes the Reader to that record without a second
// search.
func (r *Reader) timeLowerBound(t int64) uint64 {
	target := t - int64(TimeSlack)
	sel, after := -1, -1
	maxT, maxSeq := int64(math.MinInt64), uint64(0)
	for i := range r.list.Segments {
		s := r.readStart(i)
		if !s.ok {
			continue // not started, or unreadable: never chosen, so never skipped
		}
		if sel >= 0 && s.first.time < maxT-int64(TimeSlack) {
			r.timeStep(TimeStep{Path: r.list.Segments[i].Path, Seq: s.first.seq, Time: s.first.time, Before: maxSeq, BeforeTime: maxT})
			// Times went back before this segment: the previous one may
			// end later than any first record says (a writer restarted
			// into a new segment with its clock set back). Its last
			// record tells.
			if last, ok := r.lastRecord(r.list.Segments[sel]); ok && last.time > maxT {
				maxT, maxSeq = last.time, last.seq
				if maxT >= target {
					after = i
					break
				}
			}
		}
		if s.first.time > maxT {
			maxT, maxSeq = s.first.time, s.first.seq
		}
		if maxT >= target {
			after = i
			break
		}
		sel = i
	}
	if sel < 0 {
		return 0
	}
	s := r.seek.starts[sel]
	fi := r.list.Segments[sel]
	if fi.Compressed {
		return s.first.seq
	}
	v, err := rotate.OpenView(fi)
	if err != nil {
		return s.first.seq // compressed or removed meanwhile: read it from its start
	}
	defer v.Close()
	if v.Header.FirstSeq != s.h.FirstSeq {
		return s.first.seq
	}
	bound := uint64(math.MaxUint64)
	if after >= 0 {
		bound = r.seek.starts[after].h.FirstSeq
	}
	lo := s.first
	_ = fault.Guard(v.Path, func() error {
		adviseRandom(v.Data)
		lo = bisect(v.Data, s.first, int64(len(v.Data)), bound, func(m mark) bool { return m.time >= target },
			func(lo, m mark) bool {
				if m.time < lo.time-int64(TimeSlack) {
					// Times go back between lo and m: lo is the last
					// record the search can trust to be early enough.
					r.timeStep(TimeStep{Path: v.Path, Seq: m.seq, Time: m.time, Before: lo.seq, BeforeTime: lo.time})
					return false
				}
				return true
			})
		return nil
	})
	r.seek.hint, r.seek.hintSeg, r.seek.hintOK = lo, fi.Num, true
	return lo.seq
}

// passedFor returns the Reader's passed for starting at sequence number seq:
// one below the number of the last segment whose first sequence number is
// at most seq (0: start at the oldest).
func (r *Reader) passedFor(seq uint64) uint64 {
	// A binary search: first sequence numbers grow with segment numbers.
	// A segment whose header cannot be read counts as its next one.
	best := -1
	lo, hi := 0, len(r.list.Segments)-1
	for lo <= hi {
		mid := lo + (hi-lo)/2
		j := mid
		for j <= hi && !r.readStart(j).hdr {
			j++
		}
		if j <= hi && r.seek.starts[j].h.FirstSeq <= seq {
			best, lo = j, j+1
		} else {
			hi = mid - 1
		}
	}
	if best < 0 || r.list.Segments[best].Num == 0 {
		return 0
	}
	return r.list.Segments[best].Num - 1
}

// oldestSeq is the first sequence number of the oldest segment whose header
// can be read (0 if none).
func (r *Reader) oldestSeq() uint64 {
	for i := range r.list.Segments {
		if s := r.readStart(i); s.hdr {
			return s.h.FirstSeq
		}
	}
	return 0
}

// sub returns a static Reader of the same log that reads from seq to before
// stop (0: to the end), for counting and for reading backwards: it shares
// the listing and the hint of the search.
func (r *Reader) sub(seq, stop uint64, onDamage func(Damage)) *Reader {
	s := newReader(r.dir, &Options{FromSeq: seq, LogID: r.opts.LogID, HoleWait: r.opts.HoleWait, OnDamage: onDamage})
	s.list = r.list
	s.passed = r.passedFor(seq)
	s.seek.stopSeq, s.seek.stopSet = stop, stop > 0
	if r.seek.hintOK {
		s.seek.hint, s.seek.hintSeg, s.seek.hintOK = r.seek.hint, r.seek.hintSeg, true
	}
	return s
}

// firstAtOrAfter returns the sequence number of the first record stamped at
// or after t (Unix ns), found by timeLowerBound and a walk from there, or the
// sequence number after the newest record if there is none.
func (r *Reader) firstAtOrAfter(t int64) (uint64, error) {
	from := r.timeLowerBound(t)
	s := r.sub(from, 0, nil)
	defer s.Close()
	for s.Next() {
		if rec := s.Record(); rec.Time >= t {
			return rec.Seq, nil
		}
	}
	if err := s.Err(); err != nil {
		return 0, err
	}
	return max(s.NextSeq(), from), nil
}

// logEnd returns the sequence number after the newest record: the newest
// started segment's data end, found by a binary search and a short walk.
func (r *Reader) logEnd() (uint64, error) {
	for i := len(r.list.Segments) - 1; i >= 0; i-- {
		fi := r.list.Segments[i]
		if !r.readStart(i).hdr {
			continue // not started (or unreadable: the Reader reports it)
		}
		// The header is in the page cache now: mapping the file and
		// checking it reads no more.
		v, err := rotate.OpenView(fi)
		switch {
		case errors.Is(err, ring.ErrNotStarted), errors.Is(err, ring.ErrShort), errors.Is(err, fs.ErrNotExist):
			continue
		case err != nil:
			var ce *ring.CorruptionError
			if errors.As(err, &ce) {
				continue // the Reader reports it
			}
			return 0, fmt.Errorf("tail: %w", err)
		}
		next := v.Header.FirstSeq
		err = fault.Guard(v.Path, func() error {
			b := v.Data
			w := ring.NewWalker(v.Header.FirstSeq)
			if !v.Compressed {
				if first, ok := firstMark(b, v.Header.FirstSeq); ok {
					adviseRandom(b)
					lo := bisect(b, first, int64(len(b)), math.MaxUint64, func(mark) bool { return false }, nil)
					w = ring.Walker{Pos: lo.off, Seq: lo.seq, DataEnd: lo.off}
				}
			}
			next, _, _ = walkToEnd(b, 0, w)
			return nil
		})
		v.Close()
		if err != nil {
			return 0, err
		}
		return next, nil
	}
	return r.oldestSeq(), nil
}

// walkToEnd walks b (a segment's bytes from base on) from w to the end of
// what is written and returns the sequence number after the last record,
// and the last data record: past a zero length word only as far as probe
// looks (a write in progress, or one a crashed writer left).
func walkToEnd(b []byte, base int64, w ring.Walker) (next uint64, last mark, ok bool) {
	for {
		st := w.Next(b, base, false)
		switch st.Kind {
		case ring.StepRecord:
			last, ok = markOf(st.Record), true
			continue
		case ring.StepPadding:
			continue
		case ring.StepDamage:
			if st.Damage.To >= 0 {
				continue
			}
		case ring.StepEmpty:
			if base == 0 {
				if m, found := probe(b, w.Pos, int64(len(b)), mark{end: w.Pos, seq: w.Seq - 1}, math.MaxUint64); found {
					w.Pos, w.Seq = m.off, m.seq
					continue
				}
			}
		}
		return w.Seq, last, ok
	}
}

// lastRecord returns the last data record of a segment: found by a binary
// search and a short walk in a plain one, by reading a compressed one whole.
func (r *Reader) lastRecord(fi rotate.FileInfo) (last mark, ok bool) {
	v, err := rotate.OpenView(fi)
	if err != nil {
		return mark{}, false
	}
	defer v.Close()
	_ = fault.Guard(v.Path, func() error {
		b := v.Data
		w := ring.NewWalker(v.Header.FirstSeq)
		if !v.Compressed {
			if first, found := firstMark(b, v.Header.FirstSeq); found {
				adviseRandom(b)
				lo := bisect(b, first, int64(len(b)), math.MaxUint64, func(mark) bool { return false }, nil)
				w = ring.Walker{Pos: lo.off, Seq: lo.seq, DataEnd: lo.off}
			}
		}
		_, last, ok = walkToEnd(b, 0, w)
		return nil
	})
	return last, ok
}

// wanted reports whether rec passes MinLevel and Match.
func (r *Reader) wanted(rec Record) bool {
	if l := r.opts.MinLevel; l != ring.LevelNone && (rec.Type == 0 || ring.Level(rec.Type) < l) {
		return false
	}
	return r.opts.Match == nil || r.opts.Match(rec)
}

// countBack returns the sequence number from which the records before end,
// and from lb on, hold n that pass MinLevel and Match, counting back from
// end in chunks that double; lb if they hold fewer.
func (r *Reader) countBack(end, lb uint64, n int) (uint64, error) {
	lb = max(lb, r.oldestSeq())
	need := n
	seqs := make([]uint64, need) // a ring of the latest matches in a chunk
	hi, k := end, uint64(n)+uint64(n)/8+64
	for hi > lb {
		a := lb
		if hi-lb > k {
			a = hi - k
		}
		s := r.sub(a, hi, nil)
		count := 0
		for s.Next() {
			rec := s.Record()
			if rec.Seq >= hi {
				break
			}
			if r.wanted(rec) {
				seqs[count%need] = rec.Seq
				count++
			}
		}
		err := s.Err()
		s.Close()
		if err != nil {
			return 0, err
		}
		if count >= need {
			return seqs[count%need], nil // the need-th latest
		}
		need -= count
		hi, k = a, 2*k
	}
	return lb, nil
}

// resolveStart turns Since and Last into the sequence number to start at
// (FromSeq) and the segment to open first, and sets where a static Reader
// with Last stops.
func (r *Reader) resolveStart() error {
	defer func() { r.seek.starts = nil }()
	o := &r.opts
	if o.Last < 0 {
		return fmt.Errorf("tail: Last %d: want 0 (all) or more", o.Last)
	}
	if o.Since.IsZero() && o.Last == 0 {
		return nil
	}
	if o.FromSeq != 0 || o.FromEnd {
		return errors.New("tail: Since and Last cannot be combined with FromSeq or FromEnd")
	}
	if len(r.list.Segments) == 0 {
		return nil // a log yet to be created: the filters do it all
	}
	var from uint64
	if !o.Since.IsZero() {
		from = r.timeLowerBound(o.Since.UnixNano())
	}
	if o.Last > 0 {
		var end uint64
		var err error
		if !o.Until.IsZero() {
			end, err = r.firstAtOrAfter(o.Until.UnixNano() + 1)
		} else {
			end, err = r.logEnd()
		}
		if err != nil {
			return err
		}
		if !o.Since.IsZero() {
			// Exactly: the records counted back to are then all at or
			// after the first stamped at or after Since.
			if from, err = r.firstAtOrAfter(o.Since.UnixNano()); err != nil {
				return err
			}
			r.seek.sinceMet = true
		}
		if from < end {
			p, err := r.countBack(end, from, o.Last)
			if err != nil {
				return err
			}
			from = max(from, p)
		} else {
			from = end
		}
		if !o.Follow {
			r.seek.stopSeq, r.seek.stopSet = end, true
		}
		if from == 0 {
			from = r.oldestSeq()
		}
	}
	o.FromSeq = from
	r.passed = r.passedFor(from)
	r.seek.quietNext, r.seek.quietHop = true, true // the walk starts where the search chose
	return nil
}

// filter applies Since, Until, MinLevel, Match and the end of a static Last
// to the record just decoded: whether to deliver it. At the end of what
// Since, Until or Last ask for, it sets atEnd.
func (r *Reader) filter() bool {
	rec := &r.rec
	o := &r.opts
	if r.seek.quietUntil != 0 && rec.Offset >= r.seek.quietUntil && rec.Segment == r.seek.quietSeg {
		adviseNormal(r.view.Data)
		r.seek.quietUntil, r.seek.quietHop = 0, false
	}
	if r.seek.stopSet && rec.Seq >= r.seek.stopSeq {
		r.atEnd = true
		return false
	}
	if !o.Since.IsZero() && !r.seek.sinceMet {
		if rec.Time < o.Since.UnixNano() {
			return false
		}
		r.seek.sinceMet = true
	}
	if !o.Until.IsZero() && rec.Time > o.Until.UnixNano() {
		r.atEnd = true
		return false
	}
	if r.seek.stopSet && rec.Seq+1 >= r.seek.stopSeq {
		// The last record asked for: do not look past it (past the end
		// of a log whose writer is gone, that means reading the rest of
		// the segment).
		r.atEnd = true
	}
	return r.wanted(*rec)
}

// Done reports whether the Reader will return no more records: a Reader
// without Follow at the end of the log (or of what Last chose), a Reader
// past Until (it read a record stamped after it, or follows and has read
// everything while the clock is past Until by UntilGrace), or one stopped by
// an error or Close. Call it after Next returned false.
func (r *Reader) Done() bool { return r.atEnd || r.err != nil }
