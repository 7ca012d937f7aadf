package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sys/unix"

	"github.com/mmaplog/mmaplog/ship"
	"github.com/mmaplog/mmaplog/tail"
)

func init() {
	register(&command{
		name:    "ship",
		args:    "--log DIR --to URL [--cursor FILE] [--from begin|end|SEQ] [--metrics ADDR] [flags]",
		summary: "follow the log in DIR and ship its records to Logstash (beats, tcp, redis), stdout or a file",
		run:     runShip,
	})
}

const shipHelp = `
Follows the log in DIR, turns every record into an event (a JSON record as
itself, any other as {"message": ...}, with @timestamp, log.file.path,
log.offset, host.name and agent.type added) and ships the events to URL:

  beats://HOST:PORT      Logstash's beats input; acknowledged (at least once)
  tcp://HOST:PORT        newline-delimited JSON for Logstash's tcp input with
                         the json_lines codec; NO acknowledgements: events in
                         flight when the receiver dies are lost
  redis://[:PASS@]HOST:PORT/KEY[?db=N]
                         RPUSH onto a list for Logstash's redis input;
                         acknowledged by Redis's replies
  stdout, file://PATH    newline-delimited JSON

It runs until SIGINT or SIGTERM, then waits for the events in flight to be
acknowledged, saves the cursor and exits 0.

The cursor (default DIR/cursors/ plus a name made from URL) holds the log's
identity and the first record not yet acknowledged; it is saved atomically
after every acknowledged batch, so after a crash shipping resumes there,
sending at most --window events again. A cursor of another log is refused.
Without a cursor, --from says where to start: begin (the oldest record),
end (records written from now on) or a sequence number.

Receiver down, refusing or gone: the shipper reconnects with exponential
backoff and jitter and sends every unacknowledged batch again. Damaged or
removed records are reported on standard error with the number lost.`

// multiFlag collects repeated --field key=value flags.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

func runShip(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags(commands["ship"], stderr, shipHelp)
	dir := fs.String("log", "", "log directory (required)")
	to := fs.String("to", "", "where to ship: beats://HOST:PORT, tcp://HOST:PORT, redis://HOST:PORT/KEY, stdout or file://PATH (required)")
	cursor := fs.String("cursor", "", "cursor file (default DIR/cursors/NAME, NAME made from --to)")
	from := fs.String("from", "begin", "where to start without a cursor: begin, end or a sequence number")
	metrics := fs.String("metrics", "", "serve Prometheus metrics on this address (such as 127.0.0.1:9464), at /metrics")
	of := addOutputFlags(fs)
	batch := fs.Int("batch", ship.DefaultBatchSize, "events per batch at most")
	window := fs.Int("window", ship.DefaultWindow, "events in flight (sent, not yet acknowledged and saved in the cursor): at most this many are sent again after a crash")
	host := fs.String("host", "", "host.name of the events (default: this host's name)")
	var fields multiFlag
	fs.Var(&fields, "field", "extra event field KEY=VALUE (dotted keys nest: service.name=checkout); repeatable")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("unexpected arguments %q: the log is given with --log", pos)
	}
	if *dir == "" || *to == "" {
		return usagef("--log and --to are required")
	}
	if err := of.validate(); err != nil {
		return err
	}
	if *batch <= 0 || *window <= 0 {
		return usagef("--batch and --window must be positive")
	}
	fm := map[string]string{}
	for _, f := range fields {
		k, v, ok := strings.Cut(f, "=")
		if !ok || k == "" {
			return usagef("--field %q: want KEY=VALUE", f)
		}
		fm[k] = v
	}
	out, err := of.open(*to, "ship", ship.OutputWindow, stderr)
	if err != nil {
		return err
	}
	cpath := *cursor
	if cpath == "" {
		cpath = tail.CursorPath(*dir, cursorName(*to))
	}
	cfg := ship.Config{Dir: *dir, Output: out, CursorPath: cpath, From: *from, Host: *host, Fields: fm, BatchSize: *batch, Window: *window,
		OnDamage: func(d tail.Damage) { fmt.Fprintf(stderr, "mmaptail ship: damage: %s\n", oneLine(d.String())) }}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, unix.SIGTERM)
	defer stop()
	var srv *http.Server
	if *metrics != "" {
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		cfg.Metrics = ship.NewMetrics(reg)
		l, err := net.Listen("tcp", *metrics)
		if err != nil {
			out.Close(context.Background())
			return fmt.Errorf("--metrics: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(l)
		defer srv.Close()
	}
	s, err := ship.New(cfg)
	if err != nil {
		out.Close(context.Background())
		return err
	}
	fmt.Fprintf(stderr, "mmaptail ship: %s -> %s (cursor %s)\n", *dir, out, cpath)
	err = s.Run(ctx)
	st := s.Stats()
	fmt.Fprintf(stderr, "mmaptail ship: stopped: %d event(s) acknowledged, up to sequence %d; %d record(s) lost\n", st.Acked, st.AckedSeq, st.Lost)
	if errors.Is(err, tail.ErrOtherLog) {
		return fmt.Errorf("%w (cursor %s)", err, cpath)
	}
	return err
}

// cursorName makes a file name from an output URL (without its password),
// so that shippers to different places keep different cursors by default.
func cursorName(to string) string {
	if u, err := url.Parse(to); err == nil && u.User != nil {
		u.User = nil
		to = u.String()
	}
	to = strings.TrimPrefix(strings.TrimPrefix(to, "file://"), "/")
	var b strings.Builder
	for _, r := range to {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	s := strings.Trim(b.String(), "_")
	for strings.Contains(s, "__") {
		s = strings.ReplaceAll(s, "__", "_")
	}
	if s == "" {
		s = "ship"
	}
	return s
}
