package tail_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mmaplog/mmaplog/mmaplog"
	"github.com/mmaplog/mmaplog/ring"
	"github.com/mmaplog/mmaplog/rotate"
	"github.com/mmaplog/mmaplog/tail"
)

// refRec is a record as a full scan read it.
type refRec struct {
	seq     uint64
	time    int64
	typ     uint8
	payload string
	first   bool // the first record of its segment
}

// seekLog is how a random log of the seek tests is made.
type seekLog struct {
	compress bool
	damage   bool          // scribble on rolled segments and repair the active one
	steps    bool          // let the clock step back by far more than TimeSlack
	jitter   time.Duration // times go back by up to this (at most TimeSlack)
}

// buildSeekLog writes a random log with many 64 KiB segments: records of
// random sizes (some larger than the search's walking distance), random
// levels, times that stay put, creep or jump (and go back by up to
// l.jitter, or far with l.steps), writers that close and reopen (the next
// one appends to the same segment), and, with l.damage, the active segment
// scribbled on before a reopen (the writer repairs it into padding) and
// rolled segments corrupted and zeroed in places. It returns the records a
// full scan reads.
func buildSeekLog(t *testing.T, rng *rand.Rand, l seekLog) (string, []refRec) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "log")
	base := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano()
	cur, top := base, base
	var clock testClock // the writer's background work reads it too
	o := &mmaplog.Options{SegmentSize: 64 << 10, MaxBackups: -1, Compress: l.compress, Clock: clock.now}
	w, err := mmaplog.Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	n := 1500 + rng.IntN(2500)
	for i := 0; i < n; i++ {
		switch p := rng.IntN(100); {
		case p < 30: // the same time
		case p < 85:
			cur += int64(time.Microsecond) + rng.Int64N(int64(time.Millisecond))
		case p < 97:
			cur += rng.Int64N(int64(time.Hour))
		case l.steps && p < 99:
			cur -= rng.Int64N(int64(2 * time.Hour))
		default:
			cur += int64(time.Second)
		}
		top = max(top, cur)
		stamp := cur
		if l.jitter > 0 && rng.IntN(4) == 0 {
			stamp = max(top-rng.Int64N(int64(l.jitter)), cur-int64(l.jitter))
			stamp = max(stamp, top-int64(l.jitter))
		}
		size := 10 + rng.IntN(300)
		switch p := rng.IntN(100); {
		case p < 3:
			size = 17<<10 + rng.IntN(20<<10)
		case p < 25:
			size = 300 + rng.IntN(3000)
		}
		clock.set(stamp)
		if _, err := w.Append(mmaplog.Level(rng.IntN(8)), payload(i, size)); err != nil {
			t.Fatal(err)
		}
		if rng.IntN(800) == 0 {
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if l.damage && rng.IntN(2) == 0 {
				scribbleActive(t, rng, dir)
			}
			if w, err = mmaplog.Open(dir, o); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if l.damage {
		lst, _ := rotate.List(dir)
		for k := 0; k < 3; k++ {
			fi := lst.Segments[rng.IntN(len(lst.Segments))]
			if fi.Compressed {
				continue
			}
			scribbleSeg(t, rng, fi.Path, rng.IntN(2) == 0)
		}
	}
	return dir, fullScan(t, dir)
}

// scribbleSeg corrupts a plain segment past its header: flips a byte, or zeroes
// a range.
func scribbleSeg(t *testing.T, rng *rand.Rand, path string, zero bool) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v, err := rotate.OpenView(rotate.FileInfo{Path: path, Num: segNum(path)})
	if err != nil {
		return
	}
	end := ring.Scan(v.Data, v.Header.FirstSeq, nil).DataEnd
	v.Close()
	if end <= ring.HeaderSize+64 {
		return
	}
	off := ring.HeaderSize + rng.IntN(end-ring.HeaderSize)
	if zero {
		off &^= ring.Align - 1
		clear(b[off:min(end, off+64+rng.IntN(3000))])
	} else {
		b[off] ^= 0x5a
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// scribbleActive damages the newest segment of a closed log, so that the next
// writer repairs it into padding.
func scribbleActive(t *testing.T, rng *rand.Rand, dir string) {
	lst, _ := rotate.List(dir)
	fi := lst.Segments[len(lst.Segments)-1]
	if !fi.Compressed {
		scribbleSeg(t, rng, fi.Path, rng.IntN(3) > 0)
	}
}

func segNum(path string) uint64 {
	n, _, _ := rotate.ParseName(filepath.Base(path))
	return n
}

// fullScan reads every record of the log in dir.
func fullScan(t *testing.T, dir string) []refRec {
	t.Helper()
	r, err := tail.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []refRec
	for r.Next() {
		rec := r.Record()
		out = append(out, refRec{seq: rec.Seq, time: rec.Time, typ: rec.Type, payload: string(rec.Payload), first: rec.Offset == ring.HeaderSize})
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// query is one set of reading options of the seek tests.
type query struct {
	since, until int64 // Unix ns; 0: not set
	level        ring.Level
	last         int
}

func (q query) options() *tail.Options {
	o := &tail.Options{MinLevel: q.level, Last: q.last}
	if q.since != 0 {
		o.Since = time.Unix(0, q.since)
	}
	if q.until != 0 {
		o.Until = time.Unix(0, q.until)
	}
	return o
}

func (q query) String() string {
	return fmt.Sprintf("since %d until %d level %d last %d", q.since, q.until, q.level, q.last)
}

// expect is what q reads of the records ref, by the rules: from the first
// record stamped at or after since, before the first one after it stamped
// after until, those at level or above, the last ones.
func (q query) expect(ref []refRec) []refRec {
	i := 0
	if q.since != 0 {
		for i < len(ref) && ref[i].time < q.since {
			i++
		}
	}
	j := i
	for j < len(ref) && (q.until == 0 || ref[j].time <= q.until) {
		j++
	}
	var out []refRec
	for _, r := range ref[i:j] {
		if q.level == 0 || r.typ != 0 && ring.Level(r.typ) >= q.level {
			out = append(out, r)
		}
	}
	if q.last > 0 && len(out) > q.last {
		out = out[len(out)-q.last:]
	}
	return out
}

// randomTime picks a time to seek to: a record's (often the first of a
// segment), a nanosecond either side, between records, before all, after all.
func randomTime(rng *rand.Rand, ref []refRec) int64 {
	r := ref[rng.IntN(len(ref))]
	if rng.IntN(3) == 0 {
		var firsts []refRec
		for _, x := range ref {
			if x.first {
				firsts = append(firsts, x)
			}
		}
		r = firsts[rng.IntN(len(firsts))]
	}
	switch rng.IntN(8) {
	case 0:
		return r.time - 1
	case 1:
		return r.time + 1
	case 2:
		return ref[0].time - int64(time.Hour)
	case 3:
		return ref[len(ref)-1].time + int64(time.Hour)
	case 4:
		return ref[0].time + rng.Int64N(ref[len(ref)-1].time-ref[0].time+1)
	}
	return r.time
}

func randomQuery(rng *rand.Rand, ref []refRec) query {
	var q query
	if rng.IntN(5) > 0 {
		q.since = randomTime(rng, ref)
	}
	if rng.IntN(3) == 0 {
		q.until = randomTime(rng, ref)
		if q.since != 0 && q.until < q.since {
			q.since, q.until = q.until, q.since
		}
	}
	if rng.IntN(3) == 0 {
		q.level = ring.Level(1 + rng.IntN(7))
	}
	if rng.IntN(3) == 0 {
		q.last = 1 + rng.IntN(300)
	}
	return q
}

// readQuery reads the log with q's options, forward or backward, and
// returns what it read and the time steps reported.
func readQuery(t *testing.T, dir string, q query, reverse bool) ([]refRec, []tail.TimeStep) {
	t.Helper()
	o := q.options()
	var steps []tail.TimeStep
	o.OnTimeStep = func(s tail.TimeStep) { steps = append(steps, s) }
	var out []refRec
	if reverse {
		r, err := tail.OpenReverse(dir, o)
		if err != nil {
			t.Fatalf("%v: %v", q, err)
		}
		defer r.Close()
		for r.Next() {
			rec := r.Record()
			out = append(out, refRec{seq: rec.Seq, time: rec.Time, typ: rec.Type, payload: string(rec.Payload), first: rec.Offset == ring.HeaderSize})
		}
		if err := r.Err(); err != nil {
			t.Fatalf("%v reversed: %v", q, err)
		}
		slices.Reverse(out)
		return out, steps
	}
	r, err := tail.Open(dir, o)
	if err != nil {
		t.Fatalf("%v: %v", q, err)
	}
	defer r.Close()
	for r.Next() {
		rec := r.Record()
		out = append(out, refRec{seq: rec.Seq, time: rec.Time, typ: rec.Type, payload: string(rec.Payload), first: rec.Offset == ring.HeaderSize})
	}
	if err := r.Err(); err != nil {
		t.Fatalf("%v: %v", q, err)
	}
	if !r.Done() {
		t.Fatalf("%v: Next returned false, Done false, without Follow", q)
	}
	return out, steps
}

func sameRecords(a, b []refRec) (int, bool) {
	for i := range min(len(a), len(b)) {
		if a[i].seq != b[i].seq || a[i].payload != b[i].payload || a[i].time != b[i].time {
			return i, false
		}
	}
	return min(len(a), len(b)), len(a) == len(b)
}

// TestSeekMatchesFullScan: on random logs of many segments (records across
// segment boundaries, larger than the search's steps, compressed segments,
// writers that restarted, ranges repaired into padding, corrupt and zeroed
// ranges, times that go back by up to TimeSlack), Since, Until, MinLevel
// and Last, forward and newest first, read exactly the records a full scan
// reads by the same rules, for many random times (records' own, the first
// of a segment, a nanosecond either side, before and after all).
func TestSeekMatchesFullScan(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	logs := []seekLog{
		{},
		{compress: true},
		{damage: true},
		{jitter: tail.TimeSlack},
		{damage: true, compress: true, jitter: tail.TimeSlack / 2},
		{damage: true, jitter: tail.TimeSlack},
	}
	for li, l := range logs {
		t.Run(fmt.Sprintf("%+v", l), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, uint64(li)))
			dir, ref := buildSeekLog(t, rng, l)
			segs, _ := rotate.List(dir)
			t.Logf("seed %d: %d records in %d segments", seed, len(ref), len(segs.Segments))
			queries := seekQueries
			if l.compress {
				queries /= 2 // each read decompresses segments from their start
			}
			for k := 0; k < queries; k++ {
				q := randomQuery(rng, ref)
				want := q.expect(ref)
				for _, reverse := range []bool{false, true} {
					got, steps := readQuery(t, dir, q, reverse)
					if i, ok := sameRecords(got, want); !ok {
						t.Fatalf("seed %d, %v (reverse %v): read %d records, want %d; first difference at %d: got %v, want %v",
							seed, q, reverse, len(got), len(want), i, at(got, i), at(want, i))
					}
					if len(steps) > 0 {
						t.Fatalf("seed %d, %v: time steps reported where times go back by TimeSlack at most: %v", seed, q, steps)
					}
				}
			}
		})
	}
}

func at(rs []refRec, i int) string {
	if i >= len(rs) {
		return "none"
	}
	return fmt.Sprintf("seq %d time %d", rs[i].seq, rs[i].time)
}

// TestSinceClockStepAtSegmentBoundary: a writer whose clock went back by
// far more than TimeSlack exactly where a segment starts (as after a
// restart into a new segment): Since still starts at the first record
// stamped at or after it, in the segment before the step, and the step is
// reported.
func TestSinceClockStepAtSegmentBoundary(t *testing.T) {
	dir := t.TempDir()
	const recSize = 1000 // payload: records of 1032 bytes
	perSeg := (64<<10 - ring.HeaderSize) / ring.RecordSize(recSize)
	var clock testClock
	base := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	w, err := mmaplog.Open(dir, &mmaplog.Options{SegmentSize: 64 << 10, MaxBackups: -1, Clock: clock.now})
	if err != nil {
		t.Fatal(err)
	}
	stepAt := 5 * perSeg // the first record of the sixth segment
	for i := 0; i < 10*perSeg; i++ {
		at := i
		if i >= stepAt {
			at = i - 3*perSeg // back to the times of the third segment
		}
		clock.set(base.Add(time.Duration(at) * time.Second).UnixNano())
		if _, err := w.Append(mmaplog.LevelInfo, payload(i, recSize)); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	ref := fullScan(t, dir)
	if !ref[stepAt].first || ref[stepAt].time >= ref[stepAt-1].time {
		t.Fatalf("record %d is not the first of its segment, stamped back: the test's layout is off", stepAt)
	}
	for _, since := range []int{stepAt - perSeg/2, stepAt - 3, stepAt - 1} {
		q := query{since: base.Add(time.Duration(since) * time.Second).UnixNano()}
		got, steps := readQuery(t, dir, q, false)
		want := q.expect(ref)
		if i, ok := sameRecords(got, want); !ok {
			t.Fatalf("since record %d: read %d records, want %d; first difference at %d: got %v, want %v", since, len(got), len(want), i, at(got, i), at(want, i))
		}
		if len(steps) == 0 || steps[0].Seq != ref[stepAt].seq {
			t.Fatalf("since record %d: steps reported %v, want the one at record %d", since, steps, ref[stepAt].seq)
		}
	}
}

// TestSinceClockStepsAnywhere: on logs whose clock goes back by up to two
// hours at random records (inside segments too, where the search may not
// read the step), what Since reads is still the records of the log from one
// of them on, in order, none left out after the first: it starts at a record
// stamped at or after Since, and never before the first such record.
func TestSinceClockStepsAnywhere(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	for li := 0; li < 3; li++ {
		rng := rand.New(rand.NewPCG(seed, uint64(li)))
		dir, ref := buildSeekLog(t, rng, seekLog{steps: true, compress: li == 1})
		reported := 0
		for k := 0; k < seekQueries; k++ {
			q := query{since: randomTime(rng, ref)}
			want := q.expect(ref)
			got, steps := readQuery(t, dir, q, false)
			reported += len(steps)
			if len(got) > len(want) {
				t.Fatalf("seed %d, %v: read %d records, more than the %d from the first stamped at or after it", seed, q, len(got), len(want))
			}
			if i, ok := sameRecords(got, want[len(want)-len(got):]); !ok {
				t.Fatalf("seed %d, %v: what it read is not the records of the log from one on: difference at %d: got %v", seed, q, i, at(got, i))
			}
			if len(got) > 0 && got[0].time < q.since {
				t.Fatalf("seed %d, %v: starts at record %d, stamped before", seed, q, got[0].seq)
			}
		}
		t.Logf("seed %d: %d time steps reported by the searches", seed, reported)
	}
}

// TestSeekFollow: following Readers with the new options: Last then what
// comes, Since and MinLevel on records written after Open, Until ending a
// follower at the first record stamped after it, or once it has read
// everything with the clock past Until by UntilGrace.
func TestSeekFollow(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	base := time.Now().Add(-time.Hour)
	var clock testClock
	w, err := mmaplog.Open(dir, &mmaplog.Options{SegmentSize: 64 << 10, MaxBackups: -1, Clock: clock.now})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	appendAt := func(i int, at time.Time, l mmaplog.Level) {
		clock.set(at.UnixNano())
		if _, err := w.Append(l, payload(i, 100)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 1000; i++ {
		appendAt(i, base.Add(time.Duration(i)*time.Second), mmaplog.Level(1+i%7))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// collect reads with r until it has n records or is done.
	collect := func(r *tail.Reader, n int) []uint64 {
		var seqs []uint64
		for len(seqs) < n {
			for r.Next() {
				seqs = append(seqs, r.Record().Seq)
			}
			if err := r.Err(); err != nil {
				t.Fatal(err)
			}
			if r.Done() {
				break
			}
			if err := r.Wait(ctx); err != nil {
				t.Fatalf("waited for %d records, have %d: %v", n, len(seqs), err)
			}
		}
		return seqs
	}
	last, err := tail.Open(dir, &tail.Options{Follow: true, Last: 5})
	if err != nil {
		t.Fatal(err)
	}
	defer last.Close()
	warn, err := tail.Open(dir, &tail.Options{Follow: true, Since: base.Add(995 * time.Second), MinLevel: ring.LevelWarn})
	if err != nil {
		t.Fatal(err)
	}
	defer warn.Close()
	until, err := tail.Open(dir, &tail.Options{Follow: true, Since: base.Add(998 * time.Second), Until: base.Add(1002 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	defer until.Close()
	for i := 1000; i < 1010; i++ {
		appendAt(i, base.Add(time.Duration(i)*time.Second), mmaplog.Level(1+i%7))
	}
	if got := collect(last, 15); !slices.Equal(got, seqRange(996, 1010)) {
		t.Errorf("Last 5, following: %v, want 996 to 1010", got)
	}
	var want []uint64
	for i := 995; i < 1010; i++ {
		if l := ring.Level(1 + i%7); l >= ring.LevelWarn {
			want = append(want, uint64(i)+1)
		}
	}
	if got := collect(warn, len(want)); !slices.Equal(got, want) {
		t.Errorf("Since and MinLevel, following: %v, want %v", got, want)
	}
	if got := collect(until, 100); !slices.Equal(got, seqRange(999, 1003)) || !until.Done() {
		t.Errorf("Until, following: %v (done %v), want 999 to 1003 and done", got, until.Done())
	}
	// Until in the past, nothing after it yet: done once read up.
	past, err := tail.Open(dir, &tail.Options{Follow: true, Since: base.Add(1005 * time.Second), Until: time.Now().Add(-tail.UntilGrace)})
	if err != nil {
		t.Fatal(err)
	}
	defer past.Close()
	if got := collect(past, 100); !slices.Equal(got, seqRange(1006, 1010)) || !past.Done() {
		t.Errorf("Until past, following: %v (done %v), want 1006 to 1010 and done", got, past.Done())
	}
}

// testClock is a writer's Options.Clock that a test sets: the writer's
// background goroutines read it too.
type testClock struct{ ns atomic.Int64 }

func (c *testClock) now() time.Time { return time.Unix(0, c.ns.Load()) }
func (c *testClock) set(ns int64)   { c.ns.Store(ns) }

func seqRange(from, to uint64) []uint64 {
	var s []uint64
	for q := from; q <= to; q++ {
		s = append(s, q)
	}
	return s
}

// TestSeekOptionErrors: options that contradict each other are errors of
// Open and OpenReverse.
func TestSeekOptionErrors(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	w, err := mmaplog.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("x"))
	w.Close()
	now := time.Now()
	for _, o := range []tail.Options{
		{Since: now, FromSeq: 3},
		{Since: now, FromEnd: true},
		{Last: 3, FromSeq: 3},
		{Last: -1},
	} {
		if r, err := tail.Open(dir, &o); err == nil {
			r.Close()
			t.Errorf("Open %+v: no error", o)
		}
	}
	for _, o := range []tail.Options{{Follow: true}, {FromEnd: true}, {Since: now, FromSeq: 2}, {Last: -2}} {
		if r, err := tail.OpenReverse(dir, &o); err == nil {
			r.Close()
			t.Errorf("OpenReverse %+v: no error", o)
		}
	}
	if _, err := tail.OpenReverse(filepath.Join(dir, "nothing"), nil); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("OpenReverse of a missing directory: %v", err)
	}
}
