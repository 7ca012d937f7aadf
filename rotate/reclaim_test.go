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
// readers then open that one.
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
	make1()
	var stop atomic.Bool
	var opened, gone, reused, kept atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				v, err := OpenView(FileInfo{Num: 1, Path: path})
				if err != nil {
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
				if before != after || res.Records != 50 || len(res.Damage) != 0 {
					t.Errorf("a view changed under its reader: crc %08x then %08x, %d records, damage %v", before, after, res.Records, res.Damage)
					return
				}
				opened.Add(1)
			}
		}()
	}
	for i := 0; i < rounds && !t.Failed(); i++ {
		f, err := Reclaim(FileInfo{Num: 1, Path: path}, path+".reuse.tmp")
		switch {
		case errors.Is(err, ErrInUse):
			kept.Add(1)
		case err != nil:
			t.Fatal(err)
		default:
			reused.Add(1)
			b := make([]byte, segSize)
			for j := range b {
				b[j] = 0xa5
			}
			f.WriteAt(b, 0)
			f.Close()
			os.Remove(path + ".reuse.tmp")
		}
		make1()
	}
	stop.Store(true)
	wg.Wait()
	t.Logf("%d rounds: %d reused, %d kept for a reader; readers opened %d views, found it gone %d times", rounds, reused.Load(), kept.Load(), opened.Load(), gone.Load())
	if reused.Load() == 0 || kept.Load() == 0 || opened.Load() == 0 {
		t.Fatalf("the race did not happen both ways: %d reused, %d kept, %d views", reused.Load(), kept.Load(), opened.Load())
	}
}

// TestReclaimRefusesCompressed: only plain segment files are reused.
func TestReclaimRefusesCompressed(t *testing.T) {
	if _, err := Reclaim(FileInfo{Num: 1, Path: "/x/1.mlog.zst", Compressed: true}, "/x/t"); err == nil {
		t.Fatal("reclaimed a compressed segment")
	}
}
