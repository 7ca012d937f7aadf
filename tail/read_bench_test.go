package tail_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mmaplog/mmaplog/mmaplog"
	"github.com/mmaplog/mmaplog/rotate"
	"github.com/mmaplog/mmaplog/tail"
)

// benchLog writes n records of about 200 bytes into a log of 8 MiB
// segments, compressing the rolled ones if compress is set, and returns its
// directory.
func benchLog(b *testing.B, n int, compress bool) string {
	b.Helper()
	dir := filepath.Join(b.TempDir(), "log")
	w, err := mmaplog.Open(dir, &mmaplog.Options{SegmentSize: 8 << 20, MaxBackups: -1})
	if err != nil {
		b.Fatal(err)
	}
	p := []byte(`{"level":"info","service":"checkout","user":"u-1042","amount":42.5,"message":"order placed, padded so that the record is about two hundred bytes long ......"}`)
	for i := 0; i < n; i++ {
		if _, err := w.Append(mmaplog.LevelInfo, p); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	if compress {
		l, err := rotate.List(dir)
		if err != nil {
			b.Fatal(err)
		}
		for _, fi := range l.Segments[:len(l.Segments)-1] {
			if _, err := rotate.CompressSegment(fi); err != nil {
				b.Fatal(err)
			}
		}
	}
	return dir
}

// cpuTime is the CPU time this process used so far, user and system: on a
// shared machine it varies less with the load than the wall time does.
func cpuTime() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkRead is the read path per record: a Reader going through a
// closed log of 100,000 records (3 segments), opened again at its end; an op
// is one record. "static" reads to the end, "follow" is a following Reader
// catching up, "compressed" reads rolled segments compressed with zstd.
func BenchmarkRead(b *testing.B) {
	const records = 100_000
	for _, c := range []struct {
		name             string
		follow, compress bool
	}{{"static", false, false}, {"follow", true, false}, {"compressed", false, true}} {
		b.Run(c.name, func(b *testing.B) {
			dir := benchLog(b, records, c.compress)
			var r *tail.Reader
			open := func() {
				var err error
				if r, err = tail.Open(dir, &tail.Options{Follow: c.follow}); err != nil {
					b.Fatal(err)
				}
			}
			open()
			b.ReportAllocs()
			b.ResetTimer()
			cpu := cpuTime()
			for i := 0; i < b.N; i++ {
				if !r.Next() {
					if err := r.Err(); err != nil {
						b.Fatal(err)
					}
					r.Close()
					open()
					if !r.Next() {
						b.Fatalf("nothing to read: %v", r.Err())
					}
				}
			}
			b.StopTimer()
			b.ReportMetric(float64((cpuTime()-cpu).Nanoseconds())/float64(b.N), "cpu-ns/op")
			if len(r.Damage()) != 0 {
				b.Fatalf("damage: %v", r.Damage())
			}
			r.Close()
		})
	}
}

// BenchmarkVerify is tail.Verify on a closed log of 100,000 records: an op
// is one Verify; ns/record is the time per record.
func BenchmarkVerify(b *testing.B) {
	const records = 100_000
	dir := benchLog(b, records, false)
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	for i := 0; i < b.N; i++ {
		rep, err := tail.Verify(dir)
		if err != nil || !rep.Clean() || rep.Records != records {
			b.Fatal(fmt.Sprint(err, rep))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/records, "ns/record")
	b.ReportMetric(float64((cpuTime()-cpu).Nanoseconds())/float64(b.N)/records, "cpu-ns/record")
}
