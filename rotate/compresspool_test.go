package rotate

import (
	"errors"
	"io/fs"
	"os"
	"testing"
	"time"
)

// TestCompressionPoolsThePlainFile: CompressRolled gives the plain file of
// each segment it compressed to the pool (the compressor's own shared lock
// on it must not make Reclaim take it for a reader's), unless PoolBound
// says the rolled segments and the pool would then take too much; then it
// removes it.
func TestCompressionPoolsThePlainFile(t *testing.T) {
	dir := t.TempDir()
	makeRolled(t, dir, 1, 2, 3)
	pool := NewPool(dir, segSize, 2)
	defer pool.Close()
	acts, err := Retention{Compress: true, Pool: pool}.CompressRolled(dir, State{Active: 3, Finished: 3})
	if err != nil || len(acts) != 2 {
		t.Fatalf("CompressRolled: %v %v", acts, err)
	}
	if pool.Len() != 2 {
		t.Fatalf("%d of the 2 compressed segments' files pooled", pool.Len())
	}
	nums, comp := listNums(t, dir)
	if len(nums) != 3 || !comp[0] || !comp[1] || comp[2] {
		t.Fatalf("after compression %v %v", nums, comp)
	}
	seg, reused, err := CreateFrom(pool, dir, 4, segSize, 0o600, false)
	if err != nil || !reused {
		t.Fatalf("CreateFrom: reused %v, err %v", reused, err)
	}
	activate(t, seg, 31, 10, true)
	seg.Close()

	// Rolled segments 1 to 3 (two compressed, a few KiB each) and the one
	// pooled file take more than one segment: the plain file of segment 3
	// does not fit a bound of 1.5 segments, and is removed.
	r := Retention{Compress: true, Pool: pool, PoolBound: segSize * 3 / 2}
	acts, err = r.CompressRolled(dir, State{Active: 4, Finished: 4})
	if err != nil || len(acts) != 1 {
		t.Fatalf("CompressRolled: %v %v", acts, err)
	}
	if pool.Len() != 1 {
		t.Fatalf("pool holds %d files, want the 1 from before", pool.Len())
	}
	// Within a bound of 2.5 segments the files of segments 4 and 5 fit.
	pool.Close()
	pool = NewPool(dir, segSize, 2)
	makeRolled(t, dir, 5)
	r = Retention{Compress: true, Pool: pool, PoolBound: segSize * 5 / 2}
	if acts, err = r.CompressRolled(dir, State{Active: 6, Finished: 6}); err != nil || len(acts) != 2 {
		t.Fatalf("CompressRolled: %v %v", acts, err)
	}
	if pool.Len() != 2 {
		t.Fatalf("pool holds %d files, want 2", pool.Len())
	}
	if nums, comp := listNums(t, dir); len(nums) != 5 || !comp[4] {
		t.Fatalf("after compression %v %v", nums, comp)
	}
}

// TestCompressionCountedWhenThePlainFileWentMeanwhile: a retention pass
// running beside the compressor (the writer's preparer makes room while its
// finisher compresses) may release the plain file of a segment as soon as
// its compressed copy exists ("compressed copy exists"). The compression
// is done all the same: compressSegment returns it, and CompressRolled
// reports it, instead of taking the missing plain file for a segment that
// retention removed before it was compressed.
func TestCompressionCountedWhenThePlainFileWentMeanwhile(t *testing.T) {
	for _, pooled := range []bool{false, true} {
		dir := t.TempDir()
		makeRolled(t, dir, 1)
		fis, _ := listNums(t, dir)
		if len(fis) != 1 {
			t.Fatal("no segment")
		}
		pool := NewPool(dir, segSize, 2)
		l, err := List(dir)
		if err != nil {
			t.Fatal(err)
		}
		// fits runs after the rename of the compressed copy: the plain
		// file goes there, as a concurrent Apply would release it.
		fits := func() bool {
			if err := os.Remove(l.Segments[0].Path); err != nil {
				t.Fatal(err)
			}
			return pooled
		}
		out, err := compressSegment(l.Segments[0], pool, fits)
		if err != nil || out == "" {
			t.Fatalf("pooled=%v: compressSegment: %q, %v; want the compressed copy", pooled, out, err)
		}
		if _, err := os.Stat(out); err != nil {
			t.Fatal(err)
		}
		pool.Close()
	}
}

// TestDuplicatePlainFilePooledWithinBound: a plain segment whose compressed
// copy exists (a compression that a crash, or a pass beside it, left
// unfinished) is released by Apply: pooled, as the compressor pools it,
// only within PoolBound; removed otherwise.
func TestDuplicatePlainFilePooledWithinBound(t *testing.T) {
	for _, c := range []struct {
		bound  int64
		pooled int
	}{{0, 1}, {1, 0}} {
		dir := t.TempDir()
		makeRolled(t, dir, 1, 2)
		l, err := List(dir)
		if err != nil {
			t.Fatal(err)
		}
		plain, err := os.ReadFile(l.Segments[0].Path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := (Retention{Compress: true}).CompressRolled(dir, State{Active: 2, Finished: 2}); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(l.Segments[0].Path, plain, 0o600); err != nil { // the plain file back beside its copy
			t.Fatal(err)
		}
		pool := NewPool(dir, segSize, 2)
		res, err := Retention{Compress: true, Pool: pool, PoolBound: c.bound}.Apply(dir, State{Active: 3, Finished: 3}, time.Now(), false)
		if err != nil || len(res.Actions) != 1 {
			t.Fatalf("bound %d: Apply: %v %v", c.bound, res.Actions, err)
		}
		if _, err := os.Stat(l.Segments[0].Path); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("bound %d: the plain file of a compressed segment is still there: %v", c.bound, err)
		}
		if pool.Len() != c.pooled {
			t.Fatalf("bound %d: %d files pooled, want %d", c.bound, pool.Len(), c.pooled)
		}
		pool.Close()
	}
}
