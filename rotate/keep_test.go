package rotate

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// makeRolled gives segment n (1, 2, ...) records 10(n-1)+1 to 10n.
func firstOf(n uint64) uint64 { return 10*(n-1) + 1 }

// TestKeepUnshippedHolds: with KeepUnshipped, MaxBackups and MaxAge remove
// the rolled segments before the one holding State.Keep and stop there;
// the held ones are counted. Without it (or with no consumer) the same
// retention removes them.
func TestKeepUnshippedHolds(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    Retention
		keep uint64
		want []uint64 // segments left
		held int
	}{
		{"no KeepUnshipped", Retention{MaxBackups: 1}, firstOf(3) + 5, []uint64{5, 6}, 0},
		{"no consumer", Retention{MaxBackups: 1, KeepUnshipped: true}, 0, []uint64{5, 6}, 0},
		{"consumer in segment 3", Retention{MaxBackups: 1, KeepUnshipped: true}, firstOf(3) + 5, []uint64{3, 4, 5, 6}, 2},
		// The last record of segment 2 is still needed: segment 2 stays.
		{"consumer at the end of segment 2", Retention{MaxBackups: 1, KeepUnshipped: true}, firstOf(3) - 1, []uint64{2, 3, 4, 5, 6}, 3},
		// A consumer at the first record of segment 3 needs nothing of 2.
		{"consumer at the start of segment 3", Retention{MaxBackups: 1, KeepUnshipped: true}, firstOf(3), []uint64{3, 4, 5, 6}, 2},
		{"consumer past the end", Retention{MaxBackups: 1, KeepUnshipped: true}, firstOf(7), []uint64{5, 6}, 0},
		{"MaxAge", Retention{MaxAge: time.Hour, KeepUnshipped: true}, firstOf(2), []uint64{2, 3, 4, 5, 6}, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			makeRolled(t, dir, 1, 2, 3, 4, 5, 6)
			if tc.r.MaxAge > 0 {
				old := time.Now().Add(-2 * time.Hour)
				for n := uint64(1); n < 6; n++ {
					os.Chtimes(filepath.Join(dir, SegmentName(n)), old, old)
				}
			}
			res, err := tc.r.Apply(dir, State{Active: 6, Finished: 6, Keep: tc.keep}, time.Now(), true)
			if err != nil {
				t.Fatal(err)
			}
			nums, _ := listNums(t, dir)
			if !equalNums(nums, tc.want) || res.Held != tc.held || res.Over {
				t.Fatalf("left %v, held %d, over %v; want %v, held %d, not over", nums, res.Held, res.Over, tc.want, tc.held)
			}
			if res.Held > 0 && res.HeldBytes != int64(res.Held)*segSize {
				t.Fatalf("held %d segments of %d bytes: HeldBytes %d", res.Held, segSize, res.HeldBytes)
			}
			for _, a := range res.Actions {
				if a.Unshipped {
					t.Fatalf("%+v: removed as unshipped without MaxTotalSize", a)
				}
			}
		})
	}
}

// TestKeepUnshippedTotalSizeForces: MaxTotalSize alone removes held
// segments, oldest first, each marked Unshipped with the exact records it
// held, including a compressed one (its range read from its compressed
// header).
func TestKeepUnshippedTotalSizeForces(t *testing.T) {
	dir := t.TempDir()
	makeRolled(t, dir, 1, 2, 3, 4, 5, 6)
	l, _ := List(dir)
	if _, err := CompressSegment(l.Segments[2]); err != nil { // segment 3
		t.Fatal(err)
	}
	// Segments 3 (compressed, smaller) to 6: room for the three plain
	// ones only.
	keep := firstOf(2) + 3
	r := Retention{MaxBackups: 1, MaxTotalSize: 3 * segSize, KeepUnshipped: true, Seqs: &SeqCache{}}
	res, err := r.Apply(dir, State{Active: 6, Finished: 6, Keep: keep}, time.Now(), true)
	if err != nil {
		t.Fatal(err)
	}
	nums, comp := listNums(t, dir)
	if !equalNums(nums, []uint64{4, 5, 6}) || comp[0] {
		t.Fatalf("left %v (compressed %v), want 4 5 6", nums, comp)
	}
	if len(res.Actions) != 3 {
		t.Fatalf("actions %+v", res.Actions)
	}
	for i, a := range res.Actions {
		n := uint64(i + 1)
		want := Action{Op: OpRemoved, FirstSeq: firstOf(n), NextSeq: firstOf(n + 1), Unshipped: n >= 2}
		if a.Op != want.Op || a.FirstSeq != want.FirstSeq || a.NextSeq != want.NextSeq || a.Unshipped != want.Unshipped {
			t.Fatalf("action %d: %+v; want segment %d, records %d to %d, unshipped %v", i, a, n, want.FirstSeq, want.NextSeq-1, want.Unshipped)
		}
	}
	if res.Over {
		t.Fatalf("over after removing to the bound: %+v", res)
	}
}

// TestKeepUnshippedNotOver: held segments never make the directory "over"
// MaxBackups, so that the preparer, which waits while it is, does not wait
// forever for segments that will not go. Unfinished segments that will go
// once finished still do.
func TestKeepUnshippedNotOver(t *testing.T) {
	dir := t.TempDir()
	makeRolled(t, dir, 1, 2, 3, 4, 5, 6)
	r := Retention{MaxBackups: 1, KeepUnshipped: true}
	// Segments 4 and 5 are rolled but not finished; the consumer holds
	// everything from segment 2.
	res, err := r.Apply(dir, State{Active: 6, Finished: 4, Keep: firstOf(2)}, time.Now(), true)
	if err != nil {
		t.Fatal(err)
	}
	if nums, _ := listNums(t, dir); !equalNums(nums, []uint64{2, 3, 4, 5, 6}) || res.Over {
		t.Fatalf("left %v, over %v; want 2 to 6 left, not over", nums, res.Over)
	}
	// A consumer past them all: segments 4 and 5 must go once finished.
	res, err = r.Apply(dir, State{Active: 6, Finished: 4, Keep: firstOf(7)}, time.Now(), true)
	if err != nil {
		t.Fatal(err)
	}
	if nums, _ := listNums(t, dir); !equalNums(nums, []uint64{4, 5, 6}) || !res.Over {
		t.Fatalf("left %v, over %v; want 4 5 6 left and over", nums, res.Over)
	}
}

// TestKeepUnshippedUnreadable: a segment whose range cannot be read is
// kept, as one that may hold needed records, and so is every later one:
// retention never removes a segment while an older one stays.
func TestKeepUnshippedUnreadable(t *testing.T) {
	dir := t.TempDir()
	makeRolled(t, dir, 1, 2, 3, 4, 5, 6)
	// Scribble on segment 3's header.
	f, err := os.OpenFile(filepath.Join(dir, SegmentName(3)), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("garbage!"), 0)
	f.Close()
	res, err := Retention{MaxBackups: 1, KeepUnshipped: true}.Apply(dir, State{Active: 6, Finished: 6, Keep: firstOf(5)}, time.Now(), true)
	if err != nil {
		t.Fatal(err)
	}
	// Segment 2's end is segment 3's start: unknown, so 2 is held.
	if nums, _ := listNums(t, dir); !equalNums(nums, []uint64{2, 3, 4, 5, 6}) || res.Over {
		t.Fatalf("left %v, over %v; want 2 to 6, not over", nums, res.Over)
	}
}

func equalNums(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
