package mmaplog

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/mmaplog/mmaplog/internal/fault"
	"github.com/mmaplog/mmaplog/internal/fileutil"
	"github.com/mmaplog/mmaplog/ring"
	"github.com/mmaplog/mmaplog/rotate"
)

// RepairKind says what Open repaired.
type RepairKind uint8

const (
	// RepairHole: space reserved by a write that never completed (its
	// Write never returned) became padding; the records after it stay.
	RepairHole RepairKind = iota + 1
	// RepairCorrupt: a record that fails its checks, followed by provably
	// valid records, became padding.
	RepairCorrupt
	// RepairTornTail: bytes after the last valid record of the last
	// segment (an unfinished write) were zeroed.
	RepairTornTail
	// RepairUnclosed: a rolled segment that did not end with padding got
	// it, so that readers move on to the next segment.
	RepairUnclosed
	// RepairUnused: a segment prepared but never activated was removed.
	RepairUnused
	// RepairTruncated: the last segment's file was shorter than its header
	// says; what is left stays for readers, appending goes on in a new
	// segment.
	RepairTruncated
	// RepairTempFile: a leftover temporary file of an interrupted segment
	// preparation or compression was removed.
	RepairTempFile
	// RepairLeftDamaged: a rolled segment that cannot be opened (damaged
	// header, foreign file) was left as it is; readers report it.
	RepairLeftDamaged
	// RepairPowerLoss: the last writer ran before the machine restarted
	// (a power loss, a kernel crash) and did not close the log: the log
	// ends at Seq, at Offset of Path, and the records it wrote after that
	// and had not flushed are lost. Nothing after them tells how many;
	// the flush policy bounds it (package flush).
	RepairPowerLoss
	// RepairStaleReuse: the last segment's file was one of an older
	// segment of the log, reused for a new segment whose header never
	// reached the disk before the machine went down: it held no record of
	// the new segment, and was removed.
	RepairStaleReuse
)

var repairNames = [...]string{
	RepairHole:        "hole",
	RepairCorrupt:     "corrupt record",
	RepairTornTail:    "torn tail",
	RepairUnclosed:    "unclosed segment",
	RepairUnused:      "unused segment",
	RepairTruncated:   "truncated segment",
	RepairTempFile:    "leftover temporary file",
	RepairLeftDamaged: "damaged rolled segment left as it is",
	RepairPowerLoss:   "end of the log after a power loss",
	RepairStaleReuse:  "reused segment file never activated on disk",
}

func (k RepairKind) String() string {
	if int(k) < len(repairNames) && repairNames[k] != "" {
		return repairNames[k]
	}
	return fmt.Sprintf("RepairKind(%d)", uint8(k))
}

// Repair is one thing Open fixed after a crash. A repair of a damaged range
// is a view of the damage readers meet there (ring.Damage): what the range
// is, and its cause, ring's damage model says, for Open as for readers.
type Repair struct {
	Path   string // segment file
	Offset int64  // where the repaired range starts
	Length int64  // its length in bytes
	Kind   RepairKind
	Seq    uint64 // sequence number expected at Offset (0 where unknown)
	Lost   uint64 // sequence numbers lost with it (records that were never complete, or damaged)
	Err    error  // what was found there
}

// ErrPowerLoss is the cause of what Open repairs in a log whose last
// writer ran before the machine restarted (a power loss, a kernel crash)
// and did not close it: what that writer had written and not flushed may
// never have reached the disk. Zeros where records were reserved are then
// records lost (their Write may have returned, under a flush policy that
// had not flushed them yet), not writes that never completed: Open pads
// them as damage, and readers count them as lost.
//
// Open tells a restart from a crash of the writer process by the lock
// file, which each writer fills with its pid and the kernel's boot id and
// never fsyncs: after a crash of the process, in the same boot, it names
// this boot (the page cache, and every record in it, survived); after a
// restart it names another boot, or nothing.
var ErrPowerLoss = ring.ErrPowerLoss

func (r Repair) String() string {
	s := fmt.Sprintf("%s: %s at offset %d (%d bytes)", r.Path, r.Kind, r.Offset, r.Length)
	if r.Seq > 0 {
		s += fmt.Sprintf(", sequence %d", r.Seq)
	}
	if r.Lost > 0 {
		s += fmt.Sprintf(", %d record(s) lost", r.Lost)
	}
	if r.Err != nil {
		s += ": " + r.Err.Error()
	}
	return s
}

// Recovery returns what Open repaired: nothing after a clean Close.
func (w *Writer) Recovery() []Repair {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Repair(nil), w.recovery...)
}

// recover finds the end of the log in w.dir, repairs what a crash left, and
// returns the segment to append to.
func (w *Writer) recover() (*segment, error) {
	prev := w.lock.Previous()
	w.restarted = prev.Boot == "" || prev.Boot != fileutil.BootID()
	l, err := rotate.List(w.dir)
	if err != nil {
		return nil, fmt.Errorf("mmaplog: %w", err)
	}
	if len(l.Obstacles) > 0 {
		return nil, fmt.Errorf("mmaplog: %s is not a regular file, and the writer creates files by that name: remove it (or use another directory)", strings.Join(l.Obstacles, ", "))
	}
	// Temporary files are segments whose preparation or compression a
	// crash interrupted: they never held records.
	for _, t := range l.Temp {
		if err := os.Remove(t); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("mmaplog: remove leftover temporary file: %w", err)
		}
		w.recovery = append(w.recovery, Repair{Path: t, Kind: RepairTempFile})
	}
	segs, err := w.removeUnused(l.Segments)
	if err != nil {
		return nil, err
	}
	if len(segs) == 0 {
		if w.logID, err = newLogID(); err != nil {
			return nil, err
		}
		if len(l.Segments) > 0 {
			w.powerLossEnd(w.dir, 0, 1, ring.StateOpen)
		}
		return w.newSegment(1, 1)
	}
	if err := w.repairRolled(segs); err != nil {
		return nil, err
	}
	if last := segs[len(segs)-1]; last.Compressed {
		return w.continueAfterCompressed(last)
	}
	return w.continueLast(segs[len(segs)-1])
}

// removeUnused removes the segments at the end of segs that were prepared
// but never activated: they hold nothing. So does the file of an older
// segment reused for a new one whose header never reached the disk (a power
// loss before its first flush). It returns the segments left.
func (w *Writer) removeUnused(segs []rotate.FileInfo) ([]rotate.FileInfo, error) {
	logID, _ := logIDOf(segs)
	for len(segs) > 0 {
		last := segs[len(segs)-1]
		if last.Compressed {
			break
		}
		r := Repair{Path: last.Path, Kind: RepairUnused, Length: last.Size}
		if !notStarted(last.Path) {
			h, ok := staleHeader(last, logID)
			if !ok {
				break
			}
			r.Kind = RepairStaleReuse
			r.Err = &ring.CorruptionError{Path: last.Path, Offset: ring.OffSegment, Err: fmt.Errorf(
				"header names segment %d of this log, the file name says %d: the file was reused for segment %d, whose header never reached the disk (%w)",
				h.Segment, last.Num, last.Num, ErrPowerLoss)}
		}
		if err := os.Remove(last.Path); err != nil {
			return nil, fmt.Errorf("mmaplog: remove unused segment: %w", err)
		}
		w.recovery = append(w.recovery, r)
		segs = segs[:len(segs)-1]
	}
	return segs, nil
}

// repairRolled repairs the rolled segments (all of segs but the last) that
// were never sealed: they may hold holes left by goroutines that were
// writing when the process died. A damaged one does not stop the log:
// readers report it, and the writer leaves it as it is.
func (w *Writer) repairRolled(segs []rotate.FileInfo) error {
	for i, fi := range segs[:len(segs)-1] {
		if fi.Compressed {
			continue
		}
		if st, err := rotate.PeekState(fi); err == nil && st == ring.StateSealed {
			continue
		}
		seg, h, truncated, err := rotate.OpenRepair(fi)
		if err != nil {
			w.recovery = append(w.recovery, Repair{Path: fi.Path, Kind: RepairLeftDamaged, Err: err})
			continue
		}
		if !truncated {
			var next uint64 // the next segment's first sequence number, if it tells
			if nh, err := rotate.PeekHeader(segs[i+1]); err == nil {
				next = nh.FirstSeq
			}
			_, err = w.repair(seg, h, false, next)
		}
		seg.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// continueAfterCompressed starts a new segment after last, a compressed
// segment at the end of the log.
func (w *Writer) continueAfterCompressed(last rotate.FileInfo) (*segment, error) {
	v, err := rotate.OpenView(last)
	if err != nil {
		return nil, fmt.Errorf("mmaplog: the last segment is damaged: %w (move it away to start a new segment)", err)
	}
	res, err := scanGuarded(v.Data, v.Header.FirstSeq, v.Path)
	w.logID = v.Header.LogID
	v.Close()
	if err != nil {
		return nil, fmt.Errorf("mmaplog: %w", err)
	}
	w.powerLossEnd(last.Path, int64(res.End), res.NextSeq, ring.StateSealed)
	w.raiseClockFloor(max(res.LastTime, v.Header.Created))
	return w.newSegment(last.Num+1, res.NextSeq)
}

// continueLast repairs last, the last segment of the log, and appends to it
// after its last valid record, or starts a new segment after it when it is
// full or truncated.
func (w *Writer) continueLast(last rotate.FileInfo) (*segment, error) {
	seg, h, truncated, err := rotate.OpenRepair(last)
	if err != nil {
		advice := "move the file out of the log directory to go on (its records are then lost)"
		if errors.Is(err, ring.ErrVersion) {
			advice = "it was written by another version of mmaplog: use that version, or move the directory away"
		}
		return nil, fmt.Errorf("mmaplog: cannot continue the log: %w; %s", err, advice)
	}
	w.logID = h.LogID
	var state ring.State
	if err := fault.Guard(seg.Path, func() error { state = ring.LoadState(seg.Data); return nil }); err != nil {
		seg.Close()
		return nil, fmt.Errorf("mmaplog: %w", err)
	}
	if truncated {
		return w.continueAfterTruncated(last, seg, h, state)
	}
	res, err := w.repair(seg, h, true, 0)
	if err != nil {
		seg.Close()
		return nil, err
	}
	w.powerLossEnd(last.Path, int64(res.DataEnd), res.NextSeq, state)
	w.raiseClockFloor(max(res.LastTime, h.Created))
	if res.Full {
		ring.StoreState(seg.Data, ring.StateSealed)
		seg.Close()
		return w.newSegment(last.Num+1, res.NextSeq)
	}
	r, err := ring.New(seg.Data, res.End, h.FirstSeq, res.NextSeq-h.FirstSeq)
	if err != nil {
		seg.Close()
		return nil, fmt.Errorf("mmaplog: %s: %w", seg.Path, err)
	}
	// This writer appends here now: the segment is open again, and a
	// reader that died asleep in it must not cost it wake-ups.
	ring.StoreState(seg.Data, ring.StateOpen)
	ring.Disarm(seg.Data)
	if !w.opts.NoPrefault {
		page := fileutil.PageSize()
		fileutil.PrefaultWrite(seg.Data[res.End/page*page:])
	}
	w.syncedBelow = last.Num
	return w.newSegmentState(seg, r, res.End), nil
}

// continueAfterTruncated handles a last segment that someone truncated:
// what is left stays for readers, and the log goes on in a new segment.
func (w *Writer) continueAfterTruncated(last rotate.FileInfo, seg *rotate.Segment, h ring.Header, state ring.State) (*segment, error) {
	res, err := scanGuarded(seg.Data, h.FirstSeq, seg.Path)
	if err == nil {
		err = fault.Guard(seg.Path, func() error { ring.StoreState(seg.Data, ring.StateSealed); return nil })
	}
	seg.Close()
	if err != nil {
		return nil, fmt.Errorf("mmaplog: %w", err)
	}
	w.recovery = append(w.recovery, Repair{Path: last.Path, Offset: int64(len(seg.Data)), Length: int64(h.Size) - int64(len(seg.Data)), Kind: RepairTruncated, Seq: res.NextSeq,
		Err: &ring.CorruptionError{Path: last.Path, Offset: int64(len(seg.Data)), Err: fmt.Errorf("%w: file is %d bytes, its header says %d; continuing in a new segment", ring.ErrShort, len(seg.Data), h.Size)}})
	w.powerLossEnd(last.Path, int64(res.End), res.NextSeq, state)
	w.raiseClockFloor(max(res.LastTime, h.Created))
	return w.newSegment(last.Num+1, res.NextSeq)
}

// newSegment creates and activates segment num with first sequence number
// firstSeq, synchronously (at Open).
func (w *Writer) newSegment(num, firstSeq uint64) (*segment, error) {
	seg, err := w.life.Create(num, firstSeq, w.logID)
	if err != nil {
		return nil, fmt.Errorf("mmaplog: %w", err)
	}
	w.syncedBelow = num
	return seg, nil
}

// repair walks a writable segment (ring.Walker, the format's one decoder
// loop) and turns damage into padding: holes left by writes that never
// completed, corrupt records followed by valid ones, and (for the last
// segment) garbage after the last valid record, which is zeroed. A rolled
// segment that does not end with padding gets it, and is marked sealed.
// Repairs are flushed to disk before the log is used. next is the first
// sequence number of the segment after a rolled one (0 if unknown).
//
// What each range is, and so the padding's cause and the records it cost,
// ring's classification says (ring.Facts): after a restart of the machine
// (w.restarted) zeros are not writes that never completed but pages that
// never reached the disk, padded as damage, so that readers count the
// records there as lost.
func (w *Writer) repair(seg *rotate.Segment, h ring.Header, last bool, next uint64) (res ring.ScanResult, err error) {
	err = fault.Guard(seg.Path, func() error {
		var err error
		res, err = w.repairGuarded(seg, h, last, next)
		return err
	})
	return res, err
}

// repairs is what repairGuarded changed in a segment: the byte range to
// flush.
type repairs struct {
	data   []byte
	now    int64 // the time stamp of the padding records written
	lo, hi int
}

func (p *repairs) touched(from, to int) { p.lo, p.hi = min(p.lo, from), max(p.hi, to) }

func (w *Writer) repairGuarded(seg *rotate.Segment, h ring.Header, last bool, next uint64) (ring.ScanResult, error) {
	data := seg.Data
	// The writer that crashed holds no lock any more: this one does.
	facts := ring.Facts{Finished: ring.LoadState(data).Finished(), PowerLoss: w.restarted}
	walk := ring.NewWalker(h.FirstSeq)
	walk.Path = seg.Path
	res := walk.Scan(data, nil)
	p := &repairs{data: data, now: w.opts.now().UnixNano(), lo: len(data)}
	for _, d := range res.Damage {
		if err := w.padDamage(p, facts.Classify(d)); err != nil {
			return res, err
		}
	}
	if res.TailFrom > 0 {
		clear(data[res.TailFrom:res.TailTo])
		p.touched(res.TailFrom, res.TailTo)
		d, _ := facts.Rest(ring.Rest{Path: seg.Path, From: int64(res.TailFrom), DirtyTo: int64(res.TailTo), Seq: res.NextSeq, Cause: res.TailDamage, Rolled: !last})
		w.recovery = append(w.recovery, repairOf(d, RepairTornTail, int64(res.TailTo-res.TailFrom)))
	}
	if !last && !res.Full {
		w.closeRolled(p, seg.Path, h.Segment, res, facts, next)
		res.Full = true
	}
	if p.hi > p.lo {
		if err := fileutil.Msync(data, p.lo, p.hi-p.lo, true); err != nil {
			return res, fmt.Errorf("mmaplog: flush repairs of %s: %w", seg.Path, err)
		}
	}
	if !last {
		ring.StoreState(data, ring.StateSealed)
	}
	return res, nil
}

// padDamage writes a padding record over d, a damaged range that a valid
// record follows, saying whether the sequence numbers it took were records
// (lost) or writes that never completed.
func (w *Writer) padDamage(p *repairs, d ring.Damage) error {
	if d.To-d.From < ring.RecordHeaderSize {
		return &ring.CorruptionError{Path: d.Path, Offset: d.From, Err: fmt.Errorf("damaged range of %d bytes is too short to pad: %w", d.To-d.From, d.Err)}
	}
	cause := ring.PadDamaged
	if d.Kind == ring.DamageUnfinished {
		cause = ring.PadUnfinished
	}
	ring.PutRepairPadding(p.data[d.From:d.To], d.Seq, p.now, cause)
	p.touched(int(d.From), int(d.From)+ring.RecordHeaderSize)
	kind := RepairCorrupt
	if d.Hole {
		kind = RepairHole
	}
	w.recovery = append(w.recovery, repairOf(d, kind, d.To-d.From))
	return nil
}

// closeRolled closes a rolled segment (number num) whose data stops early,
// at res.End, with padding, so that readers move on to the next segment,
// whose first sequence number next (0: unknown) says what the sequence
// numbers in between were: writes its crashed writer never finished, or
// records lost (ring.Jump, as readers count them).
func (w *Writer) closeRolled(p *repairs, path string, num uint64, res ring.ScanResult, facts ring.Facts, next uint64) {
	ending := facts.EarlyEnd()
	if res.TailDamage != nil {
		ending = ring.EndDamaged
	}
	if len(p.data)-res.End >= ring.RecordHeaderSize {
		cause := ring.PadDamaged
		if ending == ring.EndUnfinished {
			cause = ring.PadUnfinished
		}
		ring.PutRepairPadding(p.data[res.End:], res.NextSeq, p.now, cause)
		p.touched(res.End, res.End+ring.RecordHeaderSize)
	}
	r := Repair{Path: path, Offset: int64(res.End), Length: int64(len(p.data) - res.End), Kind: RepairUnclosed, Seq: res.NextSeq}
	if next > res.NextSeq {
		j := ring.Jump{Path: path, Num: num + 1, Expect: res.NextSeq, First: next, Adjacent: true, Prev: ending}.Damage()
		r.Lost, r.Err = j.Lost, j.Err
	}
	w.recovery = append(w.recovery, r)
}

// repairOf is the Repair of kind that Open made over d, length bytes: a
// view of the damage, whose Lost counts the sequence numbers the range
// took (records that were never complete, or damaged).
func repairOf(d ring.Damage, kind RepairKind, length int64) Repair {
	return Repair{Path: d.Path, Offset: d.From, Length: length, Kind: kind, Seq: d.Seq, Lost: d.Span(), Err: d.Err}
}

func scanGuarded(b []byte, firstSeq uint64, path string) (res ring.ScanResult, err error) {
	err = fault.Guard(path, func() error {
		w := ring.NewWalker(firstSeq)
		w.Path = path
		res = w.Scan(b, nil)
		return nil
	})
	return res, err
}

// notStarted reports whether a segment file's magic is zero: a segment
// prepared by a writer that never activated it (activation stores the magic
// last, and no record is appended before it), so it holds nothing. A file
// shorter than the magic and all zero counts too.
func notStarted(path string) bool {
	f, err := fileutil.OpenNoFollow(path, false)
	if err != nil {
		return false
	}
	defer f.Close()
	var m [8]byte
	n, _ := f.ReadAt(m[:], 0)
	for _, b := range m[:n] {
		if b != 0 {
			return false
		}
	}
	return true
}

// powerLossEnd reports, after a restart of the machine, where the log
// ends: what its last writer wrote after that point and had not flushed is
// lost, and nothing tells how many records that was. A log its writer
// closed (state closed) lost nothing; a log nobody had written to before
// has nothing to lose.
func (w *Writer) powerLossEnd(path string, off int64, next uint64, state ring.State) {
	if !w.restarted || state == ring.StateClosed {
		return
	}
	w.recovery = append(w.recovery, Repair{Path: path, Offset: off, Kind: RepairPowerLoss, Seq: next,
		Err: fmt.Errorf("%w: the log ends at sequence %d; records written after it that were not flushed are lost (the flush policy bounds how many)", ErrPowerLoss, next)})
}

// logIDOf returns the log id of the first segment whose header is valid.
func logIDOf(segs []rotate.FileInfo) ([16]byte, bool) {
	for _, fi := range segs {
		if h, err := rotate.PeekHeader(fi); err == nil {
			return h.LogID, true
		}
	}
	return [16]byte{}, false
}

// staleHeader reports whether the plain segment file fi holds the valid
// header of an older segment of the log logID: a file reused for segment
// fi.Num whose new header never reached the disk.
func staleHeader(fi rotate.FileInfo, logID [16]byte) (ring.Header, bool) {
	f, err := fileutil.OpenNoFollow(fi.Path, false)
	if err != nil {
		return ring.Header{}, false
	}
	defer f.Close()
	b := make([]byte, ring.HeaderSize)
	if _, err := f.ReadAt(b, 0); err != nil {
		return ring.Header{}, false
	}
	h, err := ring.ParseHeader(b, false)
	if err != nil || h.Segment >= fi.Num || h.LogID != logID || logID == [16]byte{} {
		return h, false
	}
	return h, true
}
