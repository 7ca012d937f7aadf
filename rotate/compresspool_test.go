package rotate

import (
	"testing"
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
