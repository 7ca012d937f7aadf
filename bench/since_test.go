package main

// BenchmarkSince: reading from a time in the middle of a large log, with
// tail.Options.Since (what `mmaptail cat --since` runs) next to a full scan
// to the same record (what a reader without it does), side by side in one
// run, each from a cold page cache. Per operation it reports the wall time,
// the bytes the operation made the kernel read from the disk
// (/proc/self/io read_bytes), and the bytes of the log in the page cache
// afterwards (mincore on every segment), then the ratios.
//
//	cd bench && go test -run '^$' -bench Since -benchtime 3x -since.size 10GiB
//
// The log is written once per run into -since.dir (default $TMPDIR) and
// removed afterwards: 200-byte zerolog-like records, 64 MiB segments, record
// times spread over a day.

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/mmaplog/mmaplog/mmaplog"
	"github.com/mmaplog/mmaplog/rotate"
	"github.com/mmaplog/mmaplog/tail"
)

var (
	sinceSize = flag.String("since.size", "2GiB", "size of the log BenchmarkSince reads (KiB, MiB, GiB)")
	sinceDir  = flag.String("since.dir", "", "directory for BenchmarkSince's log (default $TMPDIR)")
)

// sinceLog is a log written for the benchmark.
type sinceLog struct {
	dir        string
	start, end time.Time // the first and last record's times
	records    int64
	bytes      int64 // of the segment files
	segments   int
	took       time.Duration // to write it
}

// sinceRecords is how many records a reader reads after the one it looked
// for: what `cat --since T | head -1000` prints.
const sinceRecords = 1000

// writeSinceLog writes records into dir until the segment files hold size
// bytes, stamped evenly over a day.
func writeSinceLog(dir string, size int64) (*sinceLog, error) {
	const recSize = 200
	n := size / (recSize + 32)
	l := &sinceLog{dir: dir, start: time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC), records: n}
	step := 24 * time.Hour / time.Duration(n)
	var now atomic.Int64 // the writer's background work reads it too
	w, err := mmaplog.Open(dir, &mmaplog.Options{MaxBackups: -1, Clock: func() time.Time { return time.Unix(0, now.Load()) }})
	if err != nil {
		return nil, err
	}
	prefix := `{"level":"info","service":"checkout","user":"u-1042","order":"o-1000000000","message":"order placed","amount":1234,"currency":"EUR","pad":"`
	rec := []byte(prefix + strings.Repeat("x", recSize-len(prefix)-2) + `"}`)
	order := strings.Index(prefix, "o-1") + 2
	var num []byte
	for i := int64(0); i < n; i++ {
		now.Store(l.start.Add(time.Duration(i) * step).UnixNano())
		num = strconv.AppendInt(num[:0], 1e9+i%1e9, 10)
		copy(rec[order:order+10], num)
		if _, err := w.Append(mmaplog.LevelInfo, rec); err != nil {
			w.Close()
			return nil, err
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	l.end = l.start.Add(time.Duration(n-1) * step)
	lst, err := rotate.List(dir)
	if err != nil {
		return nil, err
	}
	l.bytes, l.segments = lst.DiskUsage(), len(lst.Segments)
	return l, nil
}

// dropCache writes the log's files back and drops them from the page cache.
func (l *sinceLog) dropCache() error {
	return l.eachSegment(func(f *os.File, _ int64) error {
		if err := f.Sync(); err != nil {
			return err
		}
		return unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
	})
}

// cached returns the bytes of the log's files in the page cache.
func (l *sinceLog) cached() (int64, error) {
	page := int64(os.Getpagesize())
	var n int64
	err := l.eachSegment(func(f *os.File, size int64) error {
		if size == 0 {
			return nil
		}
		b, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
		if err != nil {
			return err
		}
		defer unix.Munmap(b)
		vec := make([]byte, (size+page-1)/page)
		if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
			return e
		}
		for _, v := range vec {
			n += int64(v & 1)
		}
		return nil
	})
	return n * page, err
}

func (l *sinceLog) eachSegment(fn func(f *os.File, size int64) error) error {
	lst, err := rotate.List(l.dir)
	if err != nil {
		return err
	}
	for _, fi := range lst.Segments {
		f, err := os.Open(fi.Path)
		if err != nil {
			return err
		}
		st, err := f.Stat()
		if err == nil {
			err = fn(f, st.Size())
		}
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// diskRead returns the bytes this process made the kernel read from
// storage so far (/proc/self/io read_bytes).
func diskRead() (int64, error) {
	f, err := os.Open("/proc/self/io")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "read_bytes: "); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc/self/io has no read_bytes")
}

// sinceResult is what one way of reading measured, per operation.
type sinceResult struct {
	wall          time.Duration
	disk, cached  int64
	first         uint64 // the record found
	ops           int
	warm          bool
	name, comment string
}

// readFrom reads the log from the first record stamped at or after t, and
// sinceRecords after it: with Since, or scanning from the oldest record.
// It returns the first record's sequence number.
func readFrom(dir string, t time.Time, seek bool) (uint64, error) {
	o := &tail.Options{}
	if seek {
		o.Since = t
	}
	r, err := tail.Open(dir, o)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	var first uint64
	n, ts := 0, t.UnixNano()
	for n <= sinceRecords && r.Next() {
		rec := r.Record()
		if n == 0 && rec.Time < ts {
			continue // the full scan, before the record
		}
		if n == 0 {
			first = rec.Seq
		}
		n++
	}
	if err := r.Err(); err != nil {
		return 0, err
	}
	if n <= sinceRecords {
		return 0, fmt.Errorf("read %d records from %v, want %d", n, t, sinceRecords+1)
	}
	return first, nil
}

// measureSince runs one read, from a cold page cache unless warm.
func measureSince(l *sinceLog, t time.Time, seek, warm bool) (sinceResult, error) {
	res := sinceResult{warm: warm}
	if !warm {
		if err := l.dropCache(); err != nil {
			return res, err
		}
	}
	d0, err := diskRead()
	if err != nil {
		return res, err
	}
	c0, err := l.cached()
	if err != nil {
		return res, err
	}
	begin := time.Now()
	res.first, err = readFrom(l.dir, t, seek)
	res.wall = time.Since(begin)
	if err != nil {
		return res, err
	}
	d1, _ := diskRead()
	c1, err := l.cached()
	res.disk, res.cached = d1-d0, c1-c0
	return res, err
}

func parseSize(s string) (int64, error) {
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"", 1}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 {
				break
			}
			return n * u.mult, nil
		}
	}
	return 0, fmt.Errorf("size %q: want a number and KiB, MiB or GiB", s)
}

// BenchmarkSince: see the top of the file.
func BenchmarkSince(b *testing.B) {
	size, err := parseSize(*sinceSize)
	if err != nil {
		b.Fatal(err)
	}
	parent := *sinceDir
	if parent == "" {
		parent = os.TempDir()
	}
	tmp, err := os.MkdirTemp(parent, "bench-since-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	began := time.Now()
	l, err := writeSinceLog(filepath.Join(tmp, "log"), size)
	if err != nil {
		b.Fatal(err)
	}
	l.took = time.Since(began)
	mid := l.start.Add(l.end.Sub(l.start) / 2)
	results := map[string]*sinceResult{}
	for _, c := range []struct {
		name       string
		seek, warm bool
	}{
		{"since/cold", true, false},
		{"scan/cold", false, false},
		{"since/warm", true, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			total := &sinceResult{name: c.name}
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				if !c.warm {
					if err := l.dropCache(); err != nil {
						b.Fatal(err)
					}
				} else if _, err := readFrom(l.dir, mid, c.seek); err != nil {
					b.Fatal(err) // warm it up
				}
				r, err := measureSince(l, mid, c.seek, true)
				if err != nil {
					b.Fatal(err)
				}
				total.wall += r.wall
				total.disk += r.disk
				total.cached += r.cached
				total.first = r.first
				total.ops++
			}
			ops := float64(total.ops)
			b.ReportMetric(float64(total.wall.Nanoseconds())/ops, "ns/op") // the read alone
			b.ReportMetric(float64(total.wall.Microseconds())/1000/ops, "ms/op")
			if !c.warm {
				b.ReportMetric(float64(total.disk)/(1<<20)/ops, "MiB-disk/op")
				b.ReportMetric(float64(total.cached)/(1<<20)/ops, "MiB-cached/op")
			}
			results[c.name] = total
		})
	}
	s, f := results["since/cold"], results["scan/cold"]
	if s == nil || f == nil {
		return
	}
	if s.first != f.first {
		b.Fatalf("Since found record %d, the full scan %d", s.first, f.first)
	}
	per := func(r *sinceResult) (ms, disk, cached float64) {
		n := float64(r.ops)
		return float64(r.wall.Microseconds()) / 1000 / n, float64(r.disk) / (1 << 20) / n, float64(r.cached) / (1 << 20) / n
	}
	sm, sd, sc := per(s)
	fm, fd, fc := per(f)
	var sb strings.Builder
	fmt.Fprintf(&sb, "\nBenchmarkSince: %d records, %.2f GiB, %d segment files, written in %v\n", l.records, float64(l.bytes)/(1<<30), l.segments, l.took.Round(time.Second))
	fmt.Fprintf(&sb, "\n| reading %d records from the middle (record %d) of %.2f GiB, cold cache | wall ms | MiB read from disk | MiB of the log cached after |\n|---|---:|---:|---:|\n",
		sinceRecords+1, s.first, float64(l.bytes)/(1<<30))
	fmt.Fprintf(&sb, "| tail.Options.Since (cat --since) | %.1f | %.2f | %.2f |\n", sm, sd, sc)
	fmt.Fprintf(&sb, "| full scan to the record | %.1f | %.1f | %.1f |\n", fm, fd, fc)
	fmt.Fprintf(&sb, "| full scan / Since | %.0f× | %.0f× | %.0f× |\n", fm/sm, fd/max(sd, 1.0/1024), fc/max(sc, 1.0/1024))
	if w := results["since/warm"]; w != nil {
		wm, _, _ := per(w)
		fmt.Fprintf(&sb, "| Since, warm cache | %.2f | | |\n", wm)
	}
	// The table goes to standard output with the benchmark lines (b.Log
	// would show only with -v).
	fmt.Print(sb.String())
}

// TestSinceBenchmarkMeasures runs the benchmark's reads on a small log: the
// seek and the full scan find the same record, the seek brings less of the
// log into the page cache than the full scan, and the figures are read.
func TestSinceBenchmarkMeasures(t *testing.T) {
	l, err := writeSinceLog(filepath.Join(t.TempDir(), "log"), 256<<20)
	if err != nil {
		t.Fatal(err)
	}
	mid := l.start.Add(l.end.Sub(l.start) / 2)
	seek, err := measureSince(l, mid, true, false)
	if err != nil {
		t.Fatal(err)
	}
	scan, err := measureSince(l, mid, false, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("since: %v, %d KiB from disk, %d KiB cached; scan: %v, %d KiB from disk, %d KiB cached",
		seek.wall, seek.disk>>10, seek.cached>>10, scan.wall, scan.disk>>10, scan.cached>>10)
	if seek.first != scan.first || seek.first == 0 {
		t.Fatalf("Since found record %d, the full scan %d", seek.first, scan.first)
	}
	if scan.cached < 64<<20 || seek.cached*8 > scan.cached {
		t.Fatalf("cached after Since %d KiB, after the full scan %d KiB: want the scan to cache half the log and Since an eighth of that at most", seek.cached>>10, scan.cached>>10)
	}
}
