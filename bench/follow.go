package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/mmaplog/mmaplog/mmaplog"
	"github.com/mmaplog/mmaplog/tail"
)

// Writer-to-reader latency across processes: a writer process appends the
// JSON stream into an mmaplog log at a fixed pace (or flat out) while this
// process follows the log with tail's follow reader (tail.Options.Follow,
// Wait when caught up), as `mmaptail ship` does. A record's latency is the
// reader's wall-clock time when Next returns it minus the record's own time
// stamp (tail.Record.Time), which the writer took just before copying the
// record in: both are CLOCK_REALTIME on the same machine.
//
// The writer process is this binary started again with followDirEnv set
// (main and TestMain hand over to followWriterMain), as tail's
// BenchmarkFollowLatency starts its test binary.

// Environment of the writer process.
const (
	followDirEnv      = "MMAPLOG_BENCH_FOLLOW_DIR" // the log directory; set: be the writer
	followGapEnv      = "MMAPLOG_BENCH_FOLLOW_GAP" // time between records; 0: flat out
	followWarmupEnv   = "MMAPLOG_BENCH_FOLLOW_WARMUP"
	followDurationEnv = "MMAPLOG_BENCH_FOLLOW_DURATION"
)

// Levels of the writer's records: the reader leaves the warm-up records
// out of the figures by their level byte (tail.Record.Type).
const (
	followWarmLevel     = zerolog.DebugLevel
	followMeasuredLevel = zerolog.InfoLevel
)

// The writer sleeps between records with nanosleep(2) on a thread of its
// own whose timer slack is 1 ns: the Go runtime's timers sleep at least a
// millisecond when nothing else runs, and the kernel's default slack adds
// 50 µs to every sleep. A sleep still takes tens of microseconds more than
// asked on some machines (VMs); the writer then catches up with the pace
// by writing the records that are due back to back, so the mean rate is
// the one asked for.

// followWriterMain is the writer process of a follow case, when this
// binary was started as one: ok is false otherwise. It appends the JSON
// stream through WriteLevel (as zerolog does) into the log in
// $MMAPLOG_BENCH_FOLLOW_DIR for the warm-up (debug level) and the
// measured time (info level), one record every gap (0: flat out), closes
// the log and prints "WARM MEASURED ROTATIONS CPU" on stdout: the records
// of each phase, the rotations, and its CPU time (nanoseconds, background
// goroutines included) while it wrote the measured records.
func followWriterMain() (code int, ok bool) {
	dir := os.Getenv(followDirEnv)
	if dir == "" {
		return 0, false
	}
	if err := followWriter(dir); err != nil {
		fmt.Fprintf(os.Stderr, "bench follow writer: %v\n", err)
		return 1, true
	}
	return 0, true
}

func followWriter(dir string) error {
	var durs [3]time.Duration
	for i, k := range []string{followGapEnv, followWarmupEnv, followDurationEnv} {
		d, err := time.ParseDuration(os.Getenv(k))
		if err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		durs[i] = d
	}
	gap, warmup, dur := durs[0], durs[1], durs[2]
	stream, err := streamFor(SizeJSON)
	if err != nil {
		return err
	}
	w, err := mmaplog.Open(dir, &mmaplog.Options{ExactClock: true}) // latency is measured from the record time
	if err != nil {
		return err
	}
	if gap > 0 {
		runtime.LockOSThread() // the timer slack is the thread's
		if err := unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("prctl(PR_SET_TIMERSLACK): %w", err)
		}
	}
	var counts [2]int64
	var cpu0 time.Duration // the process's CPU time when the measured records begin
	i := 0
	next := nanotime()
	start := next
	for phase, until := range []int64{start + warmup.Nanoseconds(), start + (warmup + dur).Nanoseconds()} {
		level := followWarmLevel
		if phase == 1 {
			level = followMeasuredLevel
			cpu0 = cpuTime()
		}
		for nanotime() < until {
			for k := 0; k < checkEvery; k++ {
				if gap > 0 {
					next += gap.Nanoseconds()
					pace(next)
				}
				if _, err := w.WriteLevel(level, stream.Record(i)); err != nil {
					w.Close()
					return err
				}
				i++
				counts[phase]++
			}
		}
	}
	cpu := cpuTime() - cpu0
	rotations := w.Stats().Rotations
	if err := w.Close(); err != nil {
		return err
	}
	_, err = fmt.Printf("%d %d %d %d\n", counts[0], counts[1], rotations, cpu.Nanoseconds())
	return err
}

// pace sleeps until the monotonic clock reads next (see above).
func pace(next int64) {
	if d := next - nanotime(); d > 0 {
		ts := unix.NsecToTimespec(d)
		unix.Nanosleep(&ts, nil) // woken early by a signal: the next record is early
	}
}

// A followSpec is one row of the follow group.
type followSpec struct {
	id, name string
	gap      time.Duration // 0: flat out
	spin     time.Duration // tail.Options.Spin of the reader
}

func followGroup(quick bool) *Group {
	g := &Group{
		Scenario: "follow", Size: SizeJSON, Goroutines: 1, Segment: SegmentDefault, Baseline: "follow/20us",
		Title: fmt.Sprintf("Writer to reader across processes: %s records, one writer process, %s segments", sizeName(SizeJSON), bytesName(SegmentDefault)),
		Note: "A writer process (this binary started again) appends the JSON stream through `WriteLevel` at the pace of the row, " +
			"while this process follows the log with `tail.Open(dir, &tail.Options{Follow: true})`, calling `Wait` when caught up. " +
			"Latency (p50 to max) is the reader's wall clock when `Next` returns a record minus the record's time stamp, " +
			"taken by the writer just before it copies the record in (both CLOCK_REALTIME on this machine; the reader reads it as a wall-clock base plus runtime.nanotime). " +
			"records/s is what the reader returned per second (for a paced writer, the pace: ns/op is the gap); CPU ns/op and allocs/op are this, the reader's, process per record; " +
			"the writer process's CPU per measured record (its preparer included) is in the notes. The paced writer sleeps with nanosleep (timer slack 1 ns) and writes the records that are due when it wakes, " +
			"so where sleeps overshoot (in VMs a 20 µs sleep can take twice that) the 20 µs row's records come in small bursts at the same mean rate. " +
			"The Spin row's reader keeps looking for the next record on the CPU for up to 200 µs before it sleeps (`tail.Options.Spin`): no futex wake-up between records, at the price of a core. " +
			"Flat out, latency is how far the reader is behind the writer. Warm-up records are written first and left out by their level.",
	}
	specs := []followSpec{
		{"follow/1ms", "one every 1 ms", time.Millisecond, 0},
		{"follow/20us", "one every 20 µs", 20 * time.Microsecond, 0},
		{"follow/20us-spin", "one every 20 µs, reader with Spin: 200 µs", 20 * time.Microsecond, 200 * time.Microsecond},
		{"follow/flat", "flat out", 0, 0},
	}
	if quick {
		specs = specs[1:]
	}
	for _, s := range specs {
		g.Cases = append(g.Cases, &Case{ID: s.id, Name: s.name, Run: followCase(s.gap, s.spin)})
	}
	return g
}

// followCase returns the Run of a follow row: the log is made, the reader
// opened on it, then the writer process started; the reader reads until
// the writer has exited and everything it wrote was read.
func followCase(gap, spin time.Duration) func(env *Env) (*Sample, error) {
	return func(env *Env) (*Sample, error) {
		dir := filepath.Join(env.Dir, "log")
		// The log exists before the reader opens it.
		w, err := mmaplog.Open(dir, &mmaplog.Options{ExactClock: true}) // latency is measured from the record time
		if err != nil {
			return nil, err
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("follow: the writer process is this binary: %w", err)
		}
		runtime.GC()
		var smp Sample
		smp.RSSOpen = residentBytes()
		r, err := tail.Open(dir, &tail.Options{Follow: true, Spin: spin})
		if err != nil {
			return nil, err
		}
		defer r.Close()

		cmd := exec.Command(exe)
		cmd.Env = append(os.Environ(), followDirEnv+"="+dir, followGapEnv+"="+gap.String(),
			followWarmupEnv+"="+env.Warmup.String(), followDurationEnv+"="+env.Duration.String())
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		var ms0, ms1 runtime.MemStats
		runtime.ReadMemStats(&ms0)
		cpu0 := cpuTime()
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("follow: starting the writer process %s: %w", exe, err)
		}
		exited := make(chan error, 1)
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			exited <- cmd.Wait()
			cancel()
		}()
		stopWriter := func() {
			cmd.Process.Kill()
			<-exited
		}

		// Wall clock of this process, as a base plus the monotonic time
		// since: one vDSO clock read per record instead of time.Now's two.
		t := time.Now()
		wall0, mono0 := t.UnixNano(), nanotime()
		hist := newHist()
		measured := uint8(mmaplog.LevelFromZerolog(followMeasuredLevel))
		var warm, first, last int64
		final := false
		for {
			if r.Next() {
				rec := r.Record()
				now := wall0 + nanotime() - mono0
				if rec.Type != measured {
					warm++
					continue
				}
				if smp.Records == 0 {
					first = now
				}
				last = now
				smp.Records++
				smp.Bytes += int64(len(rec.Payload)) + 1 // the newline given to Write, which mmaplog does not store
				recordLatency(hist, max(now-rec.Time, 1))
				continue
			}
			if err := r.Err(); err != nil {
				stopWriter()
				return nil, fmt.Errorf("follow: reading %s: %w", dir, err)
			}
			if ctx.Err() != nil {
				// The writer has exited: one more look reads what it
				// published before, then the log is read to its end.
				if final {
					break
				}
				final = true
				continue
			}
			r.Wait(ctx)
		}
		cpu1 := cpuTime()
		runtime.ReadMemStats(&ms1)
		smp.RSS = residentBytes()
		smp.DirtyBytes = dirtyBytes()
		if err := <-exited; err != nil {
			return nil, fmt.Errorf("follow: writer process: %v: %s", err, strings.TrimSpace(stderr.String()))
		}
		var wWarm, wMeasured, rotations, wCPU int64
		if _, err := fmt.Sscan(stdout.String(), &wWarm, &wMeasured, &rotations, &wCPU); err != nil {
			return nil, fmt.Errorf("follow: the writer process printed %q: %w", stdout.String(), err)
		}
		if smp.Records == 0 {
			return nil, errors.New("follow: the reader saw no measured record")
		}
		smp.Elapsed = time.Duration(max(last-first, 1))
		smp.Hist = hist
		smp.Written = wWarm + wMeasured
		smp.Rotations = uint64(rotations)
		if read := warm + smp.Records; read < smp.Written {
			smp.Dropped = uint64(smp.Written - read)
		} else if read > smp.Written {
			return nil, fmt.Errorf("follow: read %d records, the writer wrote %d", read, smp.Written)
		}
		// Per record read: the reader's CPU and allocations over the whole
		// case, warm-up included, scaled to the measured records.
		all := float64(warm+smp.Records) / float64(smp.Records)
		smp.CPU = time.Duration(float64(cpu1-cpu0) / all)
		smp.Mallocs = uint64(float64(ms1.Mallocs-ms0.Mallocs) / all)
		smp.PeerCPU = time.Duration(wCPU) // over the measured records, which were all read
		return &smp, nil
	}
}
