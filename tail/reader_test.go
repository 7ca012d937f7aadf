package tail_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mmaplog/mmaplog/internal/fileutil"
	"github.com/mmaplog/mmaplog/internal/frozenwriter"
	"github.com/mmaplog/mmaplog/mmaplog"
	"github.com/mmaplog/mmaplog/ring"
	"github.com/mmaplog/mmaplog/rotate"
	"github.com/mmaplog/mmaplog/tail"
)

func TestMain(m *testing.M) {
	if os.Getenv("MMAPLOG_BENCH_WRITER") != "" {
		os.Exit(benchWriter())
	}
	if path := os.Getenv(wakerEnv); path != "" {
		os.Exit(wakerChild(path))
	}
	if dir := os.Getenv(followerEnv); dir != "" {
		os.Exit(followerChild(dir))
	}
	if dir := os.Getenv(readerEnv); dir != "" {
		os.Exit(readerChild(dir))
	}
	if dir := os.Getenv(frozenwriter.Env); dir != "" {
		os.Exit(frozenwriter.Child(dir))
	}
	goleak.VerifyTestMain(m)
}

// readCase is one row of the table that runs against the static Reader
// (after the writer is done) and the following Reader (while it writes).
type readCase struct {
	name    string
	opts    mmaplog.Options
	n       int                   // records written
	workers int                   // goroutines writing (default 1)
	size    func(i int) int       // payload size of record i
	from    func(n int) uint64    // Options.FromSeq
	fromEnd bool                  // Options.FromEnd, with records written before the reader starts
	pre     int                   // records written before the reader opens (live)
	lost    func(n int) uint64    // records the reader must report lost
	check   func(*testing.T, int) // extra checks on the directory after
	spin    time.Duration         // tail.Options.Spin of the following Reader
}

func readCases() []readCase {
	small := func(int) int { return 40 }
	return []readCase{
		{name: "one segment", n: 500, size: small},
		{name: "empty payloads", n: 300, size: func(int) int { return 0 }},
		{name: "rotations", opts: mmaplog.Options{SegmentSize: 16 << 10, MaxBackups: -1}, n: 3000, size: func(i int) int { return 10 + i%300 }},
		{name: "compressed rolled segments", opts: mmaplog.Options{SegmentSize: 16 << 10, MaxBackups: -1, Compress: true}, n: 3000, size: func(i int) int { return 10 + i%300 }},
		{name: "compressed segments larger than the read window", opts: mmaplog.Options{SegmentSize: 4 << 20, MaxBackups: -1, Compress: true}, n: 20000, size: func(i int) int { return 10 + (i*7919)%1200 }},
		{name: "concurrent writers", opts: mmaplog.Options{SegmentSize: 32 << 10, MaxBackups: -1}, n: 8000, workers: 8, size: func(i int) int { return 16 + i%200 }},
		{name: "spinning follower", opts: mmaplog.Options{SegmentSize: 32 << 10, MaxBackups: -1}, n: 8000, workers: 2, size: func(i int) int { return 16 + i%200 }, spin: 100 * time.Microsecond},
		{name: "large records", opts: mmaplog.Options{SegmentSize: 64 << 10, MaxBackups: -1}, n: 200, size: func(i int) int { return 20000 + i }},
		{name: "from a sequence number", opts: mmaplog.Options{SegmentSize: 16 << 10, MaxBackups: -1}, n: 2000, size: small, from: func(int) uint64 { return 777 }},
		{name: "from the end", opts: mmaplog.Options{SegmentSize: 16 << 10, MaxBackups: -1}, n: 2000, pre: 1000, fromEnd: true, size: small},
		{name: "retention removed unread records", opts: mmaplog.Options{SegmentSize: 16 << 10, MaxBackups: 1}, n: 3000, pre: 3000, size: small,
			from: func(int) uint64 { return 1 },
			lost: nil, // computed from the directory: everything before the oldest segment
		},
	}
}

// payload makes record i: its index, then filler that depends on it.
func payload(i, n int) []byte {
	b := make([]byte, max(n, 8))
	binary.LittleEndian.PutUint64(b, uint64(i))
	for j := 8; j < len(b); j++ {
		b[j] = byte(i + j)
	}
	return b[:n]
}

func checkPayload(t *testing.T, c readCase, rec tail.Record) {
	t.Helper()
	i := int(rec.Seq) - 1
	want := payload(i, c.size(i))
	if c.workers > 1 {
		// Sequence order is reservation order, not index order.
		if len(rec.Payload) >= 8 {
			i = int(binary.LittleEndian.Uint64(rec.Payload))
			want = payload(i, c.size(i))
		}
	}
	if string(rec.Payload) != string(want) {
		t.Fatalf("record %d: payload of %d bytes differs from what was written (%d bytes)", rec.Seq, len(rec.Payload), len(want))
	}
}

// write appends records [from, to) of case c with its workers.
func write(t *testing.T, w *mmaplog.Writer, c readCase, from, to int) {
	workers := max(c.workers, 1)
	var wg sync.WaitGroup
	for g := 0; g < workers; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := from + g; i < to; i += workers {
				if _, err := w.Append(mmaplog.LevelInfo, payload(i, c.size(i))); err != nil {
					t.Errorf("append %d: %v", i, err)
					return
				}
			}
		}(g)
	}
	wg.Wait()
}

// oldestFirstSeq is the first sequence number still in the log.
func oldestFirstSeq(t *testing.T, dir string) uint64 {
	l, err := rotate.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	v, err := rotate.OpenView(l.Segments[0])
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	return v.Header.FirstSeq
}

func TestReaderStatic(t *testing.T) {
	for _, c := range readCases() {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			w, err := mmaplog.Open(dir, &c.opts)
			if err != nil {
				t.Fatal(err)
			}
			write(t, w, c, 0, c.n)
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if c.opts.Compress {
				// The case is about compressed segments: make sure there are.
				l, _ := rotate.List(dir)
				z := 0
				for _, s := range l.Segments {
					if s.Compressed {
						z++
					}
				}
				if z == 0 || z != len(l.Segments)-1 {
					t.Fatalf("%d of %d segments compressed, want all but the last", z, len(l.Segments))
				}
			}
			o := &tail.Options{}
			if c.from != nil {
				o.FromSeq = c.from(c.n)
			}
			if c.fromEnd {
				o.FromEnd = true
			}
			r, err := tail.Open(dir, o)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			first := uint64(1)
			if o.FromSeq > 0 {
				first = o.FromSeq
			}
			var lost uint64
			if c.name == "retention removed unread records" {
				first = oldestFirstSeq(t, dir)
				lost = first - 1
			}
			if c.fromEnd {
				first = uint64(c.n) + 1
			}
			got := readAll(t, c, r, first, uint64(c.n), false)
			if got != uint64(c.n)-first+1 {
				t.Fatalf("read %d records, want %d", got, uint64(c.n)-first+1)
			}
			if r.Lost() != lost {
				t.Fatalf("lost %d, want %d (damage %v)", r.Lost(), lost, r.Damage())
			}
			if lost == 0 && len(r.Damage()) != 0 {
				t.Fatalf("unexpected damage: %v", r.Damage())
			}
		})
	}
}

func TestReaderFollow(t *testing.T) {
	for _, c := range readCases() {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			w, err := mmaplog.Open(dir, &c.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			write(t, w, c, 0, c.pre)
			if c.name == "retention removed unread records" {
				waitRetention(t, dir)
			}
			o := &tail.Options{Follow: true, Spin: c.spin}
			if c.from != nil {
				o.FromSeq = c.from(c.n)
			}
			o.FromEnd = c.fromEnd
			r, err := tail.Open(dir, o)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if c.name == "retention removed unread records" {
				// The writer's retention may still be removing
				// segments while the reader reads, ahead of it or
				// behind it: every record is read or reported lost.
				readRetained(t, c, r)
				return
			}
			first := uint64(1)
			if o.FromSeq > 0 {
				first = o.FromSeq
			}
			if c.fromEnd {
				first = uint64(c.pre) + 1
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				write(t, w, c, c.pre, c.n)
			}()
			got := readAll(t, c, r, first, uint64(c.n), true)
			<-done
			if got != uint64(c.n)-first+1 {
				t.Fatalf("read %d records, want %d", got, uint64(c.n)-first+1)
			}
			if r.Lost() != 0 || len(r.Damage()) != 0 {
				t.Fatalf("lost %d, want 0 (damage %v)", r.Lost(), r.Damage())
			}
		})
	}
}

// readAll reads until the record with sequence number last, checking that
// the sequence numbers run from first without a gap, and returns the count.
func readAll(t *testing.T, c readCase, r *tail.Reader, first, last uint64, follow bool) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	want := first // 0: whatever comes first
	var n uint64
	for want <= last {
		if !r.Next() {
			if err := r.Err(); err != nil {
				t.Fatalf("after %d records: %v", n, err)
			}
			if !follow {
				break
			}
			if err := r.Wait(ctx); err != nil {
				t.Fatalf("waiting for record %d: %v (damage %v)", want, err, r.Damage())
			}
			continue
		}
		rec := r.Record()
		if want == 0 {
			want = rec.Seq
		}
		if rec.Seq != want {
			t.Fatalf("record %d, want %d (damage %v)", rec.Seq, want, r.Damage())
		}
		checkPayload(t, c, rec)
		want++
		n++
	}
	if !follow && r.Next() {
		t.Fatalf("record %d after the last one", r.Record().Seq)
	}
	return n
}

// readRetained follows a log of c.n records (all written) from its first
// record while retention may still remove segments, and checks that every
// record is either read, intact and in order, or reported lost as removed by
// retention: each jump in sequence numbers is exactly one Damage of kind
// DamageRemoved, and the records lost add up to those not read.
func readRetained(t *testing.T, c readCase, r *tail.Reader) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	last := uint64(c.n)
	want, jumps := uint64(1), 0
	var got uint64
	for want <= last {
		if !r.Next() {
			if err := r.Err(); err != nil {
				t.Fatalf("after %d records: %v", got, err)
			}
			if err := r.Wait(ctx); err != nil {
				t.Fatalf("waiting for record %d: %v (damage %v)", want, err, r.Damage())
			}
			continue
		}
		rec := r.Record()
		if rec.Seq < want {
			t.Fatalf("record %d, want %d or later (damage %v)", rec.Seq, want, r.Damage())
		}
		if rec.Seq > want {
			ds := r.Damage()
			if len(ds) != jumps+1 {
				t.Fatalf("records %d to %d missing, reported by %d damages, want one (damage %v)", want, rec.Seq-1, len(ds)-jumps, ds)
			}
			d := ds[jumps]
			if d.Kind != tail.DamageRemoved || d.Seq != want || d.Resume != rec.Seq || d.Lost != rec.Seq-want {
				t.Fatalf("records %d to %d missing, reported as %v (%v, lost %d, from %d resuming at %d)", want, rec.Seq-1, d, d.Kind, d.Lost, d.Seq, d.Resume)
			}
			jumps++
		}
		checkPayload(t, c, rec)
		want = rec.Seq + 1
		got++
	}
	if len(r.Damage()) != jumps {
		t.Fatalf("damage without a jump in what was read: %v", r.Damage())
	}
	if jumps == 0 {
		t.Fatal("retention removed nothing the reader asked for: the case wants it to")
	}
	if lost := r.Lost(); got+lost != last {
		t.Fatalf("read %d and lost %d of %d records", got, lost, last)
	}
}

// TestFollowAcrossWriterRestart: the writer closes (the segment stays open,
// without padding) and a new writer continues the same log; a following
// reader reads on without a gap.
func TestFollowAcrossWriterRestart(t *testing.T) {
	dir := t.TempDir()
	opts := &mmaplog.Options{SegmentSize: 16 << 10, MaxBackups: -1}
	c := readCase{size: func(i int) int { return 50 }}
	r, err := tail.Open(dir, &tail.Options{Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for round := 0; round < 5; round++ {
			w, err := mmaplog.Open(dir, opts)
			if err != nil {
				t.Error(err)
				return
			}
			write(t, w, c, round*400, (round+1)*400)
			w.Close()
		}
	}()
	if n := readAll(t, c, r, 1, 2000, true); n != 2000 {
		t.Fatalf("read %d", n)
	}
	<-done
	if len(r.Damage()) != 0 {
		t.Fatalf("damage: %v", r.Damage())
	}
}

// TestFollowHole: a zero length word with records after it (record 5) in a
// segment that a writer holding the log's lock appends to (its state open):
// a record the writer reserved and has not written. The follower reads 1 to
// 4 and waits there, however long it takes, reporting the stall after
// HoleWait and again as it goes on. Once the writer has finished the
// segment (its state says every record reserved in it is written), the zero
// word is a hole, though the writer still holds the lock: the follower skips
// it, one record lost, ends the stall report and reads 6 to 10.
func TestFollowHole(t *testing.T) {
	dir := t.TempDir()
	w, err := mmaplog.Open(dir, &mmaplog.Options{SegmentSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		w.Append(0, payload(i, 40))
	}
	w.Close()
	// The writer continues the log (the state goes back to open), and
	// record 5 is one it has reserved and not written: a zero length word.
	lock, err := fileutil.TryLock(filepath.Join(dir, rotate.LockName))
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release()
	path := filepath.Join(dir, rotate.SegmentName(1))
	seg, err := rotate.OpenWritable(path, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer seg.Close()
	off := ring.HeaderSize + 4*ring.RecordSize(40)
	if rec, kind, _ := ring.Decode(seg.Data, off); kind != ring.KindRecord || rec.Seq != 5 {
		t.Fatalf("record 5 not at %d: %v %v", off, kind, rec.Seq)
	}
	binary.LittleEndian.PutUint32(seg.Data[off:], 0)
	ring.StoreState(seg.Data, ring.StateOpen)

	const holeWait = 20 * time.Millisecond
	var stalls []tail.Stall
	r, err := tail.Open(dir, &tail.Options{Follow: true, HoleWait: holeWait, OnStall: func(s tail.Stall) { stalls = append(stalls, s) }})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // catches a hang only
	defer cancel()
	var seqs []uint64
	for len(stalls) < 3 { // three looks past record 5, each reported
		if r.Next() {
			if seqs = append(seqs, r.Record().Seq); r.Record().Seq > 4 {
				t.Fatalf("read %v past record 5, which the writer has not written (damage %v)", seqs, r.Damage())
			}
			continue
		}
		if err := r.Wait(ctx); err != nil {
			t.Fatalf("no stall reported: read %v, damage %v", seqs, r.Damage())
		}
	}
	if fmt.Sprint(seqs) != "[1 2 3 4]" || len(r.Damage()) != 0 {
		t.Fatalf("with the writer appending to the segment: read %v, damage %v; want [1 2 3 4] and a wait", seqs, r.Damage())
	}
	for _, s := range stalls {
		if s.Seq != 5 || s.Offset != int64(off) || s.PID != os.Getpid() || s.Over || s.Waited < holeWait {
			t.Fatalf("stall %+v, want record 5 at offset %d, pid %d", s, off, os.Getpid())
		}
	}
	// The writer finishes the segment: the zero word is a hole.
	ring.StoreState(seg.Data, ring.StateClosed)
	for len(seqs) < 9 {
		if r.Next() {
			seqs = append(seqs, r.Record().Seq)
			continue
		}
		if err := r.Wait(ctx); err != nil {
			t.Fatalf("read %v, damage %v: %v", seqs, r.Damage(), err)
		}
	}
	if fmt.Sprint(seqs) != "[1 2 3 4 6 7 8 9 10]" {
		t.Fatalf("read %v", seqs)
	}
	ds := r.Damage()
	if r.Lost() != 1 || len(ds) != 1 || ds[0].Kind != tail.DamageHole || !errors.Is(ds[0].Err, ring.ErrHole) || ds[0].From != int64(off) {
		t.Fatalf("lost %d, damage %v; want one hole at %d, one record lost", r.Lost(), ds, off)
	}
	if last := stalls[len(stalls)-1]; !last.Over || last.Published || last.Seq != 5 {
		t.Fatalf("last stall report %+v, want the wait for 5 over, not written", last)
	}
}

// TestFollowTruncated: a segment truncated under a following reader gives
// damage (a fault turned into an error), never a crash, and the reader goes
// on with the next segment.
func TestFollowTruncated(t *testing.T) {
	dir := t.TempDir()
	w, err := mmaplog.Open(dir, &mmaplog.Options{SegmentSize: 64 << 10, MaxBackups: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	c := readCase{size: func(int) int { return 100 }}
	write(t, w, c, 0, 100)
	r, err := tail.Open(dir, &tail.Options{Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if !r.Next() || r.Record().Seq != 1 {
		t.Fatal("no first record")
	}
	// Someone truncates the active segment to one page.
	if err := os.Truncate(filepath.Join(dir, rotate.SegmentName(1)), 4096); err != nil {
		t.Fatal(err)
	}
	n := 1
	for r.Next() {
		n++
	}
	if r.Err() != nil {
		t.Fatal(r.Err())
	}
	if len(r.Damage()) == 0 {
		t.Fatalf("read %d records past a truncation without reporting damage", n)
	}
	t.Logf("read %d records, damage: %v", n, r.Damage())
}

// TestCursor: saved atomically, loaded back, refused for another log.
func TestCursor(t *testing.T) {
	dir := t.TempDir()
	w, err := mmaplog.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		w.Append(0, []byte("x"))
	}
	id := w.LogID()
	w.Close()
	path := tail.CursorPath(dir, "ship")
	if _, err := tail.LoadCursor(path); !errors.Is(err, tail.ErrNoCursor) {
		t.Fatalf("missing cursor: %v", err)
	}
	c := tail.Cursor{LogID: id, NextSeq: 6, Segment: 1, Offset: 1000, Time: 42}
	if err := c.Save(path); err != nil {
		t.Fatal(err)
	}
	got, err := tail.LoadCursor(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.LogID != id || got.NextSeq != 6 || got.Segment != 1 || got.Offset != 1000 || got.Time != 42 || got.Saved == 0 {
		t.Fatalf("loaded %+v", got)
	}
	o := got.Options()
	r, err := tail.Open(dir, &o)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Next() || r.Record().Seq != 6 {
		t.Fatalf("reading from the cursor: %v", r.Err())
	}
	r.Close()
	// A cursor of another log is refused.
	other := c
	other.LogID[0] ^= 1
	o = other.Options()
	r, err = tail.Open(dir, &o)
	if err != nil {
		t.Fatal(err)
	}
	if r.Next() || !errors.Is(r.Err(), tail.ErrOtherLog) {
		t.Fatalf("another log's cursor: %v", r.Err())
	}
	r.Close()
	if err := other.Check(id, path); !errors.Is(err, tail.ErrOtherLog) {
		t.Fatalf("Check: %v", err)
	}
	// A damaged file is an error naming it; listing shows it.
	os.WriteFile(tail.CursorPath(dir, "bad"), []byte("{\"log_id\":"), 0o600)
	if _, err := tail.LoadCursor(tail.CursorPath(dir, "bad")); err == nil {
		t.Fatal("damaged cursor loaded")
	}
	cs, err := tail.Cursors(dir)
	if err != nil || len(cs) != 2 || cs[0].Err == nil || cs[1].Err != nil || cs[1].Cursor.NextSeq != 6 {
		t.Fatalf("Cursors: %+v %v", cs, err)
	}
	// The cursors directory does not disturb readers of the log.
	if rep, err := tail.Verify(dir); err != nil || !rep.Clean() || len(rep.Notes) != 0 {
		t.Fatalf("verify with cursors: %v %+v", err, rep)
	}
}

// TestEmptyTrailingSegment: a writer killed while its preparer had created
// the next segment file but not preallocated it leaves an empty file. A
// follower waits at it without reporting damage, and the next writer
// recovers the log and goes on.
func TestEmptyTrailingSegment(t *testing.T) {
	dir := t.TempDir()
	w, err := mmaplog.Open(dir, &mmaplog.Options{SegmentSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	c := readCase{size: func(int) int { return 30 }}
	write(t, w, c, 0, 10)
	w.Close()
	if err := os.WriteFile(filepath.Join(dir, rotate.SegmentName(2)), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := tail.Open(dir, &tail.Options{Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if n := readAll(t, c, r, 1, 10, true); n != 10 || len(r.Damage()) != 0 {
		t.Fatalf("read %d, damage %v", n, r.Damage())
	}
	w, err = mmaplog.Open(dir, &mmaplog.Options{SegmentSize: 64 << 10})
	if err != nil {
		t.Fatalf("reopening a log with an empty trailing segment file: %v", err)
	}
	write(t, w, c, 10, 20)
	w.Close()
	if n := readAll(t, c, r, 11, 20, true); n != 10 || len(r.Damage()) != 0 {
		t.Fatalf("read %d, damage %v", n, r.Damage())
	}
}

// TestFollowRetentionWhileReading: a follower stops reading for a while in
// the middle of the log; retention removes segments it had not read; when
// it goes on, it reports exactly the records it lost and reads on.
func TestFollowRetentionWhileReading(t *testing.T) {
	dir := t.TempDir()
	w, err := mmaplog.Open(dir, &mmaplog.Options{SegmentSize: 16 << 10, MaxBackups: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	c := readCase{size: func(int) int { return 100 }}
	write(t, w, c, 0, 50)
	r, err := tail.Open(dir, &tail.Options{Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if n := readAll(t, c, r, 1, 20, true); n != 20 {
		t.Fatalf("read %d", n)
	}
	// The reader pauses inside segment 1 (still mapped); the writer goes
	// through many segments and retention removes all but the last few.
	write(t, w, c, 50, 3000)
	waitRetentionDone(t, dir, 1)
	var seqs []uint64
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for len(seqs) == 0 || seqs[len(seqs)-1] < 3000 {
		if r.Next() {
			seqs = append(seqs, r.Record().Seq)
			continue
		}
		if err := r.Err(); err != nil {
			t.Fatal(err)
		}
		if err := r.Wait(ctx); err != nil {
			t.Fatalf("stuck after %d records: %v", len(seqs), err)
		}
	}
	// The rest of the mapped segment 1 is still read; then one gap, up to
	// the oldest segment retention kept.
	gaps := 0
	for i := 1; i < len(seqs); i++ {
		if seqs[i] != seqs[i-1]+1 {
			gaps++
		}
	}
	if seqs[0] != 21 || gaps != 1 {
		t.Fatalf("read from %d with %d gaps, want from 21 with one", seqs[0], gaps)
	}
	missing := uint64(3000-20) - uint64(len(seqs))
	if r.Lost() != missing || missing == 0 {
		t.Fatalf("read %d more records, lost %d reported, %d actually missing (damage %v)", len(seqs), r.Lost(), missing, r.Damage())
	}
	t.Logf("read %d, lost %d as reported: %v", len(seqs), r.Lost(), r.Damage())
}

// TestCompressedHole: a compressed rolled segment holding a hole (a record
// that was reserved and never written before the segment was compressed):
// the streaming reader skips it, proving the next record, and reports one
// record lost.
func TestCompressedHole(t *testing.T) {
	dir := t.TempDir()
	w, err := mmaplog.Open(dir, &mmaplog.Options{SegmentSize: 64 << 10, MaxBackups: -1})
	if err != nil {
		t.Fatal(err)
	}
	c := readCase{size: func(int) int { return 100 }}
	write(t, w, c, 0, 2000)
	w.Close()
	l, err := rotate.List(dir)
	if err != nil || len(l.Segments) < 3 {
		t.Fatalf("%d segments, %v", len(l.Segments), err)
	}
	seg, err := rotate.OpenWritable(l.Segments[0].Path, l.Segments[0].Num)
	if err != nil {
		t.Fatal(err)
	}
	off := ring.HeaderSize + 300*ring.RecordSize(100)
	if rec, kind, _ := ring.Decode(seg.Data, off); kind != ring.KindRecord || rec.Seq != 301 {
		t.Fatalf("record 301 not at %d", off)
	}
	binary.LittleEndian.PutUint32(seg.Data[off:], 0)
	seg.Close()
	if _, err := rotate.CompressSegment(l.Segments[0]); err != nil {
		t.Fatal(err)
	}
	r, err := tail.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	n := 0
	for r.Next() {
		if r.Record().Seq == 301 {
			t.Fatal("read the record that was turned into a hole")
		}
		checkPayload(t, c, r.Record())
		n++
	}
	if r.Err() != nil || n != 1999 || r.Lost() != 1 || len(r.Damage()) != 1 || r.Damage()[0].From != int64(off) {
		t.Fatalf("read %d, lost %d, damage %v, err %v", n, r.Lost(), r.Damage(), r.Err())
	}
}

// TestZeroedSegmentInTheMiddle: a segment whose header is zero while later
// segments hold data is damage, not "not started yet": both readers report
// it, count its records lost, and go on.
func TestZeroedSegmentInTheMiddle(t *testing.T) {
	for _, follow := range []bool{false, true} {
		dir := t.TempDir()
		w, err := mmaplog.Open(dir, &mmaplog.Options{SegmentSize: 16 << 10, MaxBackups: -1})
		if err != nil {
			t.Fatal(err)
		}
		c := readCase{size: func(int) int { return 100 }}
		write(t, w, c, 0, 400)
		w.Close()
		l, _ := rotate.List(dir)
		if len(l.Segments) < 3 {
			t.Fatalf("%d segments", len(l.Segments))
		}
		f, err := os.OpenFile(l.Segments[1].Path, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteAt(make([]byte, ring.HeaderSize), 0)
		f.Close()
		r, err := tail.Open(dir, &tail.Options{Follow: follow})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		var last uint64
		for last < 400 {
			if r.Next() {
				last = r.Record().Seq
				continue
			}
			if r.Err() != nil || !follow || r.Wait(ctx) != nil {
				break
			}
		}
		cancel()
		r.Close()
		if last != 400 || r.Lost() == 0 || len(r.Damage()) != 2 {
			t.Fatalf("follow %v: last %d, lost %d, damage %v", follow, last, r.Lost(), r.Damage())
		}
	}
}

// waitRetention waits until the writer's retention has removed the first
// segments of the log in dir.
func waitRetention(t *testing.T, dir string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute) // catches a hang only
	for {
		l, err := rotate.List(dir)
		if err == nil && len(l.Segments) > 0 && l.Segments[0].Num > 2 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("retention removed nothing in a minute")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitRetentionDone waits until the writer's retention has removed all it
// will of what was written so far: at most keep rolled segments are left
// besides the active one (segments prepared ahead, not started, aside).
func waitRetentionDone(t *testing.T, dir string, keep int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute) // catches a hang only
	for {
		l, err := rotate.List(dir)
		if err != nil {
			t.Fatal(err)
		}
		started := 0
		for _, fi := range l.Segments {
			if _, err := rotate.PeekHeader(fi); err == nil {
				started++
			}
		}
		if started <= keep+1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("retention left %d started segments after a minute, want %d", started, keep+1)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
