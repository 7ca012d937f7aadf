package tail

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/mmaplog/mmaplog/mmaplog"
	"github.com/mmaplog/mmaplog/ring"
)

// mappedKiB returns the resident KiB of this process's mapping that starts
// at b's first byte, from /proc/self/smaps.
func mappedKiB(t *testing.T, b []byte) int {
	t.Helper()
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	start := fmt.Sprintf("%x-", uintptr(unsafe.Pointer(unsafe.SliceData(b))))
	in := false
	for _, l := range strings.Split(string(smaps), "\n") {
		if f := strings.Fields(l); len(f) > 0 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":") {
			in = strings.HasPrefix(l, start)
			continue
		}
		if in && strings.HasPrefix(l, "Rss:") {
			n, err := strconv.Atoi(strings.Fields(l)[1])
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no mapping at %s in /proc/self/smaps", start)
	return 0
}

// A Reader gives back the pages it read every ReleaseEvery bytes, all of
// them on Release, and all of them when Wait sleeps on an idle log: what it
// keeps mapped is bounded by the option, not by the segment's size.
func TestReleaseBoundsMappedPages(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	w, err := mmaplog.Open(dir, &mmaplog.Options{SegmentSize: 16 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	rec := make([]byte, 1000)
	const n = 12000 // about 12 MiB in the first segment
	for i := 0; i < n; i++ {
		if _, err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
	}
	const every = 256 << 10
	r, err := Open(dir, &Options{Follow: true, ReleaseEvery: every})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	peak := 0
	for i := 0; i < n; i++ {
		if !r.Next() {
			t.Fatalf("record %d: %v", i+1, r.Err())
		}
		if i%100 == 0 {
			peak = max(peak, mappedKiB(t, r.view.Data))
		}
	}
	// What was read since the last release, plus the page-cache folios the
	// kernel maps whole around a fault (up to a few MiB here).
	if limit := every/1024 + 4096; peak > limit {
		t.Errorf("reading 12 MiB with ReleaseEvery %d KiB kept up to %d KiB mapped, want at most %d", every>>10, peak, limit)
	}
	r.Release()
	if kib := mappedKiB(t, r.view.Data); kib > 8 {
		t.Errorf("after Release: %d KiB still mapped", kib)
	}
	// The last record is still readable after Release.
	if p := r.Record().Payload; len(p) != len(rec) {
		t.Fatalf("last record after Release: %d bytes", len(p))
	}

	// Caught up and idle: Wait gives everything back before it sleeps
	// (it maps the position's folio again to look when it wakes).
	w.Write(rec)
	if !r.Next() {
		t.Fatal(r.Err())
	}
	for r.follow.idle < 8 { // sleeps of 5 ms, 10 ms, ... up to MaxIdleWait
		r.Wait(context.Background())
		if r.Next() {
			t.Fatal("a record nobody wrote")
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Wait(context.Background()) // MaxIdleWait asleep
	}()
	least, samples := leastMappedUntil(t, r.view.Data, done)
	if least > 8 {
		t.Errorf("asleep on an idle log: at least %d KiB mapped in %d samples", least, samples)
	}
}

// A Reader told to hold no pages (Release) right after a record keeps them
// unmapped through its next Wait too, though the log was busy a moment
// ago: no spinning on the length word, which would map its folio again,
// and none kept through the sleep. A process following many logs relies on
// it for the logs whose pages it does not keep.
func TestReleaseHoldsThroughBusyWait(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	w, err := mmaplog.Open(dir, &mmaplog.Options{SegmentSize: 16 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	rec := make([]byte, 1000)
	for i := 0; i < 3000; i++ {
		if _, err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
	}
	r, err := Open(dir, &Options{Follow: true, WaitTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i := 0; i < 3000; i++ {
		if !r.Next() {
			t.Fatalf("record %d: %v", i+1, r.Err())
		}
	}
	if r.Next() {
		t.Fatal("a record nobody wrote")
	}
	r.Release()
	armed := ring.WakeUntil(r.follow.ctl).Load()
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Wait(context.Background()) // busy a moment ago, yet asleep without pages
	}()
	// From the moment it asks to be woken it looks at the length word
	// once more, gives the pages back and sleeps.
	for i := 0; ring.WakeUntil(r.follow.ctl).Load() == armed; i++ {
		if i == 1e7 {
			t.Fatal("Wait never asked to be woken")
		}
		runtime.Gosched()
	}
	least, samples := leastMappedUntil(t, r.view.Data, done)
	if least > 8 {
		t.Errorf("asleep after Release: at least %d KiB mapped in %d samples", least, samples)
	}
}

// leastMappedUntil samples the resident KiB of mapping b until done is
// closed and returns the least seen and how many samples were taken.
func leastMappedUntil(t *testing.T, b []byte, done <-chan struct{}) (least, samples int) {
	t.Helper()
	least = 1 << 30
	for sampling := true; sampling; samples++ {
		select {
		case <-done:
			sampling = false
		default:
		}
		least = min(least, mappedKiB(t, b))
	}
	return least, samples
}
