package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"
)

// WriteMarkdown writes the report as markdown: how it was measured, one
// table per group with ratios against mmaplog beside each figure, and the
// targets of the issue checked against the figures.
func (rep *Report) WriteMarkdown(w io.Writer) {
	m, s := rep.Machine, rep.Settings
	fmt.Fprintf(w, "Machine: %s, %d cores (GOMAXPROCS %d), %s RAM, %s, %s on %s, %s", m.CPU, m.Cores, m.GOMAXPROCS, bytesHuman(m.MemBytes), m.Kernel, m.Filesystem, m.Dir, m.Go)
	if m.Writeback != "" {
		fmt.Fprintf(w, ", %s", m.Writeback)
	}
	fmt.Fprintf(w, "; load average at start %s", m.LoadAvg)
	if m.LoadAvgEnd != "" {
		fmt.Fprintf(w, ", at the end %s", m.LoadAvgEnd)
	}
	fmt.Fprint(w, " (1, 5, 15 min).\n\n")
	mode := "full"
	if s.Quick {
		mode = "quick (smoke test: short passes, figures are rough)"
	}
	fmt.Fprintf(w, "Run: %s mode, %d repetitions, %.2g s per pass, took %v. ", mode, s.Reps, s.PassSeconds, time.Duration(s.TookSeconds*float64(time.Second)).Round(time.Second))
	fmt.Fprintf(w, "records/s is the median repetition; `(0.5x)` beside a figure is that figure divided by the bold row's in the same table "+
		"(mmaplog (flush none) in the Write tables). "+
		"Latency: every Write timed with runtime.nanotime in a separate pass (each sample includes about %d ns of clock reading, the median difference of two back-to-back reads here). "+
		"allocs/op and CPU ns/op count the whole process during the throughput pass. RSS: growth of the resident set while the sink was open. mmaplog (but for msync each) is measured in the steady state: the default retention bound (10 segments) is written untimed first, so that rotations reuse the files retention removes; its rotations, rotation waits and preparation times in the notes are those of the measured passes.\n\n", s.ClockNs)

	for _, g := range rep.groups {
		fmt.Fprintf(w, "#### %s\n\n", g.Title)
		if g.Note != "" {
			fmt.Fprintf(w, "%s\n\n", g.Note)
		}
		fmt.Fprintln(w, "| sink | records/s | MB/s | ns/op | allocs/op | CPU ns/op | p50 | p99 | p99.9 | max | RSS | notes |")
		fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|")
		for _, r := range rep.Results {
			if r.Group != g.Title || r.Scenario != g.Scenario {
				continue
			}
			name := r.Name
			if r.ID == g.Baseline {
				name = "**" + name + "**"
			}
			if r.Reps == 0 {
				fmt.Fprintf(w, "| %s | | | | | | | | | | | failed: %s |\n", name, oneLine(r.Err))
				continue
			}
			base := r.ID == g.Baseline
			vs := func(k string, text string) string {
				if base || r.Vs == nil || r.Vs[k] == 0 {
					return text
				}
				return text + " (" + ratio(r.Vs[k]) + ")"
			}
			lat := func(k string, ns int64) string {
				if r.LatRecords == 0 {
					return "–" // not measured in this group
				}
				return vs(k, durHuman(ns))
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", name,
				vs("records_per_s", countHuman(r.RecordsPerS)),
				vs("mb_per_s", mbHuman(r.MBPerS)),
				vs("ns_per_op", fmt.Sprintf("%.0f", r.NsPerOp)),
				allocsHuman(r.AllocsPerOp),
				vs("cpu_ns_per_op", fmt.Sprintf("%.0f", r.CPUNsPerOp)),
				lat("p50_ns", r.P50), lat("p99_ns", r.P99),
				lat("p999_ns", r.P999), lat("max_ns", r.Max),
				"+"+bytesHuman(max(r.RSSDelta, 0)), r.notes())
		}
		fmt.Fprintln(w)
	}
	rep.writeTargets(w)
}

// notes are the remarks of a row: drops, rotations, errors, spread.
func (r *Result) notes() string {
	var n []string
	if r.Dropped > 0 {
		n = append(n, fmt.Sprintf("dropped %s of %s (%.1f%%)", countHuman(float64(r.Dropped)), countHuman(float64(r.Written)), 100*float64(r.Dropped)/float64(r.Written)))
	}
	if r.Rotations > 0 {
		n = append(n, fmt.Sprintf("%d rotations", r.Rotations))
	}
	if r.WriterCPUNsPerOp > 0 {
		n = append(n, fmt.Sprintf("writer process CPU %.0f ns/record", r.WriterCPUNsPerOp))
	}
	if r.EventBytes > 0 {
		n = append(n, fmt.Sprintf("events of %.0f B of JSON, %.0f B each on the wire", r.EventBytes, r.WireBytes))
	}
	if r.RotationWaits > 0 {
		w := fmt.Sprintf("%d waited for the next segment, up to %s", r.RotationWaits, durHuman(r.MaxRotationWaitNs))
		if r.MaxPrepareNs > 0 {
			w += fmt.Sprintf(" (preparing one took up to %s)", durHuman(r.MaxPrepareNs))
		}
		n = append(n, w)
	}
	if r.RecordsPerS > 0 && r.Reps > 1 {
		spread := (r.RecordsMax - r.RecordsMin) / r.RecordsPerS
		if spread > 0.25 {
			s := fmt.Sprintf("spread %.0f%%: %s to %s records/s", 100*spread, countHuman(r.RecordsMin), countHuman(r.RecordsMax))
			if lo, hi := r.dirtyRange(); hi > 0 {
				s += fmt.Sprintf(", dirty pages %s to %s", bytesHuman(lo), bytesHuman(hi))
			}
			n = append(n, s)
		}
	}
	if r.Err != "" {
		n = append(n, "error: "+oneLine(r.Err))
	}
	return strings.Join(n, "; ")
}

// dirtyRange returns the least and the most page cache waiting for the
// disk at the end of a repetition's throughput pass.
func (r *Result) dirtyRange() (lo, hi int64) {
	for i, rp := range r.Repetitions {
		if i == 0 || rp.DirtyBytes < lo {
			lo = rp.DirtyBytes
		}
		hi = max(hi, rp.DirtyBytes)
	}
	return lo, hi
}

// A Goal is one of the targets of the issue, checked against a run.
type Goal struct {
	Goal     string `json:"goal"`
	Measured string `json:"measured"`
	Met      bool   `json:"met"`
	Known    bool   `json:"known"` // false: the rows it needs were not run
}

// Targets checks the goals of the issue against the results.
func (rep *Report) Targets() []Goal {
	find := func(scenario, id string, size, g int) *Result {
		for _, r := range rep.Results {
			if r.Scenario == scenario && r.ID == id && r.Size == size && r.Goroutines == g && r.Reps > 0 {
				return r
			}
		}
		return nil
	}
	var ts []Goal
	ratioGoal := func(goal, other string, min float64) {
		b, o := find("sizes", BaselineSink, SizeJSON, 1), find("sizes", other, SizeJSON, 1)
		t := Goal{Goal: goal}
		if b != nil && o != nil {
			x := b.RecordsPerS / o.RecordsPerS
			t.Known, t.Met = true, x >= min
			t.Measured = fmt.Sprintf("%s vs %s records/s: %s", countHuman(b.RecordsPerS), countHuman(o.RecordsPerS), ratio(x))
		}
		ts = append(ts, t)
	}
	ratioGoal("200 B, 1 goroutine: mmaplog (none) >= 10x os.File.Write", "osfile", 10)
	ratioGoal("200 B, 1 goroutine: mmaplog (none) >= 1.0x bufio.Writer", "bufio", 1)
	ratioGoal("200 B, 1 goroutine: mmaplog (none) >= 0.3x memory copy", "memcopy", 0.3)

	t := Goal{Goal: "p99.9 Write latency <= 2 us with rotation happening (1 MiB segments, 1 goroutine)"}
	if r := find("rotation", BaselineSink, SizeJSON, 1); r != nil {
		t.Known, t.Met = true, r.P999 <= 2000
		t.Measured = fmt.Sprintf("p99.9 %s over %d rotations", durHuman(r.P999), r.Rotations)
	}
	ts = append(ts, t)
	t = Goal{Goal: "max Write latency far below lumberjack's rotation pause (1 MiB segments, 1 goroutine)"}
	if r, l := find("rotation", BaselineSink, SizeJSON, 1), find("rotation", "lumberjack", SizeJSON, 1); r != nil && l != nil {
		t.Known, t.Met = true, r.Max*10 <= l.Max
		t.Measured = fmt.Sprintf("mmaplog max %s, lumberjack max %s (%s)", durHuman(r.Max), durHuman(l.Max), ratio(float64(r.Max)/float64(l.Max)))
	}
	ts = append(ts, t)
	t = Goal{Goal: "0 allocs/op for mmaplog in every configuration"}
	worstW, whereW := -1.0, ""
	for id, a := range rep.WriteAllocs {
		if a > worstW {
			worstW, whereW = a, id
		}
	}
	worst, where := -1.0, ""
	for _, r := range rep.Results {
		if r.Sink == "mmaplog" && r.Reps > 0 && r.AllocsPerOp > worst {
			worst, where = r.AllocsPerOp, r.ID+", "+r.Group
		}
	}
	if worstW >= 0 {
		t.Known, t.Met = true, worstW == 0
		if worstW == 0 {
			t.Measured = fmt.Sprintf("Write path: 0 allocs/op under all %d policies measured (no rotation, Mallocs counted around the Writes)", len(rep.WriteAllocs))
		} else {
			t.Measured = fmt.Sprintf("Write path: %s allocs/op (%s; no rotation, Mallocs counted around the Writes)", allocsHuman(worstW), whereW)
		}
		if worst > 0 {
			t.Measured += fmt.Sprintf("; with background work at rotations: up to %s allocs/op (%s)", allocsHuman(worst), where)
		}
	}
	ts = append(ts, t)
	return ts
}

func (rep *Report) writeTargets(w io.Writer) {
	fmt.Fprintln(w, "#### Targets")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| goal | measured | met |")
	fmt.Fprintln(w, "|---|---|---|")
	for _, t := range rep.Targets() {
		met := "not run"
		if t.Known {
			met = map[bool]string{true: "yes", false: "**no**"}[t.Met]
		}
		fmt.Fprintf(w, "| %s | %s | %s |\n", t.Goal, t.Measured, met)
	}
	fmt.Fprintln(w)
}

// WriteJSON writes the report with every figure to path.
func (rep *Report) WriteJSON(path string) error {
	out := struct {
		*Report
		Targets []Goal `json:"targets"`
	}{rep, rep.Targets()}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("bench: writing the JSON report: %w", err)
	}
	return nil
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }

// ratio formats x with two significant digits: 0.083x, 1.2x, 12x.
func ratio(x float64) string {
	switch {
	case x >= 10:
		return fmt.Sprintf("%.0fx", x)
	case x >= 1:
		return fmt.Sprintf("%.1fx", x)
	case x == 0:
		return "0x"
	}
	return fmt.Sprintf("%.2gx", x)
}

func countHuman(v float64) string {
	switch {
	case v >= 1e9:
		return fmt.Sprintf("%.2fG", v/1e9)
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.0fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

func mbHuman(v float64) string {
	if v >= 10 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2g", v)
}

func allocsHuman(v float64) string {
	if v == 0 {
		return "0"
	}
	if v < 0.005 {
		return fmt.Sprintf("%.4f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

func durHuman(ns int64) string {
	d := float64(ns)
	switch {
	case d >= 1e9:
		return fmt.Sprintf("%.2f s", d/1e9)
	case d >= 1e6:
		return fmt.Sprintf("%.3g ms", d/1e6)
	case d >= 1e3:
		return fmt.Sprintf("%.3g µs", d/1e3)
	}
	return fmt.Sprintf("%.0f ns", d)
}

func bytesHuman(n int64) string {
	v := float64(n)
	switch {
	case v >= 1<<30:
		return fmt.Sprintf("%.1f GiB", v/(1<<30))
	case v >= 1<<20:
		return fmt.Sprintf("%.0f MiB", math.Round(v/(1<<20)))
	case v >= 1<<10:
		return fmt.Sprintf("%.0f KiB", v/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// LoadReport reads a report written by WriteJSON, so that its tables and
// charts can be made again (-from) without running the cases again.
func LoadReport(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	rep := &Report{}
	if err := json.Unmarshal(b, rep); err != nil {
		return nil, fmt.Errorf("bench: %s is not a report written by -json: %w", path, err)
	}
	if len(rep.Results) == 0 {
		return nil, fmt.Errorf("bench: %s holds no results", path)
	}
	seen := map[[2]string]bool{}
	for _, r := range rep.Results {
		k := [2]string{r.Scenario, r.Group}
		if !seen[k] {
			seen[k] = true
			g := &Group{Scenario: r.Scenario, Title: r.Group, Size: r.Size,
				Goroutines: r.Goroutines, Segment: r.Segment, Encode: r.Encode, Baseline: rep.Settings.Baseline}
			if n, ok := rep.GroupNotes[r.Group]; ok {
				g.Note, g.Baseline = n.Note, n.Baseline
			}
			rep.groups = append(rep.groups, g)
		}
	}
	return rep, nil
}
