package mmaplog_test

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/mmaplog/mmaplog/mmaplog"
	"github.com/mmaplog/mmaplog/rotate"
)

// record200 is a realistic 200-byte zerolog JSON event.
var record200 = func() []byte {
	p := []byte(`{"level":"info","time":"2026-11-23T11:36:48Z","service":"checkout","user":"u-1042","order":1042,"amount":42.5,"path":"/api/v1/checkout","status":200,"latency_ms":3.25,"message":"order placed"`)
	for len(p) < 199 {
		p = append(p, ' ')
	}
	return append(p, '}')
}()

// BenchmarkWrite200 compares one Write of a 200-byte record into mmaplog
// (default options, flush none) with os.File.Write (O_APPEND, what zerolog
// into a file does) and a 64 KiB bufio.Writer into a file, in one run.
// Compare ns/op side by side; mmaplog's figure includes its rotations.
// mmaplog-exact-clock reads the time for every record (Options.ExactClock).
// Each case first writes the default retention bound's worth (640 MiB,
// untimed), so that it is measured in the steady state of a service that
// has logged for a while: for mmaplog, each rotation's segment made from
// the file retention removed; mmaplog-fresh (Options.NoReuse) makes every
// segment a new file, what a new log directory's first segments cost.
func BenchmarkWrite200(b *testing.B) {
	mm := func(o *mmaplog.Options) func(b *testing.B) {
		return func(b *testing.B) {
			w, err := mmaplog.Open(b.TempDir(), o)
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			warmUp(b, w)
			b.SetBytes(int64(len(record200)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := w.Write(record200); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	b.Run("mmaplog", mm(nil))
	b.Run("mmaplog-exact-clock", mm(&mmaplog.Options{ExactClock: true}))
	b.Run("mmaplog-fresh", mm(&mmaplog.Options{NoReuse: true}))
	b.Run("osfile", func(b *testing.B) {
		f, err := os.OpenFile(filepath.Join(b.TempDir(), "log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		warmUp(b, f)
		b.SetBytes(int64(len(record200)))
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := f.Write(record200); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("bufio", func(b *testing.B) {
		f, err := os.OpenFile(filepath.Join(b.TempDir(), "log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		bw := bufio.NewWriterSize(f, 64<<10)
		warmUp(b, bw)
		b.SetBytes(int64(len(record200)))
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := bw.Write(record200); err != nil {
				b.Fatal(err)
			}
		}
		bw.Flush()
	})
}

// BenchmarkWrite200Parallel is BenchmarkWrite200/mmaplog with GOMAXPROCS
// goroutines (-cpu to vary) sharing one Writer.
func BenchmarkWrite200Parallel(b *testing.B) {
	w, err := mmaplog.Open(b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	b.SetBytes(int64(len(record200)))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := w.Write(record200); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkRotation measures the cost of rolling over: 256 KiB segments
// filled in bursts (one segment's worth of 200-byte records as fast as
// possible, then a 2 ms pause, as a busy service logs), so that rotation
// happens thousands of times. It reports the slowest Write, the 99.9th
// percentile and how many rotations had to wait for the next segment.
func BenchmarkRotation(b *testing.B) {
	const segSize = 256 << 10
	perSeg := segSize / 232
	for i := 0; i < b.N; i++ {
		w, err := mmaplog.Open(b.TempDir(), &mmaplog.Options{SegmentSize: segSize})
		if err != nil {
			b.Fatal(err)
		}
		rotations := 3000
		lat := make([]time.Duration, 0, rotations*perSeg)
		for r := 0; r < rotations; r++ {
			for j := 0; j < perSeg; j++ {
				t0 := time.Now()
				if _, err := w.Write(record200); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			time.Sleep(2 * time.Millisecond)
		}
		st := w.Stats()
		w.Close()
		slices.Sort(lat)
		b.ReportMetric(float64(st.Rotations), "rotations")
		b.ReportMetric(float64(st.RotationWaits), "rotations-waited")
		b.ReportMetric(float64(lat[len(lat)*999/1000].Nanoseconds()), "p99.9-ns")
		b.ReportMetric(float64(lat[len(lat)-1].Microseconds()), "max-us")
		b.ReportMetric(float64(st.MaxRotationWait.Microseconds()), "max-rotation-wait-us")
		b.ReportMetric(float64(st.MaxPrepareTime.Microseconds()), "max-prepare-us")
	}
}

// BenchmarkZerolog is the cost of a realistic zerolog event into io.Discard
// and into mmaplog: the difference is what mmaplog adds to a log call.
func BenchmarkZerolog(b *testing.B) {
	event := func(log zerolog.Logger, i int) {
		log.Info().Str("user", "u-1042").Int("order", i).Float64("amount", 42.5).
			Str("path", "/api/v1/checkout").Int("status", 200).Msg("order placed")
	}
	b.Run("discard", func(b *testing.B) {
		log := zerolog.New(io.Discard).With().Timestamp().Str("service", "checkout").Logger()
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			event(log, i)
		}
	})
	b.Run("mmaplog", func(b *testing.B) {
		w, err := mmaplog.Open(b.TempDir(), nil)
		if err != nil {
			b.Fatal(err)
		}
		defer w.Close()
		warmUp(b, w)
		log := zerolog.New(w).With().Timestamp().Str("service", "checkout").Logger()
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			event(log, i)
		}
	})
}

// BenchmarkSustained writes MMAPLOG_SUSTAINED_BYTES (default 3 GB) of
// 200-byte records with default options, flat out, and reports records/s
// and the largest size the log directory reached (it must stay within the
// default retention bound). Side by side in the same run: the same records
// with os.File.Write and with a 64 KiB bufio.Writer (each into a new file,
// as mmaplog into a new directory: the first MMAPLOG_SUSTAINED_BYTES of a
// service that starts), and copied into pre-faulted pages of an anonymous
// mapping ("limit": what memory allows, no log at all). mmaplog-timed
// writes the same again timing every Write, and reports the slowest Write
// and how many took over 100 µs after the first two segments (a rotation
// that waits for the next segment shows as one slow Write); limit-timed
// times each copy the same way, so that slow iterations there, which are
// the machine's (the hypervisor taking the CPU, interrupts), can be told
// from mmaplog's. It is long:
// run it alone with -benchtime=1x.
func BenchmarkSustained(b *testing.B) {
	total := int64(3e9)
	if s := os.Getenv("MMAPLOG_SUSTAINED_BYTES"); s != "" {
		if n, err := parseInt(s); err == nil {
			total = n
		}
	}
	n := total / int64(len(record200))
	// Records in the first two segments: their files are new, not reused.
	warm := 2 * int64(mmaplog.DefaultSegmentSize/(len(record200)+16))
	sustained := func(b *testing.B, timed bool) {
		for i := 0; i < b.N; i++ {
			dir := b.TempDir()
			w, err := mmaplog.Open(dir, nil)
			if err != nil {
				b.Fatal(err)
			}
			var maxDir atomic.Int64
			stop := make(chan struct{})
			done := make(chan struct{})
			go func() {
				defer close(done)
				for {
					select {
					case <-stop:
						return
					case <-time.After(5 * time.Millisecond):
					}
					if l, err := rotate.List(dir); err == nil && l.DiskUsage() > maxDir.Load() {
						maxDir.Store(l.DiskUsage())
					}
				}
			}()
			var slowest, slowestWarm time.Duration
			var over100us, overAtRotation int
			rotations := w.Stats().Rotations
			start := time.Now()
			var faults int64
			if timed {
				// The Writes' page faults: the segments are pre-faulted,
				// so each is a page the kernel's writeback cleaned (and
				// write-protected) before the writer got to it.
				runtime.LockOSThread()
				faults = -threadFaults()
				defer runtime.UnlockOSThread()
				for j := int64(0); j < n; j++ {
					t0 := time.Now()
					if _, err := w.Write(record200); err != nil {
						b.Fatal(err)
					}
					d := time.Since(t0)
					if j < warm {
						slowestWarm = max(slowestWarm, d)
						continue
					}
					slowest = max(slowest, d)
					if d > 100*time.Microsecond {
						over100us++
						// A slow Write that rolled the log over (the
						// count moved since the last slow one).
						if r := w.Stats().Rotations; r != rotations {
							overAtRotation++
							rotations = r
						}
					}
				}
			} else {
				for j := int64(0); j < n; j++ {
					if _, err := w.Write(record200); err != nil {
						b.Fatal(err)
					}
				}
			}
			el := time.Since(start)
			faults += threadFaults()
			close(stop)
			<-done
			st := w.Stats()
			w.Close()
			bound := (*mmaplog.Options)(nil).DiskBound()
			if maxDir.Load() > bound {
				b.Fatalf("the directory reached %d bytes, over the default bound %d", maxDir.Load(), bound)
			}
			b.ReportMetric(float64(n)/el.Seconds(), "records/s")
			b.ReportMetric(float64(maxDir.Load())/(1<<20), "max-dir-MiB")
			b.ReportMetric(float64(st.Rotations), "rotations")
			b.ReportMetric(float64(st.Reused), "reused")
			b.ReportMetric(float64(st.RotationWaits), "rotations-waited")
			b.ReportMetric(float64(st.MaxRotationWait.Microseconds()), "max-rotation-wait-us")
			b.ReportMetric(float64(st.MaxPrepareTime.Microseconds()), "max-prepare-us")
			if timed {
				b.ReportMetric(float64(slowestWarm.Microseconds()), "max-first2-us")
				b.ReportMetric(float64(slowest.Microseconds()), "max-after2-us")
				b.ReportMetric(float64(over100us), "over100us-after2")
				b.ReportMetric(float64(overAtRotation), "over100us-at-rotation")
				b.ReportMetric(float64(faults), "write-faults")
			}
		}
	}
	b.Run("mmaplog", func(b *testing.B) { sustained(b, false) })
	b.Run("mmaplog-timed", func(b *testing.B) { sustained(b, true) })
	limit := func(b *testing.B, timed bool) {
		const size = mmaplog.DefaultSegmentSize
		m, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
		if err != nil {
			b.Fatal(err)
		}
		defer unix.Munmap(m)
		for off := 0; off < size; off += 4096 {
			m[off] = 1 // pre-fault every page for writing
		}
		stride := (len(record200) + 16 + 7) &^ 7 // mmaplog's framing: header, padded to 8 bytes
		for i := 0; i < b.N; i++ {
			off := 0
			var slowest time.Duration
			var over100us int
			start := time.Now()
			for j := int64(0); j < n; j++ {
				if off+stride > size {
					off = 0
				}
				if timed {
					t0 := time.Now()
					copy(m[off+16:], record200)
					d := time.Since(t0)
					slowest = max(slowest, d)
					if d > 100*time.Microsecond {
						over100us++
					}
				} else {
					copy(m[off+16:], record200)
				}
				off += stride
			}
			el := time.Since(start)
			b.ReportMetric(float64(n)/el.Seconds(), "records/s")
			if timed {
				// What the machine itself does to a loop that makes no
				// system call: the same slow iterations here are not
				// mmaplog's.
				b.ReportMetric(float64(slowest.Microseconds()), "max-us")
				b.ReportMetric(float64(over100us), "over100us")
			}
		}
	}
	b.Run("limit", func(b *testing.B) { limit(b, false) })
	b.Run("limit-timed", func(b *testing.B) { limit(b, true) })
	b.Run("osfile", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			f, err := os.OpenFile(filepath.Join(b.TempDir(), "log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
			if err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			for j := int64(0); j < n; j++ {
				if _, err := f.Write(record200); err != nil {
					b.Fatal(err)
				}
			}
			el := time.Since(start)
			f.Close()
			b.ReportMetric(float64(n)/el.Seconds(), "records/s")
		}
	})
	b.Run("bufio", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			f, err := os.OpenFile(filepath.Join(b.TempDir(), "log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
			if err != nil {
				b.Fatal(err)
			}
			bw := bufio.NewWriterSize(f, 64<<10)
			start := time.Now()
			for j := int64(0); j < n; j++ {
				if _, err := bw.Write(record200); err != nil {
					b.Fatal(err)
				}
			}
			if err := bw.Flush(); err != nil {
				b.Fatal(err)
			}
			el := time.Since(start)
			f.Close()
			b.ReportMetric(float64(n)/el.Seconds(), "records/s")
		}
	})
}

// warmUp writes the default retention bound's worth of 200-byte records
// into w (see BenchmarkWrite200).
func warmUp(b *testing.B, w io.Writer) {
	b.Helper()
	for n := (*mmaplog.Options)(nil).DiskBound(); n > 0; n -= int64(len(record200)) {
		if _, err := w.Write(record200); err != nil {
			b.Fatal(err)
		}
	}
}

func parseInt(s string) (int64, error) {
	var n int64
	for _, c := range bytes.TrimSpace([]byte(s)) {
		if c < '0' || c > '9' {
			return 0, os.ErrInvalid
		}
		n = n*10 + int64(c-'0')
	}
	return n, nil
}
