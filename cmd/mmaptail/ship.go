package main

import (
	"context"
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

	"github.com/mmaplog/mmaplog/output"
	"github.com/mmaplog/mmaplog/ship"
	"github.com/mmaplog/mmaplog/tail"
)

func init() {
	register(&command{
		name:    "ship",
		args:    "--log DIR|PATTERN [--log ...] --to URL [flags]",
		summary: "follow logs and ship their records to Logstash (beats, tcp, redis), Kafka, stdout or a file",
		run:     runShip,
	})
}

var shipHelp = `
Follows the logs in the --log directories, turns every record into an
event (a JSON record as itself, any other as {"message": ...}, with
@timestamp, log.file.path, log.offset, log.level, host.name, agent.* and
ecs.version added) and ships the events to URL, at least once.

--log is repeatable and takes shell patterns of directories
(--log '/var/log/apps/*'): a directory that matches later, or a path that
does not exist yet, is picked up within a second of holding a log. The
logs share the output in turn, so that a quiet log is not held up by a
busy one.

--to is one of:

` + output.URLForms + `

With several hosts the shipper fails over (a host picked at random, the
next one when it fails), or with --loadbalance spreads its batches over all
of them, --workers connections each. A batch a host did not acknowledge
(dead, or stalled past --timeout) is sent again, to another host if there
is one.

It runs until SIGINT or SIGTERM, then waits for the events in flight to be
acknowledged, saves the cursors and exits 0.

Each log has its own cursor (default DIR/cursors/NAME, NAME made from the
URL or given with --cursor-name; with --cursor-dir D, D/NAME/<the log's
path>), holding the log's identity and the first record not yet
acknowledged. It is saved atomically as batches are acknowledged (at most
once a second, unless half the log's window waits for it), so after a
crash shipping resumes there, sending at most --window events per log
again. A cursor of another log is refused, and a cursor in use by
another shipper too. Without a cursor, --from says where to start: begin
(the oldest record), end (records written from now on) or a sequence
number. A cursor or --from past the newest record of its log is reported,
and shipping goes on from there once the log has grown past it.

Receiver down, refusing or gone: the shipper reconnects with exponential
backoff (--backoff-init to --backoff-max, with jitter) and sends every
unacknowledged batch again. Damaged or removed records are reported on
standard error with the number lost.`

// multiFlag collects repeated flags (--log, --field).
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

func runShip(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags(commands["ship"], stderr, shipHelp)
	var logs multiFlag
	fs.Var(&logs, "log", "log directory, or a shell pattern of directories (quote it); repeatable (required)")
	to := fs.String("to", "", "where to ship: see above (required)")
	cursor := fs.String("cursor", "", "cursor file, for a single --log DIR (default DIR/cursors/NAME)")
	cname := fs.String("cursor-name", "", "name of each log's cursor (default: made from --to, so that shippers to different places keep different cursors)")
	cursorDir := fs.String("cursor-dir", "", "keep the cursors under this directory (DIR/NAME/<the log's path>) instead of in each log's cursors/")
	from := fs.String("from", "begin", "where to start without a cursor: begin, end or a sequence number")
	metrics := fs.String("metrics", "", "serve Prometheus metrics on this address (such as 127.0.0.1:9464), at /metrics")
	of := addOutputFlags(fs)
	batch := fs.Int("batch", ship.DefaultBatchSize, fmt.Sprintf("events per batch at most, 1 to %d", ship.MaxBatchSize))
	window := fs.Int("window", ship.DefaultWindow, fmt.Sprintf("events of one log in flight (sent, not yet acknowledged and saved in its cursor): at most this many are sent again after a crash; 1 to %d", ship.MaxWindow))
	host := fs.String("host", "", "host.name and agent.name of the events (default: this host's name)")
	var fields multiFlag
	fs.Var(&fields, "field", "extra event field KEY=VALUE (dotted keys nest: service.name=checkout); repeatable")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("unexpected arguments %q: the logs are given with --log", pos)
	}
	if len(logs) == 0 || *to == "" {
		return usagef("--log and --to are required")
	}
	if err := of.validate(); err != nil {
		return err
	}
	switch {
	case *batch < 1 || *batch > ship.MaxBatchSize:
		return usagef("--batch %d: want 1 to %d events", *batch, ship.MaxBatchSize)
	case *window < 1 || *window > ship.MaxWindow:
		return usagef("--window %d: want 1 to %d events", *window, ship.MaxWindow)
	case *cursor != "" && (len(logs) != 1 || strings.ContainsAny(logs[0], `*?[\`)):
		return usagef("--cursor is the cursor file of a single --log DIR; with several logs or a pattern use --cursor-name or --cursor-dir")
	case *cursor != "" && (*cname != "" || *cursorDir != ""):
		return usagef("--cursor names the file itself: it cannot be combined with --cursor-name or --cursor-dir")
	case strings.ContainsAny(*cname, `/\`) || *cname == "." || *cname == "..":
		return usagef("--cursor-name %q: want a file name", *cname)
	}
	fm := map[string]string{}
	for _, f := range fields {
		k, v, ok := strings.Cut(f, "=")
		if !ok || k == "" {
			return usagef("--field %q: want KEY=VALUE", f)
		}
		fm[k] = v
	}
	out, err := of.open(*to, "ship", ship.OutputWindow, *batch, stderr)
	if err != nil {
		return err
	}
	name := *cname
	if name == "" && *cursor == "" {
		name = cursorName(*to)
	}
	cfg := ship.Config{Logs: logs, Output: out, CursorPath: *cursor, CursorName: name, CursorDir: *cursorDir, From: *from, Host: *host, Fields: fm,
		BatchSize: *batch, Window: *window,
		OnDamage: func(d tail.Damage) { fmt.Fprintf(stderr, "mmaptail ship: damage: %s\n", oneLine(d.String())) },
		Logf: func(format string, args ...any) {
			fmt.Fprintf(stderr, "mmaptail ship: %s\n", oneLine(fmt.Sprintf(format, args...)))
		}}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, unix.SIGTERM)
	defer stop()
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
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(l)
		defer srv.Close()
	}
	s, err := ship.New(cfg)
	if err != nil {
		out.Close(context.Background())
		return err
	}
	fmt.Fprintf(stderr, "mmaptail ship: %s -> %s\n", strings.Join(logs, " "), out)
	err = s.Run(ctx)
	st := s.Stats()
	fmt.Fprintf(stderr, "mmaptail ship: stopped: %d log(s), %d event(s) acknowledged; %d record(s) lost\n", st.Logs, st.Acked, st.Lost)
	if err != nil && ship.Unreported(err) == nil {
		return &exitError{1} // each log's error is on stderr already
	}
	return ship.Unreported(err)
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
