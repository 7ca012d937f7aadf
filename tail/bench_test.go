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
// records to DIR, one every GAP, as a separate process; it sleeps between
// records, or with BUSY=1 in the environment spins on the clock instead (a
// writer that never leaves the CPU).
func benchWriter() int {
	n, _ := strconv.Atoi(os.Getenv("N"))
	gap, _ := time.ParseDuration(os.Getenv("GAP"))
	w, err := mmaplog.Open(os.Getenv("DIR"), &mmaplog.Options{SegmentSize: 64 << 20, Clock: time.Now})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	p := []byte(`{"level":"info","service":"checkout","user":"u-1042","amount":42.5,"message":"order placed, padded so that the record is about two hundred bytes long ......"}`)
	next := time.Now()
	for i := 0; i < n; i++ {
		if gap > 0 {
			next = next.Add(gap)
			if os.Getenv("BUSY") != "" {
				for time.Now().Before(next) {
				}
			} else if d := time.Until(next); d > 0 {
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
// across processes when the reader sleeps between records (gap=1ms and,
// the default spin being a few microseconds, gap=20µs too), and a reader
// that stays awake between records (Options.Spin 50µs at gap=20µs). It
// reports the percentiles; ns/op is the writer's pace, not a cost.
// BenchmarkWakeBaseline is the same hand-off without a log. The writer
// stamps the record with the exact clock (Options.Clock time.Now).
func BenchmarkFollowLatency(b *testing.B) {
	type pace struct {
		gap, spin time.Duration
	}
	for _, p := range []pace{{time.Millisecond, 0}, {100 * time.Microsecond, 0}, {20 * time.Microsecond, 0}, {20 * time.Microsecond, 50 * time.Microsecond}} {
		gap := p.gap
		name := "gap=" + gap.String()
		if p.spin > 0 {
			name += "/spin=" + p.spin.String()
		}
		b.Run(name, func(b *testing.B) {
			dir := filepath.Join(b.TempDir(), "log")
			// The log exists before the reader opens it.
			w, err := mmaplog.Open(dir, &mmaplog.Options{ExactClock: true}) // latency from the record time
			if err != nil {
				b.Fatal(err)
			}
			w.Close()
			r, err := tail.Open(dir, &tail.Options{Follow: true, FromEnd: true, Spin: p.spin})
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
			var slow slowRecords
			cause := waitNone // how the last Wait before the record ended
			for len(lat) < b.N {
				if !r.Next() {
					if err := r.Err(); err != nil {
						b.Fatal(err)
					}
					before := r.WaitStats()
					r.Wait(ctx)
					cause = waitCause(before, r.WaitStats())
					continue
				}
				d := time.Since(time.Unix(0, r.Record().Time))
				lat = append(lat, d)
				slow.add(d, cause)
			}
			b.StopTimer()
			if err := cmd.Wait(); err != nil {
				b.Fatal(err)
			}
			reportLatency(b, lat)
			slow.report(b)
		})
	}
}

// reportLatency reports the percentiles of lat (sorted here) in µs.
func reportLatency(b *testing.B, lat []time.Duration) {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	q := func(p float64) float64 { return float64(lat[min(int(float64(len(lat))*p), len(lat)-1)].Microseconds()) }
	b.ReportMetric(q(0.50), "p50-µs")
	b.ReportMetric(q(0.99), "p99-µs")
	b.ReportMetric(q(0.999), "p99.9-µs")
	b.ReportMetric(q(1), "max-µs")
	over := len(lat) - sort.Search(len(lat), func(i int) bool { return lat[i] > time.Millisecond })
	b.ReportMetric(float64(over), "over-1ms")
}

// How the Wait before a record ended (tail.WaitStats), for the records that
// took over a millisecond: waitNone, the record was read without a Wait
// since the one before it was.
const (
	waitNone = iota
	waitSpun
	waitWoken
	waitTimedOut
	waitPolled
	waitCauses
)

var waitCauseNames = [waitCauses]string{"nowait", "spun", "woken", "timedout", "polled"}

// waitCause is how a Wait ended, from the Reader's WaitStats before and
// after it; whether it released the pages first is counted apart.
func waitCause(before, after tail.WaitStats) int {
	switch {
	case after.TimedOut != before.TimedOut:
		return waitTimedOut
	case after.Woken != before.Woken:
		return waitWoken
	case after.Polled != before.Polled:
		return waitPolled
	case after.Spun != before.Spun:
		return waitSpun
	}
	return waitNone
}

// slowRecords counts the records that took over a millisecond from the
// writer's time stamp to the Reader, by how the Wait before them ended.
type slowRecords struct {
	n       int
	byCause [waitCauses]int
}

func (s *slowRecords) add(d time.Duration, cause int) {
	if d > time.Millisecond {
		s.n++
		s.byCause[cause]++
	}
}

// report reports, of the records over a millisecond (reportLatency counts
// them), those behind each way a Wait ended.
func (s *slowRecords) report(b *testing.B) {
	for c, k := range s.byCause {
		if k > 0 {
			b.ReportMetric(float64(k), "over-1ms-"+waitCauseNames[c])
		}
	}
}
