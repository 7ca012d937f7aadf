package tail_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/mmaplog/mmaplog/mmaplog"
	"github.com/mmaplog/mmaplog/tail"
)

// benchWriter is the writer process of BenchmarkFollowLatency: it appends N
// records to DIR, one every GAP, as a separate process.
func benchWriter() int {
	n, _ := strconv.Atoi(os.Getenv("N"))
	gap, _ := time.ParseDuration(os.Getenv("GAP"))
	w, err := mmaplog.Open(os.Getenv("DIR"), &mmaplog.Options{SegmentSize: 64 << 20, ExactClock: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	p := []byte(`{"level":"info","service":"checkout","user":"u-1042","amount":42.5,"message":"order placed, padded so that the record is about two hundred bytes long ......"}`)
	next := time.Now()
	for i := 0; i < n; i++ {
		if gap > 0 {
			next = next.Add(gap)
			if d := time.Until(next); d > 0 {
				time.Sleep(d)
			}
		}
		if _, err := w.Append(mmaplog.LevelInfo, p); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	w.Close()
	return 0
}

// BenchmarkFollowLatency measures the time from a writer process's publish
// (the record's time stamp, taken just before it is copied in) to a
// following Reader in this process returning the record: the futex wake-up
// across processes when the reader sleeps between records (gap=1ms), and
// the spinning reader when records come close together (gap=20µs). It
// reports the percentiles; ns/op is the writer's pace, not a cost.
func BenchmarkFollowLatency(b *testing.B) {
	for _, gap := range []time.Duration{time.Millisecond, 100 * time.Microsecond, 20 * time.Microsecond} {
		b.Run("gap="+gap.String(), func(b *testing.B) {
			dir := filepath.Join(b.TempDir(), "log")
			// The log exists before the reader opens it.
			w, err := mmaplog.Open(dir, &mmaplog.Options{ExactClock: true}) // latency from the record time
			if err != nil {
				b.Fatal(err)
			}
			w.Close()
			r, err := tail.Open(dir, &tail.Options{Follow: true, FromEnd: true})
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "MMAPLOG_BENCH_WRITER=1", "DIR="+dir, "N="+strconv.Itoa(b.N), "GAP="+gap.String())
			cmd.Stderr = os.Stderr
			b.ResetTimer()
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			lat := make([]time.Duration, 0, b.N)
			ctx := context.Background()
			for len(lat) < b.N {
				if !r.Next() {
					if err := r.Err(); err != nil {
						b.Fatal(err)
					}
					r.Wait(ctx)
					continue
				}
				lat = append(lat, time.Since(time.Unix(0, r.Record().Time)))
			}
			b.StopTimer()
			if err := cmd.Wait(); err != nil {
				b.Fatal(err)
			}
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			q := func(p float64) float64 { return float64(lat[min(int(float64(len(lat))*p), len(lat)-1)].Microseconds()) }
			b.ReportMetric(q(0.50), "p50-µs")
			b.ReportMetric(q(0.99), "p99-µs")
			b.ReportMetric(q(0.999), "p99.9-µs")
			b.ReportMetric(q(1), "max-µs")
		})
	}
}
