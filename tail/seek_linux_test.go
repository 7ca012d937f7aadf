//go:build linux

package tail_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/mmaplog/mmaplog/internal/fileutil"
	"github.com/mmaplog/mmaplog/mmaplog"
	"github.com/mmaplog/mmaplog/rotate"
	"github.com/mmaplog/mmaplog/tail"
)

// dropLog writes the log's segment files back and drops their pages from the
// page cache.
func dropLog(t *testing.T, dir string) {
	t.Helper()
	l, err := rotate.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, fi := range l.Segments {
		f, err := os.Open(fi.Path)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
		if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
}

// cachedBytes is how much of the log's segment files is in the page cache
// (mincore on a mapping of each, which maps nothing in).
func cachedBytes(t *testing.T, dir string) int64 {
	t.Helper()
	l, err := rotate.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	page := int64(os.Getpagesize())
	var n int64
	for _, fi := range l.Segments {
		f, err := os.Open(fi.Path)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := f.Stat()
		b, err := fileutil.Map(f, int(st.Size()), false)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		vec := make([]byte, (int64(len(b))+page-1)/page)
		if len(b) > 0 {
			if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
				t.Fatal(e)
			}
		}
		fileutil.Unmap(b)
		for _, v := range vec {
			n += int64(v & 1)
		}
	}
	return n * page
}

// TestSeekReadsLittle: with the log's pages out of the page cache, Since
// into the middle of a 64 MiB log, Last, Until and FromSeq in the middle of
// a segment bring at most 1 MiB of it into the cache to return a hundred
// records: they do not read the log (or their segment) from its start. A
// full read to the same record, the control, brings in tens of MiB. The
// figures are page counts, not times.
func TestSeekReadsLittle(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	base := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	var clock testClock
	w, err := mmaplog.Open(dir, &mmaplog.Options{SegmentSize: 4 << 20, MaxBackups: -1, NoPrefault: true, Clock: clock.now})
	if err != nil {
		t.Fatal(err)
	}
	const n = 300_000 // 200-byte records: 64 MiB in 16 segments
	for i := 0; i < n; i++ {
		clock.set(base.Add(time.Duration(i) * time.Millisecond).UnixNano())
		if _, err := w.Append(mmaplog.LevelInfo, payload(i, 200)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	mid := n/2 + 1234
	midTime := base.Add(time.Duration(mid) * time.Millisecond)
	cases := []struct {
		name  string
		opts  tail.Options
		first uint64
	}{
		{"since", tail.Options{Since: midTime}, uint64(mid) + 1},
		{"since and until", tail.Options{Since: midTime, Until: midTime.Add(time.Second)}, uint64(mid) + 1},
		{"last", tail.Options{Last: 100}, n - 99},
		{"last until", tail.Options{Last: 100, Until: midTime}, uint64(mid) + 1 - 99},
		{"from a sequence number", tail.Options{FromSeq: uint64(mid)}, uint64(mid)},
	}
	read := func(o tail.Options, from uint64) int64 {
		dropLog(t, dir)
		if c := cachedBytes(t, dir); c > 64<<10 {
			t.Fatalf("%d KiB of the log still cached after dropping it: this file system keeps pages the test cannot drop", c>>10)
		}
		r, err := tail.Open(dir, &o)
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for got < 100 && r.Next() {
			rec := r.Record()
			if rec.Seq < from {
				continue // the control: a full read to the record
			}
			if got == 0 && rec.Seq != from {
				t.Fatalf("%+v: first record %d, want %d", o, rec.Seq, from)
			}
			got++
		}
		if err := r.Err(); err != nil || got == 0 {
			t.Fatalf("%+v: %d records, %v", o, got, err)
		}
		r.Close()
		return cachedBytes(t, dir)
	}
	control := read(tail.Options{}, uint64(mid)+1)
	t.Logf("a full read to record %d: %d KiB of the log cached", mid+1, control>>10)
	if control < 16<<20 {
		t.Fatalf("a full read to the middle cached only %d KiB: the measure does not work here", control>>10)
	}
	for _, c := range cases {
		got := read(c.opts, c.first)
		t.Logf("%s: %d KiB of the log cached", c.name, got>>10)
		if got > 1<<20 {
			t.Errorf("%s: %d KiB of the log read to return 100 records, want at most 1 MiB", c.name, got>>10)
		}
	}
}
