package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sys/unix"

	"github.com/mmaplog/mmaplog/internal/shipconfig"
	"github.com/mmaplog/mmaplog/output"
	"github.com/mmaplog/mmaplog/ship"
	"github.com/mmaplog/mmaplog/tail"
)

func init() {
	register(&command{
		name:    "ship",
		args:    "--log DIR|PATTERN [--log ...] --to URL [flags] | -c FILE [--check] [flags]",
		summary: "follow logs and ship their records to Logstash (beats, tcp, redis), Kafka, Elasticsearch, OpenTelemetry (otlp), stdout or a file",
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
standard error with the number lost. A log whose directory is removed is
shipped to the end of what is still readable, then let go.

-c FILE reads a YAML configuration (docs/SHIPPING.md): inputs (logs,
fields, cursors), fields, the output (to and every output flag, by its
name: workers, tls: {ca: ...}, kafka: {acks: ...}) and the other flags
(metrics, batch, ...). Flags given on the command line override it (--log
replaces its inputs). SIGHUP reads it again and applies its inputs, fields,
cursor_name, cursor_dir and from without losing a cursor; any other change
is reported and takes effect at the next start. --check checks the
configuration, tests every host of the output (resolve, connect, TLS
handshake, the protocol's handshake), prints each step and exits 0 if all
passed, 1 otherwise.`

// multiFlag collects repeated flags (--log, --field).
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

// shipFlags are ship's flags, and what the configuration file may set.
type shipFlags struct {
	fs                                 *flag.FlagSet
	logs, fields                       multiFlag
	config                             string
	check                              *bool
	to, cursor, cname, cursorDir, from *string
	metrics, host                      *string
	of                                 *outputFlags
	batch, window                      *int
	schema                             shipconfig.Schema
	given                              map[string]bool // set on the command line
	file                               *shipconfig.Config
}

// notInFile are the flags that have no key of their own in the
// configuration file: the inputs, fields and output.to stand for them.
var notInFile = map[string]bool{"log": true, "field": true, "cursor": true, "to": true, "c": true, "config": true, "check": true}

func newShipFlags(stderr io.Writer) *shipFlags {
	f := &shipFlags{fs: newFlags(commands["ship"], stderr, shipHelp)}
	fs := f.fs
	fs.StringVar(&f.config, "c", "", "read the configuration from this YAML file (see docs/SHIPPING.md); flags override it, SIGHUP reads its inputs again")
	fs.StringVar(&f.config, "config", "", "the same as -c")
	f.check = fs.Bool("check", false, "check the configuration and test the connection to every host of the output (resolve, connect, TLS, handshake), print each step, and exit 0 if all passed, 1 otherwise")
	fs.Var(&f.logs, "log", "log directory, or a shell pattern of directories (quote it); repeatable (required without -c; replaces the file's inputs)")
	f.to = fs.String("to", "", "where to ship: see above (required, here or as output.to in the file)")
	f.cursor = fs.String("cursor", "", "cursor file, for a single --log DIR (default DIR/cursors/NAME)")
	f.cname = fs.String("cursor-name", "", "name of each log's cursor (default: made from --to, so that shippers to different places keep different cursors)")
	f.cursorDir = fs.String("cursor-dir", "", "keep the cursors under this directory (DIR/NAME/<the log's path>) instead of in each log's cursors/")
	f.from = fs.String("from", "begin", "where to start without a cursor: begin, end or a sequence number")
	f.metrics = fs.String("metrics", "", "serve Prometheus metrics on this address (such as 127.0.0.1:9464), at /metrics")
	f.of = addOutputFlags(fs)
	f.batch = fs.Int("batch", ship.DefaultBatchSize, fmt.Sprintf("events per batch at most, 1 to %d", ship.MaxBatchSize))
	f.window = fs.Int("window", ship.DefaultWindow, fmt.Sprintf("events of one log in flight (sent, not yet acknowledged and saved in its cursor): at most this many are sent again after a crash; 1 to %d", ship.MaxWindow))
	f.host = fs.String("host", "", "host.name and agent.name of the events (default: this host's name)")
	fs.Var(&f.fields, "field", "extra event field KEY=VALUE (dotted keys nest: service.name=checkout); repeatable; overrides the file's fields of that key")
	out := map[string]bool{"to": true}
	f.schema.Output = append(f.schema.Output, "to")
	for _, n := range f.of.names {
		out[n] = true
		f.schema.Output = append(f.schema.Output, n)
	}
	fs.VisitAll(func(fl *flag.Flag) {
		if !out[fl.Name] && !notInFile[fl.Name] {
			f.schema.Top = append(f.schema.Top, fl.Name)
		}
	})
	return f
}

// parse parses args and, with -c, the configuration file under them.
func (f *shipFlags) parse(args []string) error {
	pos, err := parseInterleaved(f.fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("unexpected arguments %q: the logs are given with --log", pos)
	}
	f.given = map[string]bool{}
	f.fs.Visit(func(fl *flag.Flag) { f.given[fl.Name] = true })
	if f.config == "" {
		return nil
	}
	if f.file, err = shipconfig.Load(f.config, f.schema); err != nil {
		return err
	}
	return f.file.Apply(f.fs, f.given)
}

// fromFile names the file and line of a flag's value refused after
// parsing (a usage error "--NAME VALUE: ..."), when the file set it.
func (f *shipFlags) fromFile(err error) error {
	var ue *usageError
	if f.file == nil || !errors.As(err, &ue) || !strings.HasPrefix(ue.msg, "--") {
		return err
	}
	name, rest, _ := strings.Cut(ue.msg[2:], " ")
	if f.given[name] {
		return err
	}
	for _, st := range f.file.Settings {
		if st.Flag == name {
			_, why, _ := strings.Cut(rest, ": ")
			return &shipconfig.Error{Path: f.file.Path, Line: st.Line, Msg: fmt.Sprintf("%s: %q: %s", st.Key, st.Value, why)}
		}
	}
	return err
}

// start reads where to start without a cursor (--from, or from in the
// file, whose line the error names).
func (f *shipFlags) start(s string) (tail.Start, error) {
	st, err := tail.ParseStart(s)
	if err == nil {
		return st, nil
	}
	msg := fmt.Sprintf("from %q: want begin, end or a sequence number (1 or more)", s)
	if line := f.fileLine("from"); line > 0 {
		return st, &shipconfig.Error{Path: f.config, Line: line, Msg: msg}
	}
	return st, errors.New("ship: " + msg)
}

// fileLine is the line where the file set the flag name, if it did and
// the command line did not override it (0 otherwise).
func (f *shipFlags) fileLine(name string) int {
	if f.file == nil || f.given[name] {
		return 0
	}
	return f.file.Line(name)
}

// globalFields are the fields of every event: the file's, with --field
// overriding them key by key.
func (f *shipFlags) globalFields(file *shipconfig.Config) (map[string]string, error) {
	fm := map[string]string{}
	if file != nil {
		for k, v := range file.Fields {
			fm[k] = v
		}
	}
	for _, fl := range f.fields {
		k, v, ok := strings.Cut(fl, "=")
		if !ok || k == "" {
			return nil, usagef("--field %q: want KEY=VALUE", fl)
		}
		fm[k] = v
	}
	return fm, nil
}

// setting is the value of a top-level flag as file says it, unless the
// command line gave it: what a reload takes for the inputs' defaults.
func (f *shipFlags) setting(file *shipconfig.Config, name string) string {
	if f.given[name] || file == nil {
		return f.fs.Lookup(name).Value.String()
	}
	for _, st := range file.Settings {
		if st.Flag == name {
			return st.Value
		}
	}
	return f.fs.Lookup(name).DefValue
}

// fileInputs are the inputs of file, with the top-level fields and the
// cursor and from defaults folded into each (the input's own win), so that
// a reload sees a change of any of them as a change of the inputs.
func (f *shipFlags) fileInputs(file *shipconfig.Config) ([]ship.Input, error) {
	global, err := f.globalFields(file)
	if err != nil {
		return nil, err
	}
	cname, cdir := f.setting(file, "cursor-name"), f.setting(file, "cursor-dir")
	from, err := f.start(f.setting(file, "from"))
	if err != nil {
		return nil, err
	}
	if cname == "" {
		cname = cursorName(*f.to)
	}
	var out []ship.Input
	for _, in := range file.Inputs {
		si := ship.Input{Logs: in.Logs, CursorPath: in.Cursor, CursorName: in.CursorName, CursorDir: in.CursorDir, From: in.From, Fields: map[string]string{}}
		for k, v := range global {
			si.Fields[k] = v
		}
		for k, v := range in.Fields {
			si.Fields[k] = v
		}
		if si.CursorName == "" && si.CursorPath == "" {
			si.CursorName = cname
		}
		if si.CursorDir == "" && si.CursorPath == "" {
			si.CursorDir = cdir
		}
		if si.From == nil {
			si.From = &from
		}
		out = append(out, si)
	}
	return out, nil
}

func runShip(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	// SIGHUP reads the configuration file again; caught from the start,
	// so that one sent early does not kill the shipper.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, unix.SIGHUP)
	defer signal.Stop(hup)
	f := newShipFlags(stderr)
	if err := f.parse(args); err != nil {
		return err
	}
	fromFile := len(f.logs) == 0 && f.file != nil
	noLogs := len(f.logs) == 0 && (f.file == nil || len(f.file.Inputs) == 0)
	switch {
	case noLogs && *f.to == "":
		return usagef("--log and --to are required (or -c FILE with inputs and output.to)")
	case noLogs:
		return usagef("--log (or inputs in the file of -c) is required")
	case *f.to == "":
		return usagef("--to (or output.to in the file of -c) is required")
	}
	if err := f.of.validate(); err != nil {
		return f.fromFile(err)
	}
	switch {
	case *f.batch < 1 || *f.batch > ship.MaxBatchSize:
		return f.fromFile(usagef("--batch %d: want 1 to %d events", *f.batch, ship.MaxBatchSize))
	case *f.window < 1 || *f.window > ship.MaxWindow:
		return f.fromFile(usagef("--window %d: want 1 to %d events", *f.window, ship.MaxWindow))
	case *f.cursor != "" && (len(f.logs) != 1 || strings.ContainsAny(f.logs[0], `*?[\`)):
		return usagef("--cursor is the cursor file of a single --log DIR; with several logs or a pattern use --cursor-name or --cursor-dir")
	case *f.cursor != "" && (*f.cname != "" || *f.cursorDir != ""):
		return usagef("--cursor names the file itself: it cannot be combined with --cursor-name or --cursor-dir")
	case strings.ContainsAny(*f.cname, `/\`) || *f.cname == "." || *f.cname == "..":
		return f.fromFile(usagef("--cursor-name %q: want a file name", *f.cname))
	}
	oo, err := f.of.options("ship", ship.OutputWindow, *f.batch, stderr)
	if err != nil {
		return f.fromFile(err)
	}
	logf := func(format string, args ...any) {
		fmt.Fprintf(stderr, "mmaptail ship: %s\n", oneLine(fmt.Sprintf(format, args...)))
	}
	cfg := ship.Config{Host: *f.host, BatchSize: *f.batch, Window: *f.window,
		OnDamage: func(d tail.Damage) { fmt.Fprintf(stderr, "mmaptail ship: damage: %s\n", oneLine(d.String())) },
		Logf:     logf}
	if fromFile {
		if cfg.Inputs, err = f.fileInputs(f.file); err != nil {
			return err
		}
	} else {
		if cfg.Fields, err = f.globalFields(f.file); err != nil {
			return err
		}
		name := *f.cname
		if name == "" && *f.cursor == "" {
			name = cursorName(*f.to)
		}
		if cfg.From, err = f.start(*f.from); err != nil {
			return err
		}
		cfg.Logs, cfg.CursorPath, cfg.CursorName, cfg.CursorDir = f.logs, *f.cursor, name, *f.cursorDir
	}
	out, err := output.Open(*f.to, oo)
	if err != nil {
		if line := f.fileLine("to"); line > 0 {
			return &shipconfig.Error{Path: f.config, Line: line, Msg: fmt.Sprintf("output.to: %s", err)}
		}
		return err
	}
	cfg.Output = out
	if *f.check {
		return f.runCheck(cfg, oo, stdout)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, unix.SIGTERM)
	defer stop()
	if *f.metrics != "" {
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		cfg.Metrics = ship.NewMetrics(reg)
		l, err := net.Listen("tcp", *f.metrics)
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
	reloads := make(chan struct{})
	go func() {
		defer close(reloads)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				f.reload(s, logf)
			}
		}
	}()
	what := strings.Join(f.logs, " ")
	if fromFile {
		what = fmt.Sprintf("%d input(s) of %s", len(cfg.Inputs), f.config)
	}
	fmt.Fprintf(stderr, "mmaptail ship: %s -> %s\n", what, out)
	err = s.Run(ctx)
	stop()
	<-reloads
	st := s.Stats()
	fmt.Fprintf(stderr, "mmaptail ship: stopped: %d log(s), %d let go, %d event(s) acknowledged; %d record(s) lost\n", st.Logs, st.Released, st.Acked, st.Lost)
	if err != nil && ship.Unreported(err) == nil {
		return &exitError{1} // each log's error is on stderr already
	}
	return ship.Unreported(err)
}

// reloadable are the top-level flags a reload takes (as the inputs'
// defaults); the others need a restart.
var reloadable = map[string]bool{"cursor-name": true, "cursor-dir": true, "from": true}

// reload reads the configuration file again on SIGHUP and replaces the
// shipper's inputs (their logs, fields, cursors and from, and the
// top-level fields, cursor_name, cursor_dir and from they take); a change
// of any other key is reported as needing a restart.
func (f *shipFlags) reload(s *ship.Shipper, logf func(string, ...any)) {
	if f.config == "" {
		logf("SIGHUP: no configuration file (-c) to read again: nothing to do")
		return
	}
	file, err := shipconfig.Load(f.config, f.schema)
	if err != nil {
		logf("SIGHUP: %s: the configuration stays as it was", err)
		return
	}
	if len(f.logs) > 0 {
		logf("SIGHUP: the logs were given with --log, which replaces the file's inputs: nothing to reload")
	} else if len(file.Inputs) == 0 {
		logf("SIGHUP: %s has no inputs: the configuration stays as it was", f.config)
		return
	} else {
		ins, err := f.fileInputs(file)
		if err == nil {
			err = s.SetInputs(ins)
		}
		if err != nil {
			logf("SIGHUP: %s: %s: the configuration stays as it was", f.config, err)
			return
		}
		logf("SIGHUP: %s read again: %d input(s)", f.config, len(ins))
	}
	old := map[string]string{} // the settings in effect: those read at the start
	for _, st := range f.file.Settings {
		old[st.Flag] = st.Value
	}
	for _, st := range file.Settings {
		if v, ok := old[st.Flag]; (!ok || v != st.Value) && !reloadable[st.Flag] && !f.given[st.Flag] {
			logf("SIGHUP: %s:%d: %s changed to %q: not reloaded, it takes effect when mmaptail ship restarts", f.config, st.Line, st.Key, st.Value)
		}
		delete(old, st.Flag)
	}
	for name := range old {
		if !reloadable[name] && !f.given[name] {
			logf("SIGHUP: %s: --%s no longer set: not reloaded, it takes effect when mmaptail ship restarts", f.config, name)
		}
	}
}

// runCheck checks the configuration (ship.New takes it without running)
// and tests the connections of the output, printing each step; an error
// (exit 1) if any failed.
func (f *shipFlags) runCheck(cfg ship.Config, oo *output.Options, stdout io.Writer) error {
	defer cfg.Output.Close(context.Background())
	if _, err := ship.New(cfg); err != nil {
		return err
	}
	if f.config != "" {
		fmt.Fprintf(stdout, "config %s: OK\n", f.config)
	} else {
		fmt.Fprintln(stdout, "flags: OK")
	}
	inputs := cfg.Inputs
	if len(cfg.Logs) > 0 {
		inputs = append([]ship.Input{{Logs: cfg.Logs}}, inputs...)
	}
	for i, in := range inputs {
		for _, p := range in.Logs {
			m, _ := filepath.Glob(p)
			dirs := 0
			for _, d := range m {
				if fi, err := os.Stat(d); err == nil && fi.IsDir() {
					dirs++
				}
			}
			fmt.Fprintf(stdout, "input %d: %s: %d director%s now\n", i+1, p, dirs, map[bool]string{true: "y", false: "ies"}[dirs == 1])
		}
	}
	fmt.Fprintf(stdout, "output %s\n", cfg.Output)
	host := "\x00"
	err := output.Check(context.Background(), *f.to, oo, func(st output.CheckStep) {
		if st.Host != host {
			host = st.Host
			if host == "" {
				fmt.Fprintln(stdout, "  the cluster")
			} else {
				fmt.Fprintf(stdout, "  %s\n", host)
			}
		}
		if st.Err != nil {
			fmt.Fprintf(stdout, "    %s... ERROR %s\n", st.Step, oneLine(st.Err.Error()))
			return
		}
		fmt.Fprintf(stdout, "    %s... OK %s\n", st.Step, st.Detail)
	})
	if err != nil {
		fmt.Fprintf(stdout, "check: FAILED: %s\n", oneLine(err.Error()))
		return &exitError{1}
	}
	fmt.Fprintln(stdout, "check: OK")
	return nil
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
