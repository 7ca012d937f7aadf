//go:build linux

package mmaplog

import (
	"bytes"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/mmaplog/mmaplog/flush"
	"github.com/mmaplog/mmaplog/internal/fileutil"
	"github.com/mmaplog/mmaplog/ring"
)

// These tests see what a flush wrote through the page faults of stores
// (fileutil.StoreFaults): a page that was written back faults on the next
// store, a dirty one does not.

func pageFaults(b []byte, off int) int64 {
	return fileutil.StoreFaults((*uint32)(unsafe.Pointer(&b[off&^3])))
}

// TestFlushStopsAtUnpublishedRecord: a record reserved before a flush and
// published after it began is flushed by the next flush. Writers reserve
// space and then write into it: a flush that moved its mark to the end of
// what was reserved would never go back to that record, and a power loss
// would take it while megabytes after it survive.
func TestFlushStopsAtUnpublishedRecord(t *testing.T) {
	w, err := Open(t.TempDir(), &Options{SegmentSize: 1 << 20, NoPrefault: true})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	a, b, c := bytes.Repeat([]byte("a"), 100), bytes.Repeat([]byte("b"), 100), bytes.Repeat([]byte("c"), 6000)
	for _, p := range [][]byte{a, b, c} {
		if _, err := w.Append(LevelInfo, p); err != nil {
			t.Fatal(err)
		}
	}
	seg := w.active.Load()
	offB := ring.HeaderSize + ring.RecordSize(len(a))
	word := ring.LengthWord(seg.Data, offB)
	lw := atomic.LoadUint32(word)
	// Record b as a concurrent Append leaves it between its reservation
	// and its publication: everything written but its length word.
	atomic.StoreUint32(word, 0)
	if err := w.flushActive(true, true); err != nil {
		t.Fatal(err)
	}
	if got := seg.Region.Flushed(); got > int64(offB) {
		t.Fatalf("the flush moved its mark to %d, past the record at %d that was not published yet", got, offB)
	}
	atomic.StoreUint32(word, lw) // published now, after the flush began
	if err := w.flushActive(true, true); err != nil {
		t.Fatal(err)
	}
	if n := pageFaults(seg.Data, offB); n == 0 {
		t.Fatal("the next flush did not write the page of the record published late: a power loss loses it")
	}
	if got, want := seg.Region.Flushed(), int64(seg.Ring.Reserved()); got != want {
		t.Fatalf("flushed up to %d after everything was published, want %d", got, want)
	}
}

// TestIntervalFlushIsDurable: the interval policy flushes with
// msync(MS_SYNC) (the region's mark only moves for a flush that waited for
// the disk). Starting the writeback alone (MS_ASYNC, sync_file_range)
// leaves the data in the disk's volatile cache, where a power loss takes
// it, whatever the interval.
func TestIntervalFlushIsDurable(t *testing.T) {
	w, err := Open(t.TempDir(), &Options{SegmentSize: 1 << 20, Flush: flush.Interval(time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for range 4 {
		if _, err := w.Append(LevelInfo, bytes.Repeat([]byte("x"), 3000)); err != nil {
			t.Fatal(err)
		}
	}
	seg := w.active.Load()
	waitFor(t, "the interval flush to make the written pages durable", func() bool {
		return seg.Region.Flushed() >= int64(ring.HeaderSize+ring.RecordSize(3000))
	})
}

// TestWriteFlushesHeaderOnActivation: under the write policy a segment's
// header reaches the disk when the segment becomes the active one, before
// any record is written to it. Each record's flush covers its own pages
// only; a record on disk in a segment whose header is not would be lost
// with it (recovery removes a segment whose header is zero).
func TestWriteFlushesHeaderOnActivation(t *testing.T) {
	w, err := Open(t.TempDir(), &Options{SegmentSize: 64 << 10, Flush: flush.Write()})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Append(LevelInfo, []byte("first")); err != nil {
		t.Fatal(err)
	}
	seg := w.active.Load()
	seg.Ring.Seal(true, time.Now().UnixNano())
	if err := w.advance(seg); err != nil {
		t.Fatal(err)
	}
	next := w.active.Load()
	if next == seg {
		t.Fatal("did not roll over")
	}
	if n := pageFaults(next.Data, ring.OffState); n == 0 {
		t.Fatalf("the header of %s is still dirty in the page cache after activation", next.Path)
	}
	if _, err := w.Append(LevelInfo, []byte("second")); err != nil {
		t.Fatal(err)
	}
}

// TestSyncCoversRecordsFinishedAfterIt: a Sync that runs while a Write
// is still writing into a segment that was just rolled does not count that
// segment as synced: the next Sync flushes it again, with the record the
// Write published meanwhile (whose Write returned before that Sync began).
func TestSyncCoversRecordsFinishedAfterIt(t *testing.T) {
	dir := t.TempDir()
	w, err := Open(dir, &Options{SegmentSize: 64 << 10, NoReuse: true})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	p := bytes.Repeat([]byte("r"), 200)
	var offs []int
	off := ring.HeaderSize
	for range 100 {
		if _, err := w.Append(LevelInfo, p); err != nil {
			t.Fatal(err)
		}
		offs = append(offs, off)
		off += ring.RecordSize(len(p))
	}
	seg := w.active.Load()
	// Our own mapping of the file: the writer unmaps its own once the
	// segment is finished.
	f, err := fileutil.OpenNoFollow(seg.Path, true)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := fileutil.Map(f, len(seg.Data), true)
	if err != nil {
		t.Fatal(err)
	}
	defer fileutil.Unmap(m)
	// The last record as a Write leaves it between reserving and
	// publishing it, when the segment is rolled.
	last := offs[len(offs)-1]
	word := ring.LengthWord(m, last)
	lw := atomic.LoadUint32(word)
	atomic.StoreUint32(word, 0)
	seg.Ring.Seal(true, time.Now().UnixNano())
	if err := w.advance(seg); err != nil {
		t.Fatal(err)
	}
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	atomic.StoreUint32(word, lw) // published: its Write returns now
	waitFor(t, "the rolled segment to be finished", func() bool { return w.life.Finished() > seg.Num })
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	if n := pageFaults(m, last); n == 0 {
		t.Fatal("a Sync after the Write returned left its record's page dirty: a power loss loses it")
	}
}
