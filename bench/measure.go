package main

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// A Sample is what one repetition of a case measured.
type Sample struct {
	// The throughput pass: no clock read around Write.
	Records int64         // records written
	Bytes   int64         // bytes given to Write
	Elapsed time.Duration // wall time of the pass, all goroutines
	Mallocs uint64        // heap allocations in the process during the pass
	CPU     time.Duration // user+system CPU time of the process during the pass
	RSS     int64         // resident set of the process at the end of the pass
	RSSOpen int64         // resident set before the sink was opened
	// DirtyBytes is the page cache waiting for the disk at the end of the
	// throughput pass (see dirtyBytes).
	DirtyBytes int64

	// The latency pass: each Write timed (see clockCost).
	Hist *hdrhistogram.Histogram

	Written   int64  // records written in all passes, warm-up included
	Dropped   uint64 // records written but not delivered (zerolog's diode)
	Rotations uint64 // rotations during the case (counted by the sink, or estimated)
	// Rotations that waited for the next segment, and the longest wait
	// (mmaplog only).
	RotationWaits   uint64
	MaxRotationWait time.Duration
	MaxPrepare      time.Duration // the longest preparation of a segment

	// Figures of the shipping scenarios (follow.go, ship.go).
	PeerCPU    time.Duration // CPU time of the writer process for the Records
	EventCount int64         // events the output acknowledged during the pass
	EventBytes int64         // their bytes of JSON
	WireBytes  int64         // bytes the receiver read from its connections meanwhile
}

// Histogram range: 1 ns to 100 s, 3 significant digits.
const histMax = int64(100 * time.Second)

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(1, histMax, 3) }

// writeCase returns the Run of sink s in group g: open the sink in a fresh
// directory, warm up, a throughput pass, a latency pass, close, and check
// what was delivered.
func writeCase(s *Sink, g *Group) func(env *Env) (*Sample, error) {
	return func(env *Env) (*Sample, error) {
		stream, err := streamFor(g.Size)
		if err != nil {
			return nil, err
		}
		runtime.GC()
		var smp Sample
		smp.RSSOpen = residentBytes()
		t, err := s.Open(env.Dir, g.Segment)
		if err != nil {
			return nil, fmt.Errorf("open %s in %s: %w", s.ID, env.Dir, err)
		}
		wl := &workload{t: t, stream: stream, goroutines: g.Goroutines, encode: g.Encode}
		closed := false
		defer func() {
			if !closed {
				t.Close()
			}
		}()
		if _, err := wl.pass(env.Warmup, 0, false); err != nil {
			return nil, fmt.Errorf("%s: warm-up: %w", s.ID, err)
		}
		if st, ok := t.(interface{ SteadyBytes() int64 }); ok && !env.Quick && !s.Slow {
			if _, err := wl.pass(0, st.SteadyBytes(), false); err != nil {
				return nil, fmt.Errorf("%s: warm-up to the steady state: %w", s.ID, err)
			}
		}
		if m, ok := t.(interface{ StartMeasuring() }); ok {
			m.StartMeasuring() // rotation figures: the measured passes only
		}

		var ms0, ms1 runtime.MemStats
		runtime.ReadMemStats(&ms0)
		cpu0 := cpuTime()
		// A quick run checks that rotation happens with small segments:
		// its throughput pass writes at least quickRotations segments'
		// worth, however long that takes here (msync per Write excluded:
		// it rotates too slowly to be checked).
		var minBytes int64
		if env.Quick && g.Scenario == "rotation" && !s.Slow {
			minBytes = (quickRotations + 1) * g.Segment
		}
		tp, err := wl.pass(env.Duration, minBytes, false)
		cpu1 := cpuTime()
		runtime.ReadMemStats(&ms1)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.ID, err)
		}
		smp.RSS = residentBytes()
		smp.DirtyBytes = dirtyBytes()
		smp.Records, smp.Bytes, smp.Elapsed = tp.records, tp.bytes, tp.elapsed
		smp.Mallocs = ms1.Mallocs - ms0.Mallocs
		smp.CPU = cpu1 - cpu0

		lat, err := wl.pass(env.Duration, 0, true)
		if err != nil {
			return nil, fmt.Errorf("%s: latency pass: %w", s.ID, err)
		}
		smp.Hist = lat.hist
		smp.Written = wl.written
		if r, ok := t.(rotator); ok {
			smp.Rotations = r.Rotations()
		} else if s.Rotates {
			// lumberjack and phuslu/log rotate when the next write would
			// pass the segment size: the count follows from the bytes.
			smp.Rotations = uint64(wl.writtenBytes / g.Segment)
		}
		if r, ok := t.(rotationWaiter); ok {
			smp.RotationWaits, smp.MaxRotationWait = r.RotationWaits()
			smp.MaxPrepare = r.MaxPrepareTime()
		}
		closed = true
		if err := t.Close(); err != nil {
			return nil, fmt.Errorf("%s: close: %w", s.ID, err)
		}
		if d, ok := t.(deliverer); ok {
			n, err := d.Delivered()
			if err != nil {
				return nil, fmt.Errorf("%s: counting delivered records: %w", s.ID, err)
			}
			if n < uint64(wl.written) {
				smp.Dropped = uint64(wl.written) - n
			}
		}
		return &smp, nil
	}
}

// A workload writes a stream into a target from a number of goroutines.
type workload struct {
	t          Target
	stream     *Stream
	goroutines int
	encode     bool

	written      int64 // records, all passes
	writtenBytes int64
	// progress, when set (a pass with a byte count to reach), is called
	// by each goroutine with the bytes it wrote since its last call.
	progress func(bytes int64)
}

type passResult struct {
	records, bytes int64
	elapsed        time.Duration
	hist           *hdrhistogram.Histogram // merged, timed passes only
}

// checkEvery is how many records a goroutine writes between looks at the
// stop flag: few enough that a pass of msync'ed writes ends on time.
const checkEvery = 8

// quickRotations is how many rotations a quick run's rotation group
// makes for sure (see writeCase).
const quickRotations = 10

// pass runs the goroutines for about d, and, with minBytes > 0, until they
// wrote at least minBytes (passLimit catches a hang). With timed, each
// Write (or, when encoding, each zerolog call) is timed with nanotime into
// the goroutine's own histogram, merged at the end. Each goroutine starts
// at its own place in the stream.
func (wl *workload) pass(d time.Duration, minBytes int64, timed bool) (passResult, error) {
	type worker struct {
		records, bytes int64
		hist           *hdrhistogram.Histogram
		err            error
	}
	ws := make([]worker, wl.goroutines)
	if timed {
		for i := range ws {
			ws[i].hist = newHist() // before the clock starts: 200 KiB each
		}
	}
	var stop atomic.Bool
	var timeUp atomic.Bool
	var total atomic.Int64 // bytes written by all goroutines, with minBytes only
	var ready, done sync.WaitGroup
	if minBytes > 0 {
		// Stop once the count is reached after d.
		wl.progress = func(b int64) {
			if total.Add(b) >= minBytes && timeUp.Load() {
				stop.Store(true)
			}
		}
	}
	start := make(chan struct{})
	for i := range ws {
		ready.Add(1)
		done.Add(1)
		go func(w *worker, first int) {
			defer done.Done()
			ready.Done()
			<-start
			if wl.encode {
				w.records, w.bytes, w.err = wl.encodeLoop(&stop, first, w.hist)
			} else {
				w.records, w.bytes, w.err = wl.writeLoop(&stop, first, w.hist)
			}
		}(&ws[i], i*len(wl.stream.Records)/wl.goroutines)
	}
	ready.Wait()
	t0 := time.Now()
	close(start)
	timer := time.AfterFunc(d, func() {
		timeUp.Store(true)
		if minBytes <= 0 || total.Load() >= minBytes {
			stop.Store(true)
		}
	})
	var hang *time.Timer
	if minBytes > 0 {
		hang = time.AfterFunc(passLimit, func() { stop.Store(true) })
	}
	done.Wait()
	elapsed := time.Since(t0)
	timer.Stop()
	wl.progress = nil
	if hang != nil {
		hang.Stop()
	}

	var r passResult
	r.elapsed = elapsed
	if timed {
		r.hist = newHist()
	}
	var errs []error
	for i := range ws {
		r.records += ws[i].records
		r.bytes += ws[i].bytes
		if ws[i].err != nil {
			errs = append(errs, ws[i].err)
		}
		if timed {
			r.hist.Merge(ws[i].hist)
		}
	}
	wl.written += r.records
	wl.writtenBytes += r.bytes
	if len(errs) > 0 {
		return r, fmt.Errorf("after %d records: %w", r.records, errs[0])
	}
	if minBytes > 0 && r.bytes < minBytes {
		return r, fmt.Errorf("wrote %d bytes in %v, fewer than the %d the pass needs: a hang?", r.bytes, elapsed.Round(time.Millisecond), minBytes)
	}
	return r, nil
}

func (wl *workload) writeLoop(stop *atomic.Bool, i int, h *hdrhistogram.Histogram) (n, b int64, err error) {
	t, s := wl.t, wl.stream
	var reported int64
	progress := wl.progress
	for !stop.Load() {
		if progress != nil && n > 0 {
			progress(b - reported)
			reported = b
		}
		for k := 0; k < checkEvery; k++ {
			p := s.Record(i)
			i++
			if h != nil {
				t0 := nanotime()
				_, err = t.Write(p)
				recordLatency(h, nanotime()-t0)
			} else {
				_, err = t.Write(p)
			}
			if err != nil {
				return n, b, err
			}
			n++
			b += int64(len(p))
		}
	}
	return n, b, nil
}

func recordLatency(h *hdrhistogram.Histogram, d int64) {
	if d > histMax {
		d = histMax
	}
	h.RecordValue(d)
}

// countingWriter counts what zerolog hands to the target. Each encoding
// goroutine has its own, so counting costs no shared write.
type countingWriter struct {
	t     Target
	bytes int64
	err   error
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.bytes += int64(len(p))
	n, err := c.t.Write(p)
	if err != nil && c.err == nil {
		c.err = err
	}
	return n, err
}

// WriteLevel passes the level on to targets that take it (mmaplog).
func (c *countingWriter) WriteLevel(l zerolog.Level, p []byte) (int, error) {
	lw, ok := c.t.(zerolog.LevelWriter)
	if !ok {
		return c.Write(p)
	}
	c.bytes += int64(len(p))
	n, err := lw.WriteLevel(l, p)
	if err != nil && c.err == nil {
		c.err = err
	}
	return n, err
}

// encodeLoop logs zerolog events with the fields of the JSON stream's
// request events: the encoding, zerolog's timestamp and the write are all
// inside the timed loop.
func (wl *workload) encodeLoop(stop *atomic.Bool, i int, h *hdrhistogram.Histogram) (n, b int64, err error) {
	cw := &countingWriter{t: wl.t}
	log := zerolog.New(cw).With().Timestamp().Str("service", "checkout").Str("host", "web-7f9c4").Logger()
	f := &encodeFields
	for !stop.Load() {
		for k := 0; k < checkEvery; k++ {
			j := i & (len(f.reqID) - 1)
			i++
			var t0 int64
			if h != nil {
				t0 = nanotime()
			}
			log.Info().Str("req_id", f.reqID[j]).Str("method", f.method[j&3]).Str("path", f.path[j&7]).
				Int("status", f.status[j&7]).Int("bytes", j*7).Float64("ms", float64(j)/7).Msg("request")
			if h != nil {
				recordLatency(h, nanotime()-t0)
			}
			if cw.err != nil {
				return n, cw.bytes, cw.err
			}
			n++
		}
	}
	return n, cw.bytes, nil
}

// encodeFields are field values for encodeLoop, made before any pass.
var encodeFields = func() (f struct {
	reqID  []string
	method []string
	path   []string
	status []int
}) {
	for i := 0; i < 1024; i++ {
		f.reqID = append(f.reqID, fmt.Sprintf("%08x-%04x", uint32(i)*2654435761, i*40503&0xffff))
	}
	f.method = []string{"GET", "GET", "POST", "PUT"}
	f.path = []string{"/api/v1/orders", "/api/v1/cart/items", "/healthz", "/api/v1/users/profile",
		"/api/v1/payments/authorize", "/api/v1/orders", "/api/v1/search", "/api/v1/cart/items"}
	f.status = []int{200, 200, 200, 201, 204, 304, 404, 500}
	return f
}()

// cpuTime returns the user and system CPU time of the process so far.
func cpuTime() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

var (
	streamsMu sync.Mutex
	streams   = map[int]*Stream{}
)

// streamFor returns the stream of nominal size n, generating it once.
func streamFor(n int) (*Stream, error) {
	streamsMu.Lock()
	defer streamsMu.Unlock()
	if s, ok := streams[n]; ok {
		return s, nil
	}
	s, err := NewStream(n)
	if err != nil {
		return nil, err
	}
	streams[n] = s
	return s, nil
}
