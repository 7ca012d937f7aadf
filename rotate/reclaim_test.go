package rotate

import (
	"errors"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mmaplog/mmaplog/ring"
)

// TestReclaimRace races readers opening a segment by its name against a
// writer that takes the file for reuse and scribbles over it, over and over:
// a View that opened is never changed under it (its bytes, checked before
// and after the reader is done, agree), and one that could not open says
// the segment is gone (fs.ErrNotExist). Each round also makes a new file
// under the name, as the next segment of that number would not be: the
// readers then open that one. Every third round the readers are held off
// until none has the file open, and Reclaim must hand it out; every third
// a view is held open across Reclaim, which must keep the file from reuse;
// the rounds in between are left to the race. So both outcomes are
// checked whatever the scheduler does.
func TestReclaimRace(t *testing.T) {
	dir := t.TempDir()
	const rounds = 300
	path := filepath.Join(dir, SegmentName(1))
	work := filepath.Join(dir, "work")
	os.Mkdir(work, 0o700)
	make1 := func() {
		// Made whole elsewhere, then renamed into place: a reader never
		// sees it half made.
		s, err := Create(work, 1, segSize, 0o600, false)
		if err != nil {
			t.Fatal(err)
		}
		activate(t, s, 1, 50, true)
		s.Close()
		if err := os.Rename(s.Path, path); err != nil {
			t.Fatal(err)
		}
	}
	scribble := func(f *os.File) {
		b := make([]byte, segSize)
		for j := range b {
			b[j] = 0xa5
		}
		f.WriteAt(b, 0)
		f.Close()
		os.Remove(path + ".reuse.tmp")
	}
	make1()
	// A reader counts itself in holding before it looks at pause, so
	// that once pause is set and holding seen at zero, no reader has the
	// file open or opens it.
	var stop, pause atomic.Bool
	var opened, gone, holding, reused, kept atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				holding.Add(1)
				if pause.Load() {
					holding.Add(-1)
					time.Sleep(50 * time.Microsecond)
					continue
				}
				v, err := OpenView(FileInfo{Num: 1, Path: path})
				if err != nil {
					holding.Add(-1)
					if !errors.Is(err, fs.ErrNotExist) {
						t.Errorf("open: %v", err)
						return
					}
					gone.Add(1)
					continue
				}
				before := crc32.ChecksumIEEE(v.Data)
				time.Sleep(200 * time.Microsecond) // a reader takes its time
				res := ring.Scan(v.Data, v.Header.FirstSeq, nil)
				after := crc32.ChecksumIEEE(v.Data)
				v.Close()
				holding.Add(-1)
				if before != after || res.Records != 50 || len(res.Damage) != 0 {
					t.Errorf("a view changed under its reader: crc %08x then %08x, %d records, damage %v", before, after, res.Records, res.Damage)
					return
				}
				opened.Add(1)
			}
		}()
	}
	defer func() { // also when the test fails in a round
		stop.Store(true)
		wg.Wait()
	}()
	for i := 0; i < rounds && !t.Failed(); i++ {
		var held *View
		switch i % 3 {
		case 0: // nobody reads: the file is handed out
			pause.Store(true)
			for j := 0; holding.Load() != 0; j++ {
				if j == 1e6 {
					t.Fatal("the readers never let go of the file")
				}
				time.Sleep(10 * time.Microsecond)
			}
		case 1: // a view is open: the file is kept
			v, err := OpenView(FileInfo{Num: 1, Path: path})
			if err != nil {
				t.Fatal(err)
			}
			held = v
		}
		f, err := Reclaim(FileInfo{Num: 1, Path: path}, path+".reuse.tmp")
		switch {
		case errors.Is(err, ErrInUse):
			if i%3 == 0 {
				t.Fatalf("round %d: Reclaim kept a file nobody had open", i)
			}
			kept.Add(1)
		case err != nil:
			t.Fatal(err)
		default:
			if i%3 == 1 {
				t.Fatalf("round %d: Reclaim handed out a file a view had open", i)
			}
			reused.Add(1)
			scribble(f)
		}
		if held != nil {
			if res := ring.Scan(held.Data, held.Header.FirstSeq, nil); res.Records != 50 || len(res.Damage) != 0 {
				t.Fatalf("round %d: the view held across Reclaim changed: %d records, damage %v", i, res.Records, res.Damage)
			}
			held.Close()
		}
		pause.Store(false)
		make1()
	}
	// The readers read at least once more, whatever the scheduler did
	// during the rounds.
	deadline := time.Now().Add(time.Minute) // catches a hang only
	for n := opened.Load(); opened.Load() < n+4 && !t.Failed(); {
		if time.Now().After(deadline) {
			t.Fatal("the readers opened no view in a minute")
		}
		time.Sleep(time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	t.Logf("%d rounds: %d reused, %d kept for a reader; readers opened %d views, found it gone %d times", rounds, reused.Load(), kept.Load(), opened.Load(), gone.Load())
}

// TestReclaimRefusesCompressed: only plain segment files are reused.
func TestReclaimRefusesCompressed(t *testing.T) {
	if _, err := Reclaim(FileInfo{Num: 1, Path: "/x/1.mlog.zst", Compressed: true}, "/x/t"); err == nil {
		t.Fatal("reclaimed a compressed segment")
	}
}
