package tail_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mmaplog/mmaplog/mmaplog"
	"github.com/mmaplog/mmaplog/rotate"
	"github.com/mmaplog/mmaplog/tail"
)

// zeroFile overwrites the whole file at path with zeros, the way another
// process (dd if=/dev/zero conv=notrunc) would.
func zeroFile(t *testing.T, path string) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(make([]byte, st.Size()), 0); err != nil {
		t.Fatal(err)
	}
}

// followToEnd reads r until the record with sequence number last, checking
// payloads, and counts the records it read in bySeg, by segment.
func followToEnd(t *testing.T, c readCase, r *tail.Reader, last uint64, bySeg map[uint64]uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // catches a hang only
	defer cancel()
	var seq uint64
	for seq < last {
		if r.Next() {
			seq = r.Record().Seq
			checkPayload(t, c, r.Record())
			bySeg[r.Record().Segment]++
			continue
		}
		if err := r.Err(); err != nil {
			t.Fatal(err)
		}
		if err := r.Wait(ctx); err != nil {
			t.Fatalf("stuck before record %d: %v (damage %v)", r.NextSeq(), err, r.Damage())
		}
	}
}

// TestFollowZeroedRolledSegment: another process zeroes a rolled segment
// after a follower opened the log, with the writer running or closed.
// Whether the follower has the segment mapped already (it was reading it
// when the writer rolled over) or reaches it only later (its listing of
// the directory is older than the segments after it), it does what a
// Reader opened afterwards does: it reports the damage, naming the file and
// the offset where reading stopped, counts the records lost, and reads on
// to the newest record.
func TestFollowZeroedRolledSegment(t *testing.T) {
	for _, tc := range []struct {
		name  string
		under bool // the follower has the zeroed segment mapped
		alive bool // the writer still runs
	}{
		{"mapped, writer running", true, true},
		{"mapped, writer closed", true, false},
		{"not reached yet, writer running", false, true},
		{"not reached yet, writer closed", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			w, err := mmaplog.Open(dir, &mmaplog.Options{SegmentSize: 16 << 10, MaxBackups: -1})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			c := readCase{size: func(int) int { return 100 }}
			const first, n = 150, 1200 // the writer in segment 2 at first
			write(t, w, c, 0, first)
			r, err := tail.Open(dir, &tail.Options{Follow: true, HoleWait: 20 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			l, err := rotate.List(dir)
			if err != nil {
				t.Fatal(err)
			}
			bySeg := map[uint64]uint64{}
			followToEnd(t, c, r, first, bySeg)
			// The segment to zero: the one the follower is in, or one
			// after every segment it has listed.
			zeroed, at := r.Record().Segment, r.Record().Offset+int64(r.Record().Size)
			if !tc.under {
				zeroed = l.Segments[len(l.Segments)-1].Num + 1
			}
			if zeroed < 2 {
				t.Fatalf("segment %d: the test wants one after the first (TestFirstSegmentDamaged zeroes that)", zeroed)
			}
			write(t, w, c, first, n)
			if !tc.alive {
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
			}
			if w.Stats().Segment <= zeroed+1 {
				t.Fatalf("the writer is in segment %d: the test wants segments after %d", w.Stats().Segment, zeroed)
			}
			path := filepath.Join(dir, rotate.SegmentName(zeroed))
			before := bySeg[zeroed] // read before the zeroing
			zeroFile(t, path)
			followToEnd(t, c, r, n, bySeg)
			var read uint64
			for _, k := range bySeg {
				read += k
			}
			ds := r.Damage()
			if len(ds) == 0 || ds[0].Path != path || ds[0].Kind != tail.DamageCorrupt {
				t.Fatalf("damage %v: want the zeroed %s first, as corruption", ds, path)
			}
			if tc.under && ds[0].From != at {
				t.Fatalf("damage %v: want it from offset %d, where the follower was", ds, at)
			}
			if read+r.Lost() != n || r.Lost() == 0 || bySeg[zeroed] != before {
				t.Fatalf("read %d (%d of the zeroed segment, %d before the zeroing), lost %d of %d records (damage %v)", read, bySeg[zeroed], before, r.Lost(), n, ds)
			}
			// A Reader opened now reads the same records and loses the
			// same, but for those the follower read before the zeroing.
			fresh, err := tail.Open(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer fresh.Close()
			var got uint64
			for fresh.Next() {
				got++
			}
			if fresh.Err() != nil || got != read-before || fresh.Lost() != r.Lost()+before {
				t.Fatalf("a fresh reader read %d and lost %d (damage %v, %v); the follower %d and %d, %d of them before the zeroing", got, fresh.Lost(), fresh.Damage(), fresh.Err(), read, r.Lost(), before)
			}
		})
	}
}

// TestFirstSegmentDamaged: the log's first segment (number 1, whose first
// record is 1 by construction) is zeroed or emptied, as a power cut leaves
// a segment whose data never reached the disk. A Reader counts its records
// as lost (the next segment's first sequence number less one) and reads
// the rest.
func TestFirstSegmentDamaged(t *testing.T) {
	for _, how := range []string{"zeroed", "emptied"} {
		t.Run(how, func(t *testing.T) {
			dir := t.TempDir()
			w, err := mmaplog.Open(dir, &mmaplog.Options{SegmentSize: 16 << 10, MaxBackups: -1})
			if err != nil {
				t.Fatal(err)
			}
			c := readCase{size: func(int) int { return 100 }}
			const n = 600
			write(t, w, c, 0, n)
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, rotate.SegmentName(1))
			l, err := rotate.List(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(l.Segments) < 3 {
				t.Fatalf("%d segments: the test wants three or more", len(l.Segments))
			}
			v, err := rotate.OpenSegment(dir, 2, false)
			if err != nil {
				t.Fatal(err)
			}
			lost := v.Header.FirstSeq - 1
			v.Close()
			if how == "zeroed" {
				zeroFile(t, path)
			} else if err := os.Truncate(path, 0); err != nil {
				t.Fatal(err)
			}
			r, err := tail.Open(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			var got uint64
			next := lost + 1
			for r.Next() {
				if r.Record().Seq != next {
					t.Fatalf("record %d, want %d", r.Record().Seq, next)
				}
				next++
				got++
			}
			ds := r.Damage()
			if r.Err() != nil || got+r.Lost() != n || r.Lost() != lost || len(ds) == 0 || ds[0].Path != path || ds[0].Seq != 1 {
				t.Fatalf("read %d, lost %d of %d (want %d lost from %s), damage %v, err %v", got, r.Lost(), n, lost, path, ds, r.Err())
			}
		})
	}
}
