package ship

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mmaplog/mmaplog/output"
	"github.com/mmaplog/mmaplog/rotate"
	"github.com/mmaplog/mmaplog/tail"
)

// Defaults and limits of Config.
const (
	DefaultBatchSize    = 2048
	DefaultBatchBytes   = 2 << 20
	DefaultWindow       = 8192
	DefaultWindowBytes  = 16 << 20
	DefaultBufferBytes  = 8 << 20
	DefaultDrainTimeout = 10 * time.Second
	DefaultScanInterval = 500 * time.Millisecond
	DefaultSaveInterval = time.Second

	// MaxBatchSize and MaxWindow are the most events per batch and in
	// flight per log. Memory is bounded by bytes (BatchBytes,
	// WindowBytes, BufferBytes) whatever the counts; these bound what a
	// receiver is sent in one go and what a restart may ship again.
	MaxBatchSize = 65536
	MaxWindow    = 1 << 20
	// MaxBatchBytes, MaxWindowBytes and MaxBufferBytes bound the byte
	// limits.
	MaxBatchBytes  = 64 << 20
	MaxWindowBytes = 1 << 30
	MaxBufferBytes = 4 << 30

	// OutputWindow is the number of batches the shipper lets an output
	// have published and not acknowledged, all logs together (the
	// shipper's own Window, WindowBytes and BufferBytes bound them first).
	OutputWindow = 1024
)

// Config says what to ship where.
type Config struct {
	// Logs are the logs to ship: directories, or shell patterns of
	// directories (filepath.Match: *, ?, [...]; "/var/log/apps/*").
	// Patterns are looked at again every ScanInterval, and a directory
	// that matches and holds a log is followed from then on; a plain path
	// that does not exist yet is followed once it does.
	Logs []string
	// Dir is one log directory, added to Logs (for callers that ship one).
	Dir string
	// Output is where the events go. Run closes it.
	Output output.Output
	// CursorPath is the cursor file of the one log shipped (Dir, or a
	// single path in Logs). If it exists, shipping continues after it (a
	// cursor of another log is refused); it is saved after every
	// acknowledged batch.
	CursorPath string
	// CursorName gives each log a cursor named so: DIR/cursors/NAME (see
	// tail.CursorPath), or CursorDir/NAME/<the log's path> with CursorDir.
	CursorName string
	// CursorDir, if set, keeps the cursors there rather than under each
	// log directory (for logs the shipper may not write into).
	CursorDir string
	// With CursorPath, CursorName and CursorDir all "", the shipper keeps
	// no cursor: it starts at From every time.

	// Inputs are more logs, each group with settings of its own (fields,
	// cursors, From), Config's CursorName, CursorDir, From and Fields
	// their defaults. SetInputs replaces them, and Logs, while Run runs.
	Inputs []Input

	// From is where to start when there is no cursor: tail.StartBegin
	// (the oldest record; the zero value), tail.StartEnd (records written
	// from now on) or tail.StartAt a sequence number; tail.ParseStart reads
	// what --from takes.
	From tail.Start
	// Host is host.name and agent.name in every event. Default: os.Hostname().
	Host string
	// Fields are extra members of every event (see Encoder).
	Fields map[string]string
	// BatchSize and BatchBytes bound a batch (events, and bytes of JSON).
	// A batch is sent when full, or at once when the shipper has caught up
	// with the writer. Defaults DefaultBatchSize, DefaultBatchBytes; at
	// most MaxBatchSize, MaxBatchBytes.
	BatchSize, BatchBytes int
	// Window is the number of events of one log in flight: published and
	// not yet both acknowledged and saved in its cursor. After a crash of
	// the shipper at most this many events per log are shipped again.
	// WindowBytes bounds the bytes of JSON they take. A batch larger than
	// either is sent alone. Defaults DefaultWindow, DefaultWindowBytes; at
	// most MaxWindow, MaxWindowBytes.
	Window, WindowBytes int
	// BufferBytes bounds the bytes of events in flight of all logs
	// together, the shipper's memory for events whatever the number of
	// logs. Logs wait for it in turn. Default DefaultBufferBytes, at most
	// MaxBufferBytes.
	BufferBytes int
	// SaveInterval is the least time between two saves of a log's cursor
	// while less than half its window waits for one (a save is two
	// fsyncs; with many logs, saving after every batch of each would be
	// thousands a second). Default DefaultSaveInterval.
	SaveInterval time.Duration
	// DrainTimeout bounds how long Run waits, once ctx is done, for the
	// batches in flight to be acknowledged. Default DefaultDrainTimeout.
	DrainTimeout time.Duration
	// ScanInterval is how often Logs' patterns (and plain paths that do
	// not exist yet) are looked at again. Default DefaultScanInterval.
	ScanInterval time.Duration
	// OnDamage is told about damage (and records lost) the readers met;
	// Damage.Path names the segment, and so the log.
	OnDamage func(tail.Damage)
	// Logf, if set, is told what the shipper does that an operator should
	// know (a log picked up, waited for, stopped; a cursor beyond the end
	// of its log), one line each, without a trailing newline.
	Logf func(format string, args ...any)
	// Metrics, if set, are updated as the shipper goes.
	Metrics *Metrics
	// Reader tunes the follow readers (HoleWait, WaitTimeout). Their start
	// fields are set from the cursor or From.
	Reader tail.Options
}

// Stats are what a Shipper did, all logs together (those let go included).
type Stats struct {
	Logs        int    // logs followed now (started, failed ones included)
	Released    int    // logs let go: their directory removed, or their input
	Failed      int    // logs that stopped on an error
	Read        uint64 // records read
	Acked       uint64 // events acknowledged by the output
	AckedSeq    uint64 // with one log: the sequence number of its last acknowledged record
	Lost        uint64 // records lost to damage or retention before they were read
	Batches     uint64 // batches acknowledged
	CursorSaves uint64
}

// Shipper follows logs and ships their records to an output, at least once.
type Shipper struct {
	cfg    Config
	budget *budget
	chunks chan []byte // chunks of memory for events, for reuse
	// reading holds a token for each log reading records right now (see
	// logShipper.readSlot): few at once, so that few hold segment pages.
	reading chan struct{}
	// holders counts the logs that keep their segment pages mapped while
	// caught up (logShipper.doneReading), at most readers() of them.
	holders atomic.Int32

	mu       sync.Mutex
	inputs   []*input
	logs     map[string]*logShipper // by cleaned path
	order    []*logShipper          // in the order they were started
	waiting  map[string]bool        // patterns and paths reported as waited for
	failed   []error
	running  int
	released Stats // the counters of the logs let go
	runCtx   context.Context
	stopping bool          // Run no longer starts logs
	changed  chan struct{} // a log stopped
	rescan   chan struct{} // look for logs now (SetInputs, a log let go)
	first    bool          // the first scan: plain paths that exist are not announced
	wg       sync.WaitGroup
}

// New checks the configuration. Run ships.
func New(cfg Config) (*Shipper, error) {
	if cfg.Output == nil {
		return nil, errors.New("ship: no output")
	}
	if cfg.Dir != "" {
		cfg.Logs = append([]string{cfg.Dir}, cfg.Logs...)
	}
	if len(cfg.Logs) == 0 && len(cfg.Inputs) == 0 {
		return nil, errors.New("ship: no log to ship")
	}
	if cfg.CursorPath != "" && (len(cfg.Logs) != 1 || isPattern(cfg.Logs[0])) {
		return nil, errors.New("ship: a cursor file is for one log; with several logs or a pattern, name the cursors (CursorName) instead")
	}
	for _, c := range []struct {
		v        *int
		def, max int
		name     string
	}{
		{&cfg.BatchSize, DefaultBatchSize, MaxBatchSize, "batch size"},
		{&cfg.BatchBytes, DefaultBatchBytes, MaxBatchBytes, "batch bytes"},
		{&cfg.Window, DefaultWindow, MaxWindow, "window"},
		{&cfg.WindowBytes, DefaultWindowBytes, MaxWindowBytes, "window bytes"},
		{&cfg.BufferBytes, DefaultBufferBytes, MaxBufferBytes, "buffer bytes"},
	} {
		if *c.v <= 0 {
			*c.v = c.def
		}
		if *c.v > c.max {
			return nil, fmt.Errorf("ship: %s %d: at most %d", c.name, *c.v, c.max)
		}
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = DefaultDrainTimeout
	}
	if cfg.ScanInterval <= 0 {
		cfg.ScanInterval = DefaultScanInterval
	}
	if cfg.SaveInterval <= 0 {
		cfg.SaveInterval = DefaultSaveInterval
	}
	if cfg.Host == "" {
		cfg.Host, _ = os.Hostname()
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	// The encoder checks the fields once here, so that a bad one is an
	// error before anything runs.
	if _, err := NewEncoder("/", cfg.Host, cfg.Fields); err != nil {
		return nil, fmt.Errorf("ship: %w", err)
	}
	var list []Input
	if len(cfg.Logs) > 0 {
		list = append(list, Input{Logs: cfg.Logs, CursorPath: cfg.CursorPath})
	}
	list = append(list, cfg.Inputs...)
	inputs, err := resolveInputs(&cfg, list)
	if err != nil {
		return nil, err
	}
	s := &Shipper{cfg: cfg, inputs: inputs, budget: newBudget(int64(cfg.BufferBytes)),
		chunks: make(chan []byte, chunkPool), reading: make(chan struct{}, readers()), logs: map[string]*logShipper{}, waiting: map[string]bool{},
		changed: make(chan struct{}, 1), rescan: make(chan struct{}, 1)}
	if cfg.Metrics != nil {
		cfg.Metrics.attach(s)
	}
	return s, nil
}

// isPattern reports whether p has shell pattern characters.
func isPattern(p string) bool { return strings.ContainsAny(p, `*?[\`) }

// CursorFileName is the file name of the cursor of the log in dir under a
// cursor directory (Config.CursorDir): the log's absolute path with its
// separators and other characters outside [A-Za-z0-9.-] as underscores,
// and a hash of the path, so that two logs never share a cursor.
func CursorFileName(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = filepath.Clean(dir)
	}
	var b strings.Builder
	for _, r := range strings.TrimPrefix(abs, "/") {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	sum := sha256.Sum256([]byte(abs))
	name := b.String()
	if len(name) > 200 {
		name = name[len(name)-200:]
	}
	return name + "-" + hex.EncodeToString(sum[:4])
}

// Run ships until ctx is done, then waits (DrainTimeout at most) for the
// batches in flight, saves the cursors, closes the output and returns. A
// log that cannot be shipped on (a cursor of another log, or held by
// another shipper) stops alone, reported through Logf; Run returns early,
// with that error, when every log has stopped so and no pattern can bring
// another one, and otherwise reports the logs that stopped in its error at
// the end. It also returns an error if a cursor cannot be saved or batches
// were left unacknowledged.
func (s *Shipper) Run(ctx context.Context) (err error) {
	s.first = true
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.mu.Lock()
	s.runCtx = ctx
	s.mu.Unlock()
	t := time.NewTicker(s.cfg.ScanInterval)
	defer t.Stop()
	s.scan(ctx)
	s.first = false
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-t.C:
			s.scan(ctx)
		case <-s.rescan:
			s.scan(ctx)
		case <-s.changed:
		}
		if s.allFailed() {
			break
		}
	}
	s.mu.Lock()
	s.stopping = true
	s.mu.Unlock()
	cancel()
	s.wg.Wait() // the logs stop reading and publishing
	dctx, dcancel := context.WithTimeout(context.Background(), s.cfg.DrainTimeout)
	defer dcancel()
	var errs []error
	if cerr := s.cfg.Output.Close(dctx); cerr != nil {
		errs = append(errs, fmt.Errorf("ship: %w", cerr))
	}
	s.mu.Lock()
	logs := append([]*logShipper(nil), s.order...)
	errs = append(errs, s.failed...)
	s.mu.Unlock()
	for _, l := range logs {
		if serr := l.finish(); serr != nil {
			errs = append(errs, serr)
		}
	}
	return errors.Join(errs...)
}

// allFailed reports whether every log stopped on an error and nothing can
// bring another one: no pattern, no path waited for.
func (s *Shipper) allFailed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running > 0 || len(s.order) == 0 || len(s.waiting) > 0 {
		return false
	}
	for _, in := range s.inputs {
		if in.patterns() {
			return false
		}
	}
	for _, l := range s.order {
		if l.failed() == nil {
			return false
		}
	}
	return true
}

// scan lets go of the logs whose directory is gone, then looks for the
// logs the inputs name and starts those not followed yet.
func (s *Shipper) scan(ctx context.Context) {
	s.mu.Lock()
	logs := append([]*logShipper(nil), s.order...)
	inputs := s.inputs
	s.mu.Unlock()
	for _, l := range logs {
		if l.dirGone() {
			s.stopLog(l, releaseGone)
		}
	}
	for _, in := range inputs {
		for _, p := range in.logs {
			if !isPattern(p) {
				if fi, err := os.Stat(p); err == nil && fi.IsDir() {
					s.startLog(ctx, p, in, !s.first)
				} else {
					s.wait(p, fmt.Sprintf("%s does not exist yet: waiting for it to appear", p))
				}
				continue
			}
			matches, _ := filepath.Glob(p)
			found := false
			for _, m := range matches {
				if fi, err := os.Stat(m); err != nil || !fi.IsDir() || !isLog(m) {
					continue
				}
				found = true
				s.startLog(ctx, m, in, true)
			}
			if !found {
				s.wait(p, fmt.Sprintf("no log directory matches %s yet: waiting for one to appear", p))
			}
		}
	}
}

// isLog reports whether dir holds an mmaplog log (or one is being made).
func isLog(dir string) bool {
	if _, ok := tail.LogID(dir); ok {
		return true
	}
	_, err := os.Stat(filepath.Join(dir, rotate.LockName))
	return err == nil
}

// wait reports, once, that p is waited for.
func (s *Shipper) wait(p, msg string) {
	s.mu.Lock()
	first := !s.waiting[p]
	s.waiting[p] = true
	s.mu.Unlock()
	if first {
		s.cfg.Logf("%s", msg)
	}
}

// startLog starts shipping the log in dir for the input in, unless it is
// shipped already or in is no longer the input that names it (the inputs
// were replaced meanwhile).
func (s *Shipper) startLog(ctx context.Context, dir string, in *input, announce bool) {
	s.mu.Lock()
	if _, ok := s.logs[dir]; ok || s.stopping || s.claim(dir) != in {
		s.mu.Unlock()
		return
	}
	l := newLogShipper(s, dir, in)
	l.dev, l.ino = dirID(dir)
	l.ctx, l.cancel = context.WithCancel(ctx)
	l.waitCtx, l.wake = context.WithCancel(l.ctx)
	l.announce = announce
	s.logs[dir] = l
	s.order = append(s.order, l)
	delete(s.waiting, dir) // it appeared
	s.running++
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		err := l.run(l.ctx)
		s.mu.Lock()
		s.running--
		l.exited = true
		if err != nil {
			s.failed = append(s.failed, err)
		}
		why := l.why
		s.mu.Unlock()
		if err != nil {
			var le *LogError
			if errors.As(err, &le) {
				s.cfg.Logf("%s: stopped: %s", dir, le.Err)
			}
		}
		if why != releaseNone {
			s.release(l)
		}
		select {
		case s.changed <- struct{}{}:
		default:
		}
	}()
}

// Stats returns the shipper's counters. It is safe to call while Run runs.
func (s *Shipper) Stats() Stats {
	s.mu.Lock()
	logs := append([]*logShipper(nil), s.order...)
	r := s.released
	st := Stats{Logs: len(logs), Released: r.Released, Failed: len(s.failed), Read: r.Read, Acked: r.Acked, Lost: r.Lost, Batches: r.Batches, CursorSaves: r.CursorSaves}
	s.mu.Unlock()
	for _, l := range logs {
		ls := l.stats()
		st.Read += ls.Read
		st.Acked += ls.Acked
		st.Lost += ls.Lost
		st.Batches += ls.Batches
		st.CursorSaves += ls.CursorSaves
	}
	if len(logs) == 1 {
		st.AckedSeq = logs[0].ackedSeq.Load()
	}
	return st
}

// LogStats are what the shipper did for one log.
type LogStats struct {
	Dir         string
	Cursor      string // its cursor file ("" for none)
	Read        uint64
	Acked       uint64
	AckedSeq    uint64 // sequence number of the last acknowledged record
	Lost        uint64
	Damage      uint64 // damaged ranges met
	Batches     uint64
	Bytes       uint64 // bytes of JSON acknowledged
	CursorSaves uint64
	SaveErrors  uint64
	BeyondEnd   bool  // the cursor (or From) is past the log's newest record
	Err         error // why it stopped, if it did
}

// LogStats returns each log's counters, by directory.
func (s *Shipper) LogStats() []LogStats {
	s.mu.Lock()
	logs := append([]*logShipper(nil), s.order...)
	s.mu.Unlock()
	out := make([]LogStats, 0, len(logs))
	for _, l := range logs {
		out = append(out, l.stats())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Dir < out[j].Dir })
	return out
}
