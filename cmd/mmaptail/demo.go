package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/mmaplog/mmaplog/mmaplog"
	"github.com/mmaplog/mmaplog/tail"
)

func init() {
	register(&command{
		name:    "demo",
		args:    "[--events N] [--dir DIR]",
		summary: "run the demo pipeline: a zerolog app logging into an mmap log, read back live",
		run:     runDemo,
	})
}

const demoHelp = `
Runs the demo pipeline on an embedded default: an in-process application
logs N events through zerolog into an mmap log in a temporary directory
(or DIR), while a reader follows the log as a tailer process would and
checks every record. It prints a progress line and a summary: events,
events per second, write latency and writer-to-reader latency percentiles,
and whether anything was lost.`

func runDemo(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags(commands["demo"], stderr, demoHelp)
	events := fs.Int("events", 500000, "number of events the demo app logs")
	dirFlag := fs.String("dir", "", "log directory (default: a new temporary directory, removed afterwards)")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 || *events <= 0 {
		return usagef("takes no arguments, and --events must be positive")
	}
	dir := *dirFlag
	if dir == "" {
		if dir, err = os.MkdirTemp("", "mmaplog-demo-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	}
	w, err := mmaplog.Open(dir, &mmaplog.Options{SegmentSize: 16 << 20})
	if err != nil {
		return err
	}
	log := zerolog.New(w).With().Timestamp().Str("service", "checkout").Logger()
	fmt.Fprintf(stdout, "demo: app -> zerolog -> mmap log in %s -> reader\n", dir)

	// The reader: follows the log until it has seen every event.
	type result struct {
		n       int
		lat     []time.Duration
		damaged int
		err     error
	}
	done := make(chan result, 1)
	var readCount sync.Map
	go func() {
		var res result
		r, err := tail.Open(dir, nil)
		if err != nil {
			res.err = err
			done <- res
			return
		}
		defer r.Close()
		for res.n < *events {
			if !r.Next() {
				if err := r.Err(); err != nil {
					res.err = err
					break
				}
				// Caught up: reopen to see new segments, from where we are.
				r.Close()
				time.Sleep(200 * time.Microsecond)
				if r, err = tail.Open(dir, &tail.Options{FromSeq: uint64(res.n) + 1}); err != nil {
					res.err = err
					break
				}
				continue
			}
			rec := r.Record()
			if res.n%64 == 0 {
				res.lat = append(res.lat, time.Since(time.Unix(0, rec.Time)))
			}
			res.n++
			readCount.Store(0, res.n)
		}
		res.damaged = len(r.Damage())
		done <- res
	}()

	start := time.Now()
	writeLat := make([]time.Duration, 0, *events/64+1)
	lastProgress := start
	for i := 0; i < *events; i++ {
		t0 := time.Now()
		log.Info().Int("order", i).Str("user", "u-1042").Float64("amount", 42.5).Msg("order placed")
		if i%64 == 0 {
			writeLat = append(writeLat, time.Since(t0))
		}
		if now := time.Now(); now.Sub(lastProgress) > 200*time.Millisecond {
			lastProgress = now
			rn, _ := readCount.Load(0)
			fmt.Fprintf(stdout, "\r  written %d / %d, read %v", i+1, *events, rn)
		}
	}
	wrote := time.Since(start)
	res := <-done
	total := time.Since(start)
	if err := w.Close(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\r  written %d / %d, read %d\n", *events, *events, res.n)
	if res.err != nil {
		return res.err
	}
	fmt.Fprintf(stdout, "events:        %d in %v (%.0f events/s logged, %.0f events/s end to end)\n",
		*events, wrote.Round(time.Millisecond), float64(*events)/wrote.Seconds(), float64(res.n)/total.Seconds())
	fmt.Fprintf(stdout, "log call:      p50 %v  p99 %v  max %v\n", pct(writeLat, 50), pct(writeLat, 99), pct(writeLat, 100))
	fmt.Fprintf(stdout, "write->read:   p50 %v  p99 %v\n", pct(res.lat, 50), pct(res.lat, 99))
	if res.n != *events || res.damaged != 0 {
		return fmt.Errorf("lost events: wrote %d, read %d, %d damaged range(s)", *events, res.n, res.damaged)
	}
	fmt.Fprintln(stdout, "nothing lost:  every event read back, in order, checksums verified")
	return nil
}

// pct returns the p-th percentile of ds (sorting ds).
func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	i := len(ds) * p / 100
	if i >= len(ds) {
		i = len(ds) - 1
	}
	return ds[i]
}
