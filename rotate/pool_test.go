package rotate

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/mmaplog/mmaplog/internal/testutil"
)

func TestPoolReusesOnlyFilesNoReaderHolds(t *testing.T) {
	dir := t.TempDir()
	pool := NewPool(dir, segSize, 2)
	defer pool.Close()
	mk := func(num uint64) FileInfo {
		s, err := Create(dir, num, segSize, 0o600, true)
		if err != nil {
			t.Fatal(err)
		}
		activate(t, s, num*100, 50, true)
		s.Close()
		fi, err := Lookup(dir, num)
		if err != nil {
			t.Fatal(err)
		}
		return fi
	}

	// A file a reader has open is removed, not pooled; the reader reads on.
	held := mk(1)
	v, err := OpenView(held)
	if err != nil {
		t.Fatal(err)
	}
	pooled, err := pool.Put(held)
	if err != nil || pooled || fileExists(held.Path) || pool.Len() != 0 {
		t.Fatalf("Put of a file a reader holds: pooled %v, err %v, still there %v, pool %d", pooled, err, fileExists(held.Path), pool.Len())
	}
	if v.Header.Segment != 1 || v.Data[len(v.Data)-1] != 0 {
		t.Fatal("the reader's view changed")
	}
	v.Close()

	// A free file is pooled, and the next segment is made of it: cleared,
	// under the new name only, with nothing left of its earlier life.
	free := mk(2)
	if pooled, err := pool.Put(free); err != nil || !pooled || fileExists(free.Path) || pool.Len() != 1 {
		t.Fatalf("Put of a free file: pooled %v, err %v, pool %d", pooled, err, pool.Len())
	}
	if _, err := OpenView(free); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("opening a pooled segment by its old name: %v", err)
	}
	seg, reused, err := CreateFrom(pool, dir, 7, segSize, 0o640, true)
	if err != nil || !reused || pool.Len() != 0 {
		t.Fatalf("CreateFrom: reused %v, err %v, pool %d", reused, err, pool.Len())
	}
	for i, b := range seg.Data {
		if b != 0 {
			t.Fatalf("byte %d of the reused file is %#x", i, b)
		}
	}
	if st, _ := os.Stat(seg.Path); st.Mode().Perm() != 0o640 {
		t.Fatalf("reused file has mode %v", st.Mode())
	}
	seg.Close()
	if left, _ := filepath.Glob(filepath.Join(dir, "*.tmp")); len(left) > 0 {
		t.Fatalf("left %v", left)
	}

	// With the pool empty, a new file.
	seg, reused, err = CreateFrom(pool, dir, 8, segSize, 0o600, false)
	if err != nil || reused {
		t.Fatalf("CreateFrom with an empty pool: reused %v, err %v", reused, err)
	}
	seg.Close()

	// A file of another size (SegmentSize changed) is removed.
	other, err := Create(dir, 9, 2*segSize, 0o600, false)
	if err != nil {
		t.Fatal(err)
	}
	activate(t, other, 900, 5, true)
	other.Close()
	fi, _ := Lookup(dir, 9)
	if pooled, err := pool.Put(fi); err != nil || pooled || fileExists(fi.Path) {
		t.Fatalf("Put of a file of another size: pooled %v, err %v", pooled, err)
	}

	// Close removes what the pool holds.
	pool.Put(mk(10))
	if pool.Len() != 1 {
		t.Fatal("not pooled")
	}
	pool.Close()
	if left, _ := filepath.Glob(filepath.Join(dir, "*.tmp")); len(left) > 0 {
		t.Fatalf("Close left %v", left)
	}
}

// A pooled file that another process truncated is not reused: the segment
// is made as a new file, whole and cleared, and the truncated one is gone.
func TestPoolTruncatedFileFallsBackToNewFile(t *testing.T) {
	t.Run("mapped anew", func(t *testing.T) { testPoolTruncated(t, false) })
	t.Run("kept mapping", func(t *testing.T) { testPoolTruncated(t, true) })
}

func testPoolTruncated(t *testing.T, keep bool) {
	dir := t.TempDir()
	pool := NewPool(dir, segSize, 2)
	pool.KeepMappings(segSize)
	defer pool.Close()
	s, err := Create(dir, 1, segSize, 0o600, true)
	if err != nil {
		t.Fatal(err)
	}
	activate(t, s, 100, 50, true)
	if keep {
		if !pool.Keep(1, s.Data) {
			t.Fatal("Keep refused")
		}
		s.Data = nil
	}
	s.Close()
	fi, err := Lookup(dir, 1)
	if err != nil {
		t.Fatal(err)
	}
	if pooled, err := pool.Put(fi); err != nil || !pooled {
		t.Fatalf("Put: pooled %v, err %v", pooled, err)
	}
	free, _ := filepath.Glob(filepath.Join(dir, "*"+freeExt+tmpExt))
	if len(free) != 1 {
		t.Fatalf("pooled files %v", free)
	}
	if err := os.Truncate(free[0], segSize/2); err != nil {
		t.Fatal(err)
	}
	seg, reused, err := CreateFrom(pool, dir, 2, segSize, 0o600, true)
	if err != nil || reused {
		t.Fatalf("CreateFrom over a truncated pooled file: reused %v, err %v", reused, err)
	}
	defer seg.Close()
	if len(seg.Data) != segSize {
		t.Fatalf("segment of %d bytes", len(seg.Data))
	}
	for i, b := range seg.Data {
		if b != 0 {
			t.Fatalf("byte %d of the new segment is %#x", i, b)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*.tmp")); len(left) > 0 {
		t.Fatalf("left %v", left)
	}
	if m := testutil.MappingsUnder(t, dir); len(m) != 1 {
		t.Fatalf("%d mappings with only the new segment mapped: %q", len(m), m)
	}
}

// TestPoolReusesKeptMapping: a rolled segment's mapping handed to Keep is
// the one its file is reused through (cleared, nothing left of its earlier
// life); Keep holds no more than its limit; a Put unmaps the kept mappings
// of older segments, and Close every one left.
func TestPoolReusesKeptMapping(t *testing.T) {
	dir := t.TempDir()
	pool := NewPool(dir, segSize, 2)
	pool.KeepMappings(2 * segSize)
	mk := func(num uint64) (FileInfo, []byte, bool) {
		s, err := Create(dir, num, segSize, 0o600, true)
		if err != nil {
			t.Fatal(err)
		}
		activate(t, s, num*100, 50, true)
		data := s.Data
		kept := pool.Keep(num, data)
		if kept {
			s.Data = nil
		}
		s.Close()
		fi, err := Lookup(dir, num)
		if err != nil {
			t.Fatal(err)
		}
		return fi, data, kept
	}
	fi1, data1, kept1 := mk(1)
	_, _, kept2 := mk(2)
	fi3, _, kept3 := mk(3)
	if !kept1 || !kept2 || kept3 {
		t.Fatalf("kept %v %v %v: want the first two, within the limit of two segments", kept1, kept2, kept3)
	}
	if pool.Keep(4, make([]byte, segSize/2)) {
		t.Fatal("Keep took a mapping of another size")
	}
	if m := testutil.MappingsUnder(t, dir); len(m) != 2 {
		t.Fatalf("%d mappings with two kept: %q", len(m), m)
	}

	if pooled, err := pool.Put(fi1); err != nil || !pooled {
		t.Fatalf("Put: pooled %v, err %v", pooled, err)
	}
	seg, reused, err := CreateFrom(pool, dir, 7, segSize, 0o600, true)
	if err != nil || !reused {
		t.Fatalf("CreateFrom: reused %v, err %v", reused, err)
	}
	if &seg.Data[0] != &data1[0] {
		t.Fatal("the reused file was mapped anew, not reused through its kept mapping")
	}
	for i, b := range seg.Data {
		if b != 0 {
			t.Fatalf("byte %d of the reused file is %#x", i, b)
		}
	}

	// Segment 3 was never kept; putting it unmaps segment 2's mapping,
	// which no Put will ask for any more.
	if pooled, err := pool.Put(fi3); err != nil || !pooled {
		t.Fatalf("Put: pooled %v, err %v", pooled, err)
	}
	if m := testutil.MappingsUnder(t, dir); len(m) != 1 {
		t.Fatalf("%d mappings with only segment 7 mapped: %q", len(m), m)
	}
	anon := func() []byte {
		b, err := unix.Mmap(-1, 0, segSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if !pool.Keep(7, seg.Data) || !pool.Keep(8, anon()) {
		t.Fatal("Keep refused a mapping within its limit")
	}
	if extra := anon(); pool.Keep(9, extra) {
		t.Fatal("Keep took a third mapping over its limit of two")
	} else {
		unix.Munmap(extra)
	}
	seg.Data = nil
	seg.Close()
	if err := pool.Close(); err != nil {
		t.Fatal(err)
	}
	if m := testutil.MappingsUnder(t, dir); len(m) != 0 {
		t.Fatalf("Close left %d mappings: %q", len(m), m)
	}
}
