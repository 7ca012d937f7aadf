package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Config is a run of the harness.
type Config struct {
	Quick     bool
	Reps      int           // repetitions of every case; the order alternates between them
	Duration  time.Duration // of each measured pass
	Warmup    time.Duration
	Dir       string   // where case directories are made
	Sinks     []string // sink IDs or ID prefixes ("mmaplog"); empty: all
	Scenarios []string // scenario names; empty: all
	Progress  io.Writer
}

// DefaultConfig returns the settings of a full run, or of a -quick one.
func DefaultConfig(quick bool) Config {
	if quick {
		return Config{Quick: true, Reps: 2, Duration: 150 * time.Millisecond, Warmup: 20 * time.Millisecond, Dir: os.TempDir()}
	}
	return Config{Reps: 3, Duration: time.Second, Warmup: 100 * time.Millisecond, Dir: os.TempDir()}
}

// Report is the outcome of a run.
type Report struct {
	Machine  Machine   `json:"machine"`
	Settings Settings  `json:"settings"`
	Results  []*Result `json:"results"`
	// WriteAllocs is allocations per Write of mmaplog's Write path alone,
	// by sink ID (see writePathAllocs).
	WriteAllocs map[string]float64 `json:"write_path_allocs_per_op"`
	// GroupNotes say, by group title, what the rows of a group measure
	// where that is not the Write path, and its baseline row's ID.
	GroupNotes map[string]GroupNote `json:"group_notes,omitempty"`
	groups     []*Group
}

// GroupNote is what a group's table says about its rows.
type GroupNote struct {
	Note     string `json:"note"`
	Baseline string `json:"baseline"`
}

// Settings describe how the figures were taken.
type Settings struct {
	Quick        bool    `json:"quick"`
	Reps         int     `json:"reps"`
	PassSeconds  float64 `json:"pass_seconds"`
	ClockMinNs   int64   `json:"clock_overhead_min_ns"`
	ClockNs      int64   `json:"clock_overhead_ns"`
	Baseline     string  `json:"baseline"`
	Started      string  `json:"started"`
	TookSeconds  float64 `json:"took_seconds"`
	LatencyNote  string  `json:"latency_method"`
	AllocsNote   string  `json:"allocs_method"`
	MBNote       string  `json:"mb_unit"`
	OrderingNote string  `json:"ordering"`
}

// Result is one row: a case aggregated over the repetitions.
type Result struct {
	Scenario   string  `json:"scenario"`
	Group      string  `json:"group"`
	ID         string  `json:"id"`   // "mmaplog/none"
	Sink       string  `json:"sink"` // "mmaplog"
	Name       string  `json:"name"`
	Policy     string  `json:"policy"`
	Size       int     `json:"size"`
	MeanSize   float64 `json:"mean_size"`
	Goroutines int     `json:"goroutines"`
	Segment    int64   `json:"segment_bytes"`
	Encode     bool    `json:"encode"`

	RecordsPerS float64 `json:"records_per_s"` // median of the repetitions
	RecordsMin  float64 `json:"records_per_s_min"`
	RecordsMax  float64 `json:"records_per_s_max"`
	MBPerS      float64 `json:"mb_per_s"`
	NsPerOp     float64 `json:"ns_per_op"`
	AllocsPerOp float64 `json:"allocs_per_op"`
	CPUNsPerOp  float64 `json:"cpu_ns_per_op"`
	P50         int64   `json:"p50_ns"`
	P99         int64   `json:"p99_ns"`
	P999        int64   `json:"p999_ns"`
	Max         int64   `json:"max_ns"`
	LatRecords  int64   `json:"latency_samples"`
	RSS         int64   `json:"rss_bytes"`
	RSSDelta    int64   `json:"rss_delta_bytes"`
	Records     int64   `json:"records"`
	Bytes       int64   `json:"bytes"`
	Written     int64   `json:"written"`
	Dropped     uint64  `json:"dropped"`
	Rotations   uint64  `json:"rotations"`
	// Rotations that waited for the next segment to be prepared, and the
	// longest wait (mmaplog's Stats).
	RotationWaits     uint64 `json:"rotation_waits"`
	MaxRotationWaitNs int64  `json:"max_rotation_wait_ns"`
	// The longest preparation of a segment (mmaplog's Stats): what a
	// rotation that waited was waiting for.
	MaxPrepareNs int64  `json:"max_prepare_ns,omitempty"`
	Reps         int    `json:"reps"`
	Err          string `json:"error,omitempty"`

	// Shipping rows: the writer process's CPU time per record (follow),
	// and the mean size of an event as JSON and on the wire (ship).
	WriterCPUNsPerOp float64 `json:"writer_cpu_ns_per_op,omitempty"`
	EventBytes       float64 `json:"event_bytes_per_event,omitempty"`
	WireBytes        float64 `json:"wire_bytes_per_event,omitempty"`

	// Ratios against the group's baseline (mmaplog, flush none): this
	// row's figure divided by the baseline's. 0 where not measured.
	Vs map[string]float64 `json:"vs_mmaplog,omitempty"`

	// Repetitions are the figures of each repetition, in the order run.
	Repetitions []Rep `json:"repetitions"`

	samples []*Sample
	hist    *hdrhistogram.Histogram
}

// Rep is what one repetition of a case measured, where the repetitions of
// a row differ: its rate, and the state of the machine that explains much
// of a spread between repetitions.
type Rep struct {
	RecordsPerS float64 `json:"records_per_s"`
	// DirtyBytes is the page cache waiting for the disk (Dirty +
	// Writeback of /proc/meminfo) at the end of the throughput pass.
	DirtyBytes        int64  `json:"dirty_bytes"`
	RotationWaits     uint64 `json:"rotation_waits,omitempty"`
	MaxRotationWaitNs int64  `json:"max_rotation_wait_ns,omitempty"`
	MaxPrepareNs      int64  `json:"max_prepare_ns,omitempty"`
}

// Run runs every selected case cfg.Reps times. Within a group the cases run
// one after the other, and the order changes on every repetition (rotated
// by one and reversed on odd repetitions), so that no sink always runs
// first, or right after the one that left the most dirty pages behind.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Reps < 1 || cfg.Duration <= 0 {
		return nil, fmt.Errorf("bench: want at least one repetition and a positive pass duration")
	}
	if st, err := os.Stat(cfg.Dir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("bench: -dir %s: not a directory (%v); give a writable directory for the log files", cfg.Dir, err)
	}
	groups, err := selectGroups(cfg)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	rep := &Report{Machine: describeMachine(cfg.Dir), groups: groups}
	minNs, ns := clockCost()
	rep.Settings = Settings{
		Quick: cfg.Quick, Reps: cfg.Reps, PassSeconds: cfg.Duration.Seconds(),
		ClockMinNs: minNs, ClockNs: ns, Baseline: BaselineSink,
		Started: start.UTC().Format(time.RFC3339),
		LatencyNote: "a separate pass after the throughput pass: runtime.nanotime (one vDSO clock_gettime) read before and after every Write " +
			"(or zerolog call) into a per-goroutine HDR histogram (1 ns to 100 s, 3 digits), merged over goroutines and repetitions; " +
			"each sample includes the difference of two back-to-back clock reads (clock_overhead_ns, the median)",
		AllocsNote:   "runtime.MemStats.Mallocs delta over the throughput pass divided by records: the whole process, background goroutines of the sink included",
		MBNote:       "MB = 10^6 bytes given to Write",
		OrderingNote: "cases of a group run back to back; the order is rotated by one and reversed on odd repetitions",
	}
	var mm []*Sink
	for _, s := range sinkRegistry {
		if len(cfg.Sinks) == 0 || slices.ContainsFunc(cfg.Sinks, func(p string) bool { return matchSink(s.ID, p) }) {
			mm = append(mm, s)
		}
	}
	if rep.WriteAllocs, err = writePathAllocs(cfg.Dir, mm); err != nil {
		return nil, err
	}
	results := map[*Case]*Result{}
	for _, g := range groups {
		if g.Note != "" {
			if rep.GroupNotes == nil {
				rep.GroupNotes = map[string]GroupNote{}
			}
			rep.GroupNotes[g.Title] = GroupNote{Note: g.Note, Baseline: g.Baseline}
		}
		for _, c := range g.Cases {
			r := newResult(g, c)
			results[c] = r
			rep.Results = append(rep.Results, r)
		}
	}
	total := len(rep.Results) * cfg.Reps
	doneCases := 0
	var failed []string
	for r := 0; r < cfg.Reps; r++ {
		for _, g := range groups {
			for _, c := range caseOrder(g.Cases, r) {
				if err := ctx.Err(); err != nil {
					return rep, err
				}
				res := results[c]
				progress(cfg.Progress, start, doneCases, total, r, cfg.Reps, g, c)
				smp, err := runCase(cfg, c)
				doneCases++
				if err != nil {
					if res.Err == "" {
						res.Err = err.Error()
						failed = append(failed, fmt.Sprintf("%s %s: %v", g.Title, c.ID, err))
					}
					continue
				}
				res.samples = append(res.samples, smp)
			}
		}
	}
	if cfg.Progress != nil {
		fmt.Fprintf(cfg.Progress, "\r\033[K%d cases x %d repetitions in %v\n", len(rep.Results), cfg.Reps, time.Since(start).Round(time.Second))
	}
	for _, res := range rep.Results {
		res.aggregate()
	}
	for _, g := range groups {
		computeRatios(rep.Results, g)
	}
	rep.Settings.TookSeconds = time.Since(start).Seconds()
	rep.Machine.LoadAvgEnd = loadAvg()
	if len(failed) > 0 {
		return rep, fmt.Errorf("bench: %d case(s) failed; first: %s", len(failed), failed[0])
	}
	return rep, nil
}

// caseOrder returns the order of a group's cases on repetition r.
func caseOrder(cs []*Case, r int) []*Case {
	out := make([]*Case, 0, len(cs))
	for i := range cs {
		out = append(out, cs[(i+r)%len(cs)])
	}
	if r%2 == 1 {
		slices.Reverse(out)
	}
	return out
}

func runCase(cfg Config, c *Case) (*Sample, error) {
	dir, err := os.MkdirTemp(cfg.Dir, "mmaplog-bench-")
	if err != nil {
		return nil, fmt.Errorf("bench: case directory: %w (set -dir to a writable directory)", err)
	}
	defer os.RemoveAll(dir)
	return c.Run(&Env{Dir: dir, Duration: cfg.Duration, Warmup: cfg.Warmup, Quick: cfg.Quick})
}

func progress(w io.Writer, start time.Time, done, total, rep, reps int, g *Group, c *Case) {
	if w == nil {
		return
	}
	el := time.Since(start)
	eta := "?"
	if done > 0 {
		eta = (el / time.Duration(done) * time.Duration(total-done)).Round(time.Second).String()
	}
	fmt.Fprintf(w, "\r\033[K[%d/%d] rep %d/%d  %s  %-24s  elapsed %v, about %s left",
		done+1, total, rep+1, reps, g.Title, c.ID, el.Round(time.Second), eta)
}

func selectGroups(cfg Config) ([]*Group, error) {
	for _, name := range cfg.Scenarios {
		if !slices.ContainsFunc(scenarioRegistry, func(s *Scenario) bool { return s.Name == name }) {
			return nil, fmt.Errorf("bench: no scenario %q (have %s)", name, scenarioNames())
		}
	}
	for _, p := range cfg.Sinks {
		if !slices.ContainsFunc(caseIDs(cfg.Quick), func(id string) bool { return matchSink(id, p) }) {
			return nil, fmt.Errorf("bench: no sink %q (have %s)", p, strings.Join(caseIDs(cfg.Quick), ", "))
		}
	}
	var out []*Group
	for _, s := range scenarioRegistry {
		if len(cfg.Scenarios) > 0 && !slices.Contains(cfg.Scenarios, s.Name) {
			continue
		}
		for _, g := range s.Groups(cfg.Quick) {
			if len(cfg.Sinks) > 0 {
				g.Cases = slices.DeleteFunc(g.Cases, func(c *Case) bool {
					return !slices.ContainsFunc(cfg.Sinks, func(p string) bool { return matchSink(c.ID, p) })
				})
			}
			if len(g.Cases) > 0 {
				out = append(out, g)
			}
		}
	}
	if len(out) == 0 {
		return nil, errors.New("bench: the selection leaves nothing to run")
	}
	return out, nil
}

// matchSink reports whether id is p or within p ("mmaplog" matches
// "mmaplog/none").
func matchSink(id, p string) bool { return id == p || strings.HasPrefix(id, p+"/") }

func scenarioNames() string {
	var n []string
	for _, s := range scenarioRegistry {
		n = append(n, s.Name)
	}
	return strings.Join(n, ", ")
}

// caseIDs returns the registered sinks' IDs, then those of the other
// cases of the scenarios (the shipping rows): what -sinks selects from.
func caseIDs(quick bool) []string {
	var n []string
	for _, s := range sinkRegistry {
		n = append(n, s.ID)
	}
	for _, sc := range scenarioRegistry {
		for _, g := range sc.Groups(quick) {
			for _, c := range g.Cases {
				if !slices.Contains(n, c.ID) {
					n = append(n, c.ID)
				}
			}
		}
	}
	return n
}

func newResult(g *Group, c *Case) *Result {
	sink, _, _ := strings.Cut(c.ID, "/")
	r := &Result{
		Scenario: g.Scenario, Group: g.Title, ID: c.ID, Sink: sink, Name: c.Name, Policy: c.Policy,
		Size: g.Size, Goroutines: g.Goroutines, Segment: g.Segment, Encode: g.Encode,
	}
	if st, err := streamFor(g.Size); err == nil && !g.Encode {
		r.MeanSize = st.Mean
	}
	return r
}

// aggregate folds the samples: throughput is the median repetition (the
// spread is kept), latency histograms are merged, the rest is summed or
// the largest seen.
func (r *Result) aggregate() {
	r.Reps = len(r.samples)
	if r.Reps == 0 {
		return
	}
	rates := make([]float64, 0, r.Reps)
	var records, bytes, written int64
	var elapsed, cpu, peerCPU time.Duration
	var mallocs uint64
	var evCount, evBytes, wire int64
	r.hist = newHist()
	for _, s := range r.samples {
		rates = append(rates, float64(s.Records)/s.Elapsed.Seconds())
		r.Repetitions = append(r.Repetitions, Rep{RecordsPerS: rates[len(rates)-1], DirtyBytes: s.DirtyBytes,
			RotationWaits: s.RotationWaits, MaxRotationWaitNs: s.MaxRotationWait.Nanoseconds(), MaxPrepareNs: s.MaxPrepare.Nanoseconds()})
		records += s.Records
		bytes += s.Bytes
		written += s.Written
		elapsed += s.Elapsed
		cpu += s.CPU
		peerCPU += s.PeerCPU
		evCount += s.EventCount
		evBytes += s.EventBytes
		wire += s.WireBytes
		mallocs += s.Mallocs
		r.Dropped += s.Dropped
		r.Rotations += s.Rotations
		r.RotationWaits += s.RotationWaits
		r.MaxRotationWaitNs = max(r.MaxRotationWaitNs, s.MaxRotationWait.Nanoseconds())
		r.MaxPrepareNs = max(r.MaxPrepareNs, s.MaxPrepare.Nanoseconds())
		r.RSS = max(r.RSS, s.RSS)
		r.RSSDelta = max(r.RSSDelta, s.RSS-s.RSSOpen)
		if s.Hist != nil {
			r.hist.Merge(s.Hist)
		}
	}
	slices.Sort(rates)
	r.RecordsPerS = median(rates)
	r.RecordsMin, r.RecordsMax = rates[0], rates[len(rates)-1]
	r.Records, r.Bytes, r.Written = records, bytes, written
	if records > 0 {
		meanLen := float64(bytes) / float64(records)
		if r.MeanSize == 0 {
			r.MeanSize = meanLen
		}
		r.MBPerS = r.RecordsPerS * meanLen / 1e6
		r.NsPerOp = 1e9 / r.RecordsPerS
		r.AllocsPerOp = float64(mallocs) / float64(records)
		r.CPUNsPerOp = float64(cpu.Nanoseconds()) / float64(records)
		r.WriterCPUNsPerOp = float64(peerCPU.Nanoseconds()) / float64(records)
	}
	if evCount > 0 {
		r.EventBytes = float64(evBytes) / float64(evCount)
		r.WireBytes = float64(wire) / float64(evCount)
	}
	if n := r.hist.TotalCount(); n > 0 {
		r.LatRecords = n
		r.P50 = r.hist.ValueAtQuantile(50)
		r.P99 = r.hist.ValueAtQuantile(99)
		r.P999 = r.hist.ValueAtQuantile(99.9)
		r.Max = r.hist.Max()
	}
}

func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// computeRatios sets Vs on every row of group g: the row's figure divided
// by the baseline row's.
func computeRatios(all []*Result, g *Group) {
	var base *Result
	var rows []*Result
	for _, r := range all {
		if r.Group != g.Title || r.Scenario != g.Scenario {
			continue
		}
		rows = append(rows, r)
		if r.ID == g.Baseline {
			base = r
		}
	}
	if base == nil || base.Reps == 0 {
		return
	}
	for _, r := range rows {
		if r.Reps == 0 {
			continue
		}
		r.Vs = map[string]float64{}
		put := func(k string, v, b float64) {
			if b > 0 {
				r.Vs[k] = v / b
			}
		}
		put("records_per_s", r.RecordsPerS, base.RecordsPerS)
		put("mb_per_s", r.MBPerS, base.MBPerS)
		put("ns_per_op", r.NsPerOp, base.NsPerOp)
		put("cpu_ns_per_op", r.CPUNsPerOp, base.CPUNsPerOp)
		put("p50_ns", float64(r.P50), float64(base.P50))
		put("p99_ns", float64(r.P99), float64(base.P99))
		put("p999_ns", float64(r.P999), float64(base.P999))
		put("max_ns", float64(r.Max), float64(base.Max))
		put("rss_bytes", float64(r.RSS), float64(base.RSS))
	}
}
