package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/mmaplog/mmaplog/counter"
	"github.com/mmaplog/mmaplog/counter/prom"
	"github.com/mmaplog/mmaplog/counter/vcs"
	"github.com/mmaplog/mmaplog/output"
	"github.com/mmaplog/mmaplog/region"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sys/unix"
)

func init() {
	register(&command{
		name:    "counters",
		args:    "--region URL (--once | --to URL | --metrics ADDR) [flags]",
		summary: "collect a shared-memory counter map (or a VCS segment) and ship (Logstash, Kafka, files), print or serve it",
		run:     runCounters,
	})
}

var countersHelp = `
Collects the counters of a counter map made by mmaplog producers
(counter.Open / mmaplog.OpenCounters) or of a VCS segment, every interval,
and ships one JSON event per counter that changed. Nothing is lost: a
counter map's counters only grow and the map remembers what was shipped; a
VCS segment's maps are switched, and emptied with atomic swaps after a
grace period. What could not be shipped is kept for the next interval.
SIGINT or SIGTERM makes a last collection, then exits.

--region is one of:
  shm:NAME      counter map in POSIX shared memory (/dev/shm/NAME)
  file:PATH     counter map in a file
  sysv:KEY      counter map in a SysV segment (KEY decimal or 0x hex)
  vcs:KEY       a VCS segment (vcs: alone means key 0x3eeff00)

--to is where events go, through the same outputs as mmaptail ship (with
its TLS, --compression, --loadbalance and --kafka-* flags); a collection's
counts are committed only once the receiver acknowledged them:

` + output.URLForms + `

--once prints a table of the counters' current state and exits: it ships
and changes nothing. --metrics serves the counters to Prometheus at
http://ADDR/metrics (a counter map's totals; for a VCS segment, what this
process collected since it started).`

func runCounters(args []string, stdin io.Reader, stdout, stderr io.Writer) (err error) {
	fs := newFlags(commands["counters"], stderr, countersHelp)
	regionURL := fs.String("region", "", "the counters' address (see above); required")
	to := fs.String("to", "", "where to ship events: see above")
	once := fs.Bool("once", false, "print a table of the current counters and exit")
	metrics := fs.String("metrics", "", "serve Prometheus metrics on ADDR (host:port)")
	interval := fs.Duration("interval", 10*time.Second, "time between collections")
	grace := fs.Duration("grace", vcs.DefaultGrace, "VCS: wait after switching maps before emptying the old one")
	host := fs.String("host", "", "host name put into events (default: this machine's)")
	count := fs.Int("count", 0, "stop after this many collections (0: run until SIGINT/SIGTERM)")
	of := addOutputFlags(fs)
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if err := of.validate(); err != nil {
		return err
	}
	switch {
	case len(pos) != 0:
		return usagef("unexpected argument %q", pos[0])
	case *regionURL == "":
		return usagef("--region is required")
	case !*once && *to == "" && *metrics == "":
		return usagef("say what to do: --once, --to URL or --metrics ADDR")
	case *once && (*to != "" || *metrics != ""):
		return usagef("--once prints a table and exits; it cannot be combined with --to or --metrics")
	case *interval <= 0:
		return usagef("--interval must be positive")
	case *count < 0:
		return usagef("--count must not be negative")
	}

	src, closeSrc, err := openCounterSource(*regionURL, *grace, *once)
	if err != nil {
		return err
	}
	defer func() {
		// Releasing a counter map's lease writes into it: on a region
		// truncated by another process that is an error too.
		if cerr := closeSrc(); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}()
	if *once {
		return printCounterTable(stdout, src)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, unix.SIGTERM)
	defer stop()

	var emit counter.Emitter
	if *to != "" {
		e, closeEmit, err := counterEmitter(ctx, *to, of, stdout, stderr)
		if err != nil {
			return err
		}
		defer closeEmit()
		emit = e
	}
	coll := counter.NewCollector(src, emit, &counter.CollectorOptions{Host: *host})

	if *metrics != "" {
		read, useTotal := func() ([]counter.Delta, error) { return coll.Totals(), nil }, false
		if ms, ok := src.(*counter.MapSource); ok {
			read, useTotal = ms.Map().Peek, true
		}
		reg := prometheus.NewRegistry()
		reg.MustRegister(prom.New(src.String(), read, useTotal))
		shutdown, err := serveMetrics(*metrics, reg, stderr)
		if err != nil {
			return err
		}
		defer shutdown()
	}

	// A counter map served to Prometheus alone needs no collection: its
	// totals are in the map. Everything else is collected.
	if _, isMap := src.(*counter.MapSource); isMap && emit == nil {
		<-ctx.Done()
		return nil
	}
	report := func(st counter.Stats, err error) {
		if err != nil {
			fmt.Fprintf(stderr, "mmaptail counters: %s\n", oneLine(err.Error()))
			return
		}
		if st.Final || st.Counters > 0 {
			fmt.Fprintf(stderr, "mmaptail counters: %s: %d counter(s) changed, %d scanned in %v (grace %v, emit %v)\n",
				src, st.Counters, st.Cells, st.Scan.Round(time.Microsecond), st.Grace.Round(time.Millisecond), st.Emit.Round(time.Microsecond))
		}
	}
	if *count > 0 {
		// The count-th collection is the final one that Run makes once
		// the context is done.
		runCtx, cancel := context.WithCancel(ctx)
		defer cancel()
		if *count == 1 {
			cancel()
		}
		n, inner := 0, report
		report = func(st counter.Stats, err error) {
			inner(st, err)
			if n++; n == *count-1 {
				cancel()
			}
		}
		ctx = runCtx
	}
	return coll.Run(ctx, *interval, report)
}

// openCounterSource opens what --region names. readOnly (for --once) attaches
// a counter map read-only and takes no lease. The function it returns
// releases the source and detaches the region.
func openCounterSource(url string, grace time.Duration, readOnly bool) (counter.Source, func() error, error) {
	if strings.HasPrefix(url, "vcs:") {
		key, err := vcs.ParseURL(url)
		if err != nil {
			return nil, nil, err
		}
		seg, err := vcs.Attach(key, &region.Options{ReadOnly: readOnly})
		if err != nil {
			return nil, nil, err
		}
		return vcs.NewSource(seg, grace), seg.Detach, nil
	}
	m, err := counter.Attach(url, &region.Options{ReadOnly: readOnly})
	if err != nil {
		return nil, nil, err
	}
	if readOnly {
		return peekSource{m}, m.Close, nil
	}
	src, err := counter.NewMapSource(m)
	if err != nil {
		m.Close()
		return nil, nil, err
	}
	return src, func() error { return errors.Join(src.Close(), m.Close()) }, nil
}

// peekSource is a read-only counter map, for --once: it can only Peek.
type peekSource struct{ m *counter.Map }

func (p peekSource) Collect(bool) (counter.Batch, error) {
	return counter.Batch{}, errors.New("read-only")
}
func (p peekSource) Commit() error                  { return errors.New("read-only") }
func (p peekSource) Peek() ([]counter.Delta, error) { return p.m.Peek() }
func (p peekSource) String() string                 { return p.m.Region().String() }
func (p peekSource) Close() error                   { return nil }

func printCounterTable(w io.Writer, src counter.Source) error {
	ds, err := src.Peek()
	if err != nil {
		return err
	}
	_, isVCS := src.(*vcs.Source)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if isVCS {
		fmt.Fprintln(tw, "RULE\tMETRIC\tPENDING\t")
	} else {
		fmt.Fprintln(tw, "RULE\tMETRIC\tTOTAL\tUNSHIPPED\tNAME\t")
	}
	var sum uint64
	for _, d := range ds {
		sum += d.Value
		if isVCS {
			fmt.Fprintf(tw, "%d\t%d\t%d\t\n", d.Rule, d.Metric, d.Value)
			continue
		}
		if d.Overflow {
			fmt.Fprintf(tw, "-\t-\t%d\t%d\t(adds outside the shape)\t\n", d.Total, d.Value)
			continue
		}
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%s\t\n", d.Rule, d.Metric, d.Total, d.Value, displayName(d))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s: %d non-zero counter(s), %d not yet shipped in all\n", src, len(ds), sum)
	return err
}

func displayName(d counter.Delta) string {
	var b strings.Builder
	b.WriteString(d.RuleName)
	if len(d.Labels) > 0 {
		b.WriteByte('{')
		for i, l := range d.Labels {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "%s=%q", l.Name, l.Value)
		}
		b.WriteByte('}')
	}
	if d.MetricName != "" {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(d.MetricName)
	}
	return b.String()
}

// counterEmitter returns the Emitter for --to: standard output directly, or
// one of the shipping outputs (package output), whose Emit returns once the
// receiver acknowledged the batch.
func counterEmitter(ctx context.Context, to string, of *outputFlags, stdout, stderr io.Writer) (counter.Emitter, func(), error) {
	switch to {
	case "stdout", "stdout:", "-":
		return &lineEmitter{w: bufio.NewWriterSize(stdout, 64<<10)}, func() {}, nil
	}
	out, err := of.open(to, "counters", 1, 0, stderr)
	if err != nil {
		return nil, nil, err
	}
	closeOut := func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := out.Close(cctx); err != nil {
			fmt.Fprintf(stderr, "mmaptail counters: closing %s: %s\n", out, oneLine(err.Error()))
		}
	}
	return &outputEmitter{ctx: ctx, out: out}, closeOut, nil
}

// lineEmitter writes each event and a newline, flushing after each batch.
type lineEmitter struct {
	mu sync.Mutex
	w  *bufio.Writer
}

func (e *lineEmitter) Emit(batch [][]byte) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ev := range batch {
		e.w.Write(ev)
		e.w.WriteByte('\n')
	}
	return e.w.Flush()
}

// serveMetrics serves reg at http://addr/metrics until shutdown is called.
func serveMetrics(addr string, reg *prometheus.Registry, stderr io.Writer) (shutdown func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	fmt.Fprintf(stderr, "mmaptail counters: serving Prometheus metrics on http://%s/metrics\n", ln.Addr())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-done
	}, nil
}
