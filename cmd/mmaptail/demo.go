package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	lumberlog "github.com/elastic/go-lumber/log"
	lumber "github.com/elastic/go-lumber/server/v2"
	"github.com/rs/zerolog"

	"github.com/mmaplog/mmaplog/mmaplog"
	"github.com/mmaplog/mmaplog/output"
	"github.com/mmaplog/mmaplog/ship"
	"github.com/mmaplog/mmaplog/tail"
)

func init() {
	register(&command{
		name:    "demo",
		args:    "[--events N] [--rate N] [--dir DIR]",
		summary: "run the whole pipeline: zerolog app -> mmap log -> shipper -> Beats receiver, with a summary",
		run:     runDemo,
	})
}

const demoHelp = `
Runs the whole pipeline on this machine, with nothing to install: an
application logs N events through zerolog into an mmap log in a temporary
directory (or DIR), the shipper follows the log and ships the events over
the Beats protocol (lumberjack v2, what Logstash's beats input speaks) to a
receiver on a loopback port built on Elastic's go-lumber server, which
acknowledges them. It shows a live progress line, then a summary: events,
events per second, the cost of a log call, the end-to-end latency from the
log call to the receiver, and whether every event arrived. The exit status
is 1 if any event was lost.

--rate paces the application (events per second; 0: as fast as it can,
which measures throughput, the latency then being mostly queueing).`

// demoStall is how long the demo waits for the shipper when it stops
// making progress before it reports what did not arrive.
const demoStall = time.Minute

// demoEvent is what the demo receiver keeps of each event.
type demoEvent struct {
	seq uint64
	ts  int64 // @timestamp, Unix µs
}

func runDemo(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags(commands["demo"], stderr, demoHelp)
	events := fs.Int("events", 300000, "number of events the application logs")
	rate := fs.Int("rate", 100000, "events per second the application logs (0: as fast as it can)")
	dirFlag := fs.String("dir", "", "log directory (default: a new temporary directory, removed afterwards)")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 || *events <= 0 || *rate < 0 {
		return usagef("takes no arguments; --events must be positive and --rate not negative")
	}
	n := *events
	dir := *dirFlag
	if dir == "" {
		if dir, err = os.MkdirTemp("", "mmaplog-demo-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	}

	// The receiver: go-lumber's server on a loopback port. Its decoder
	// keeps only log.offset and @timestamp of each event.
	lumberlog.Logger = discardLogger{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv, err := lumber.NewWithListener(l, lumber.JSONDecoder(decodeDemoEvent))
	if err != nil {
		return err
	}

	// The application: zerolog into the mmap log. In a --dir used before,
	// the log goes on after the earlier runs' records: this run's events
	// are those from the sequence number the writer hands out next.
	w, err := mmaplog.Open(dir, &mmaplog.Options{SegmentSize: 16 << 20})
	if err != nil {
		srv.Close()
		return err
	}
	base := w.Stats().NextSeq
	log := zerolog.New(w).With().Timestamp().Str("service", "checkout").Logger()

	seen := make([]uint8, n)
	lat := make([]int64, 0, n)
	var received, dups, foreign atomic.Int64
	recvDone := make(chan struct{})
	go func() {
		defer close(recvDone)
		for b := range srv.ReceiveChan() {
			now := time.Now().UnixMicro()
			for _, ev := range b.Events {
				e, ok := ev.(demoEvent)
				if !ok || e.seq < base || e.seq >= base+uint64(n) {
					foreign.Add(1)
					continue
				}
				i := e.seq - base
				if seen[i] > 0 {
					dups.Add(1)
				} else {
					lat = append(lat, now-e.ts)
				}
				seen[i]++
			}
			received.Add(int64(len(b.Events)))
			b.ACK()
		}
	}()

	// The shipper: follows the log, ships to the receiver.
	out, err := output.Open("beats://"+l.Addr().String(), &output.Options{Window: ship.OutputWindow})
	if err != nil {
		w.Close()
		srv.Close()
		return err
	}
	// The demo's own cursor starts at this run's first event: an earlier
	// run's cursor (perhaps interrupted) is replaced.
	cursor := tail.CursorPath(dir, "demo")
	if err := os.Remove(cursor); err != nil && !errors.Is(err, os.ErrNotExist) {
		w.Close()
		srv.Close()
		return err
	}
	sh, err := ship.New(ship.Config{Dir: dir, Output: out, CursorPath: cursor, From: tail.StartAt(base), Host: "demo"})
	if err != nil {
		w.Close()
		srv.Close()
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	shipErr := make(chan error, 1)
	go func() { shipErr <- sh.Run(ctx) }()

	fmt.Fprintf(stdout, "demo: zerolog app -> mmap log in %s -> mmaptail ship -> Beats receiver on %s\n", dir, l.Addr())
	if *rate > 0 {
		fmt.Fprintf(stdout, "      %d events at %d events/s\n", n, *rate)
	} else {
		fmt.Fprintf(stdout, "      %d events, as fast as the application can log them\n", n)
	}
	// On a terminal the progress line is redrawn in place every 200 ms;
	// into a pipe or a file a plain line is printed every few seconds.
	tty := isTerminal(stdout)
	every := 3 * time.Second
	if tty {
		every = 200 * time.Millisecond
	}
	var progressMu sync.Mutex
	progress := func(logged int) {
		progressMu.Lock()
		defer progressMu.Unlock()
		st := sh.Stats()
		if tty {
			fmt.Fprintf(stdout, "\r  logged %7d / %d   shipped and acknowledged %7d   lost %d ", logged, n, st.Acked, st.Lost)
		} else {
			fmt.Fprintf(stdout, "  logged %d / %d, shipped and acknowledged %d, lost %d\n", logged, n, st.Acked, st.Lost)
		}
	}
	start := time.Now()
	callLat := make([]time.Duration, 0, n/64+1)
	lastProgress := start
	for i := 0; i < n; i++ {
		if *rate > 0 {
			// Log what is due, then sleep until more is: bursts every
			// millisecond or so, as a busy service would log.
			if due := start.Add(time.Duration(i) * time.Second / time.Duration(*rate)); time.Until(due) > 0 {
				time.Sleep(time.Until(due))
			}
		}
		t0 := time.Now()
		log.Info().Int("order", i).Str("user", "u-1042").Float64("amount", 42.5).Msg("order placed")
		if i%64 == 0 {
			t1 := time.Now()
			callLat = append(callLat, t1.Sub(t0))
			if t1.Sub(lastProgress) > every {
				lastProgress = t1
				progress(i + 1)
			}
		}
	}
	logged := time.Since(start)
	// Wait until the shipper has everything acknowledged, for as long as
	// it makes progress (a busy machine is slow, not stuck).
	last := base + uint64(n) - 1
	acked, movedAt := sh.Stats().AckedSeq, time.Now()
	for acked < last && time.Since(movedAt) < demoStall {
		time.Sleep(10 * time.Millisecond)
		if a := sh.Stats().AckedSeq; a != acked {
			acked, movedAt = a, time.Now()
		}
		if time.Since(lastProgress) > every {
			lastProgress = time.Now()
			progress(n)
		}
	}
	total := time.Since(start)
	progress(n)
	if tty {
		fmt.Fprintln(stdout)
	}
	cancel()
	err = <-shipErr
	werr := w.Close()
	srv.Close()
	<-recvDone
	if err != nil {
		return err
	}
	if werr != nil {
		return werr
	}
	missing := 0
	for i := range seen {
		if seen[i] == 0 {
			missing++
		}
	}
	st := sh.Stats()
	fmt.Fprintf(stdout, "events:        %d logged in %v (%.0f events/s), all acknowledged after %v (%.0f events/s end to end)\n",
		n, logged.Round(time.Millisecond), float64(n)/logged.Seconds(), total.Round(time.Millisecond), float64(n)/total.Seconds())
	fmt.Fprintf(stdout, "log call:      p50 %v  p99 %v  max %v (zerolog into the mmap log)\n", pct(callLat, 50), pct(callLat, 99), pct(callLat, 100))
	us := make([]time.Duration, len(lat))
	for i, v := range lat {
		us[i] = time.Duration(v) * time.Microsecond
	}
	fmt.Fprintf(stdout, "end to end:    p50 %v  p90 %v  p99 %v  max %v (log call -> Beats receiver, over loopback TCP)\n",
		pct(us, 50), pct(us, 90), pct(us, 99), pct(us, 100))
	fmt.Fprintf(stdout, "delivery:      %d events received, %d duplicate(s), %d batch(es), cursor at %d\n", received.Load(), dups.Load(), st.Batches, st.AckedSeq+1)
	if missing > 0 || st.Lost > 0 || foreign.Load() > 0 {
		return fmt.Errorf("lost events: %d of %d never arrived (sequence numbers %d to %d), %d reported lost, %d unrecognised", missing, n, base, last, st.Lost, foreign.Load())
	}
	fmt.Fprintln(stdout, "nothing lost:  every event arrived, acknowledged, checksums verified on the way")
	return nil
}

// decodeDemoEvent is the receiver's JSON decoder: it finds log.offset and
// @timestamp as the shipper writes them, and falls back to encoding/json.
func decodeDemoEvent(b []byte, v interface{}) error {
	p := v.(*interface{})
	var e demoEvent
	if i := bytes.Index(b, []byte(`"log":{"offset":`)); i >= 0 {
		rest := b[i+len(`"log":{"offset":`):]
		j := bytes.IndexByte(rest, ',')
		if j > 0 {
			e.seq, _ = strconv.ParseUint(string(rest[:j]), 10, 64)
		}
	}
	if i := bytes.Index(b, []byte(`"@timestamp":"`)); i >= 0 {
		rest := b[i+len(`"@timestamp":"`):]
		if j := bytes.IndexByte(rest, '"'); j > 0 {
			if t, err := time.Parse(time.RFC3339Nano, string(rest[:j])); err == nil {
				e.ts = t.UnixMicro()
			}
		}
	}
	if e.seq == 0 || e.ts == 0 {
		var m map[string]interface{}
		if err := json.Unmarshal(b, &m); err != nil {
			return err
		}
		if lg, ok := m["log"].(map[string]interface{}); ok {
			if f, ok := lg["offset"].(float64); ok {
				e.seq = uint64(f)
			}
		}
		if s, ok := m["@timestamp"].(string); ok {
			if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
				e.ts = t.UnixMicro()
			}
		}
	}
	*p = e
	return nil
}

type discardLogger struct{}

func (discardLogger) Printf(string, ...interface{}) {}
func (discardLogger) Println(...interface{})        {}
func (discardLogger) Print(...interface{})          {}

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
