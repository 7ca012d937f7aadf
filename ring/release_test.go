package ring

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mmaplog/mmaplog/internal/fileutil"
)

// TestRegionUnmappedOnceReleased has many goroutines appending while a
// finisher rolls regions as a writer does: seal, WaitReleased (walking the
// length words: Appends count nothing), unmap the region for real and move
// its control mapping on. An Append that touched a region after
// WaitReleased returned would fault (an error from Append) or corrupt the
// next region, which is checked record by record; a reader keeps the wake
// deadline armed, so that every Append goes through the control mapping.
func TestRegionUnmappedOnceReleased(t *testing.T) {
	const (
		regionSize = 64 << 10
		regions    = 200
		goroutines = 8
	)
	dir := t.TempDir()
	type region struct {
		r   *Ring
		buf []byte
		ctl []byte
		f   *os.File
	}
	var wakes atomic.Int64
	open := func(i int, firstSeq uint64) *region {
		f, err := os.OpenFile(filepath.Join(dir, "r"), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		os.Remove(f.Name())
		if err := f.Truncate(regionSize); err != nil {
			t.Fatal(err)
		}
		buf, err := fileutil.Map(f, regionSize, true)
		if err != nil {
			t.Fatal(err)
		}
		PutHeader(buf, Header{Segment: uint64(i), FirstSeq: firstSeq, Created: 1, Size: regionSize})
		ctl, err := fileutil.MapControl(f)
		if err != nil {
			t.Fatal(err)
		}
		r, _ := New(buf, HeaderSize, firstSeq, 0)
		r.SetHooks(func(*uint32) { wakes.Add(1) }, nil)
		r.SetControl(ctl)
		if r.counted {
			t.Fatal("a ring with a control mapping and no sync hook counts its Appends")
		}
		return &region{r: r, buf: buf, ctl: ctl, f: f}
	}
	var cur atomic.Pointer[region]
	cur.Store(open(1, 1))
	var rolled atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, goroutines)
	p := make([]byte, 100)
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for rolled.Load() < regions {
				rg := cur.Load()
				ArmWake(rg.ctl, time.Now().UnixNano(), time.Now().Add(time.Second).UnixNano())
				_, err := rg.r.Append(1, time.Now().UnixNano(), p)
				if errors.Is(err, ErrFull) {
					for cur.Load() == rg && rolled.Load() < regions {
						time.Sleep(10 * time.Microsecond)
					}
					continue
				}
				if err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	var total uint64
	for i := 1; i <= regions; i++ {
		rg := cur.Load()
		end, count, _ := rg.r.WaitSealed()
		if err := rg.r.WaitReleased(time.Minute); err != nil {
			t.Fatal(err)
		}
		res := Scan(rg.buf, rg.r.FirstSeq(), nil)
		if res.Records != count || len(res.Damage) != 0 || int(res.DataEnd) < end {
			t.Fatalf("region %d: %d records of %d reserved, damage %v", i, res.Records, count, res.Damage)
		}
		total += count
		next := open(i+1, rg.r.FirstSeq()+count)
		cur.Store(next)
		if err := fileutil.Unmap(rg.buf); err != nil {
			t.Fatal(err)
		}
		if err := fileutil.ReleaseControl(rg.ctl); err != nil {
			t.Fatal(err)
		}
		rg.f.Close()
		rolled.Add(1)
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Errorf("Append: %v", err)
	}
	last := cur.Load()
	last.r.Seal(false, 0)
	if err := last.r.WaitReleased(time.Minute); err != nil {
		t.Fatal(err)
	}
	fileutil.Unmap(last.buf)
	fileutil.ReleaseControl(last.ctl)
	last.f.Close()
	t.Logf("%d regions, %d records, %d wake-ups", regions, total, wakes.Load())
	if wakes.Load() == 0 {
		t.Fatal("no Append went through the wake path")
	}
}

// TestWaitReleasedReportsAHole: a reservation never published is reported
// with its offset once the timeout passes, and the next call resumes.
func TestWaitReleasedReportsAHole(t *testing.T) {
	dir := t.TempDir()
	f, _ := os.Create(filepath.Join(dir, "r"))
	f.Truncate(64 << 10)
	buf, _ := fileutil.Map(f, 64<<10, true)
	defer fileutil.Unmap(buf)
	ctl, err := fileutil.MapControl(f)
	if err != nil {
		t.Fatal(err)
	}
	defer fileutil.ReleaseControl(ctl)
	PutHeader(buf, Header{Segment: 1, FirstSeq: 1, Created: 1, Size: 64 << 10})
	r, _ := New(buf, HeaderSize, 1, 0)
	r.SetControl(ctl)
	r.Append(1, 1, []byte("a"))
	// A reservation whose owner stopped before publishing.
	st := r.state.Add(idxOne | uint64(RecordSize(5)))
	hole := int(st&offMask) - RecordSize(5)
	r.Append(1, 1, []byte("c"))
	r.Seal(false, 0)
	err = r.WaitReleased(20 * time.Millisecond)
	if err == nil {
		t.Fatal("WaitReleased returned with a reservation unpublished")
	}
	t.Log(err)
	PutRecord(buf[hole:hole+RecordSize(5)], 2, 1, 1, []byte("bbbbb"))
	if err := r.WaitReleased(time.Minute); err != nil {
		t.Fatalf("once published: %v", err)
	}
}
