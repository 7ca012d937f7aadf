//go:build linux

package rotate

import (
	"testing"
	"time"
	"unsafe"

	"github.com/mmaplog/mmaplog/internal/fileutil"
	"github.com/mmaplog/mmaplog/ring"
)

// pooledSegment returns a Pool of dir holding the file of segment 2, which
// held records: made pre-faulted, with its pages filled through the write
// path first if fill (FillNew).
func pooledSegment(t *testing.T, dir string, fill bool) *Pool {
	t.Helper()
	pool := NewPool(dir, segSize, 2)
	s, _, err := createFrom(nil, dir, 2, segSize, 0o600, true, fill)
	if err != nil {
		t.Fatal(err)
	}
	activate(t, s, 200, 50, true)
	s.Close()
	fi, err := Lookup(dir, 2)
	if err != nil {
		t.Fatal(err)
	}
	if pooled, err := pool.Put(fi); err != nil || !pooled {
		t.Fatalf("Put: pooled %v, %v", pooled, err)
	}
	return pool
}

// TestReusedHeaderReachesDiskBeforeRename: a segment made from a pooled
// file has its first page, cleared, written to disk before the file gets
// the segment's name. Otherwise, after a power loss, the name refers to
// the file's old header ("header names segment 2, the file name says 7")
// and the log does not open. The page was written back if a store into it
// faults (writeback write-protects it).
func TestReusedHeaderReachesDiskBeforeRename(t *testing.T) {
	dir := t.TempDir()
	pool := pooledSegment(t, dir, false)
	defer pool.Close()
	seg, reused, err := CreateFrom(pool, dir, 7, segSize, 0o600, true)
	if err != nil || !reused {
		t.Fatalf("CreateFrom: reused %v, %v", reused, err)
	}
	defer seg.Close()
	if n := fileutil.StoreFaults((*uint32)(unsafe.Pointer(&seg.Data[ring.OffState]))); n == 0 {
		t.Fatal("the cleared first page of the reused file is still dirty in the page cache: on disk, the new name refers to the old header")
	}
	// The rest is cleared in the page cache only (writeback takes it, or
	// the records written over it): no flush of the whole segment.
	if n := fileutil.StoreFaults((*uint32)(unsafe.Pointer(&seg.Data[len(seg.Data)-8]))); n != 0 {
		t.Fatalf("the last page of the reused file was written back too (%d faults): reuse should not write the whole segment", n)
	}
}

// TestFillNewSegment: a new segment whose pages were filled through the
// write path before pre-faulting reads as zeros, is pre-faulted (a store
// into it does not fault), and takes a record as any other.
func TestFillNewSegment(t *testing.T) {
	dir := t.TempDir()
	seg, reused, err := createFrom(nil, dir, 1, segSize, 0o600, true, true)
	if err != nil || reused {
		t.Fatalf("createFrom: reused %v, %v", reused, err)
	}
	defer seg.Close()
	if int64(len(seg.Data)) != segSize {
		t.Fatalf("mapping of %d bytes, want %d", len(seg.Data), segSize)
	}
	for i, b := range seg.Data {
		if b != 0 {
			t.Fatalf("byte %d of the new segment is %#x", i, b)
		}
	}
	if n := fileutil.StoreFaults((*uint32)(unsafe.Pointer(&seg.Data[len(seg.Data)-8]))); n != 0 {
		t.Fatalf("a store into the last page faulted %d times: the segment was not pre-faulted", n)
	}
	activate(t, seg, 200, 50, true)
}

// TestReusedFilledFileHeaderFlushAlone: a file whose pages were filled
// through the write path (FillNew), reused for a later segment, has only
// its first page written back by the flush of the cleared header: the
// pages after it stay dirty and writable, so that the writer does not
// fault on each of them (a large folio holding the header would be
// written back, and write-protected, whole).
func TestReusedFilledFileHeaderFlushAlone(t *testing.T) {
	dir := t.TempDir()
	pool := pooledSegment(t, dir, true)
	defer pool.Close()
	seg, reused, err := CreateFrom(pool, dir, 7, segSize, 0o600, true)
	if err != nil || !reused {
		t.Fatalf("CreateFrom: reused %v, %v", reused, err)
	}
	defer seg.Close()
	if n := fileutil.StoreFaults((*uint32)(unsafe.Pointer(&seg.Data[ring.OffState]))); n == 0 {
		t.Fatal("the cleared first page of the reused file is still dirty in the page cache")
	}
	page := fileutil.PageSize()
	for _, off := range []int{page, 2 * page, len(seg.Data) - page} {
		if n := fileutil.StoreFaults((*uint32)(unsafe.Pointer(&seg.Data[off]))); n != 0 {
			t.Fatalf("a store at offset %d faulted %d times: the header's flush wrote that page back too", off, n)
		}
	}
}

// TestPreparedReusedHeaderWritable: a segment the preparer made from a
// reused file has its header page writable again after the flush of the
// cleared header, so that the writer's header store at the roll takes no
// page fault (a fault into the filesystem, on the Write that rolls over).
func TestPreparedReusedHeaderWritable(t *testing.T) {
	dir := t.TempDir()
	pool := pooledSegment(t, dir, false)
	defer pool.Close()
	reused := make(chan bool, 4)
	p := StartPreparer(dir, 7, PreparerOptions{Size: segSize, Perm: 0o600, Prefault: true, Pool: pool,
		OnCreate: func(_ time.Duration, r bool) { reused <- r }})
	defer p.Close()
	seg, err := p.Take()
	if err != nil {
		t.Fatal(err)
	}
	defer seg.Close()
	if !waitEvent(t, reused, "preparation of segment 7") {
		t.Fatal("segment 7 was not made from the pooled file")
	}
	if n := fileutil.StoreFaults((*uint32)(unsafe.Pointer(&seg.Data[ring.OffState]))); n != 0 {
		t.Fatalf("a store into the header of the prepared segment faulted %d times", n)
	}
}
