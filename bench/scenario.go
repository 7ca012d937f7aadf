package main

import (
	"fmt"
	"time"
)

// A Scenario is a named set of groups: rows that belong in one table, with
// ratios against the baseline row of that table. The write-path scenarios
// below are built from the sink registry; a scenario that measures
// something else (shipping throughput, writer-to-reader latency across
// processes) registers groups whose cases have their own Run and fill the
// same Sample, so they get the same table, JSON fields and charts.
type Scenario struct {
	Name  string // used by -scenarios and in the JSON
	Title string // the heading of its tables
	// Groups returns the scenario's groups for a run: quick reports a
	// -quick run (fewer groups, smaller figures, same code).
	Groups func(quick bool) []*Group
}

// A Group is one table: cases measured under the same conditions, run one
// after the other in alternating order on each repetition.
type Group struct {
	Scenario   string
	Title      string
	Size       int    // nominal record size: SizeSmall, SizeJSON or SizeLarge
	Goroutines int    // writing goroutines
	Segment    int64  // segment size of the rotating sinks, in bytes
	Encode     bool   // records are encoded by zerolog inside the timed loop
	Baseline   string // the ID of the case whose figures the ratios divide by
	// Note says what the rows of a group measure where that is not the
	// Write path (printed under its table heading).
	Note  string
	Cases []*Case
}

// A Case is one row: a sink (or another measured thing) in a group.
type Case struct {
	ID     string // the sink ID, or the custom case's
	Name   string
	Policy string
	// Run measures one repetition of the case in env.Dir.
	Run func(env *Env) (*Sample, error)
}

// Env is what a case is given to run one repetition.
type Env struct {
	Dir      string        // a fresh directory, removed after the case
	Duration time.Duration // how long each measured pass runs
	Warmup   time.Duration // how long to write before measuring
	// Quick is set for -quick (and the harness's tests): a pass that the
	// test checks for what it did (rotations, events acknowledged) lasts
	// until it has done that much, however slow the machine, as well as
	// Duration.
	Quick bool
}

// passLimit bounds a pass that waits for a count (Env.Quick): it only
// catches a hang, since a busy machine may take many times Duration.
const passLimit = 3 * time.Minute

var scenarioRegistry []*Scenario

// registerScenario adds a scenario; its tables follow those registered
// before it.
func registerScenario(s *Scenario) {
	for _, o := range scenarioRegistry {
		if o.Name == s.Name {
			panic("bench: scenario " + s.Name + " registered twice")
		}
	}
	scenarioRegistry = append(scenarioRegistry, s)
}

// Segment sizes: the mmaplog default, and a small one with which rotation
// happens thousands of times in a run (lumberjack's smallest MaxSize).
const (
	SegmentDefault = 64 << 20
	SegmentSmall   = 1 << 20
)

func init() {
	registerScenario(&Scenario{
		Name:  "sizes",
		Title: "Record sizes, one goroutine",
		Groups: func(quick bool) []*Group {
			var gs []*Group
			for _, size := range []int{SizeJSON, SizeSmall, SizeLarge} {
				gs = append(gs, writeGroup("sizes", size, 1, SegmentDefault, false, allSinks))
			}
			return gs
		},
	})
	registerScenario(&Scenario{
		Name:  "goroutines",
		Title: "Writing goroutines",
		Groups: func(quick bool) []*Group {
			counts := []int{2, 4, 8}
			if quick {
				counts = []int{4}
			}
			var gs []*Group
			for _, g := range counts {
				gs = append(gs, writeGroup("goroutines", SizeJSON, g, SegmentDefault, false, allSinks))
			}
			return gs
		},
	})
	registerScenario(&Scenario{
		Name:  "rotation",
		Title: "Small segments: rotation thousands of times",
		Groups: func(quick bool) []*Group {
			counts := []int{1, 4}
			if quick {
				counts = []int{1}
			}
			var gs []*Group
			for _, g := range counts {
				gs = append(gs, writeGroup("rotation", SizeJSON, g, SegmentSmall, false, rotatingSinks))
			}
			return gs
		},
	})
	registerScenario(&Scenario{
		Name:  "zerolog",
		Title: "zerolog encoding included",
		Groups: func(quick bool) []*Group {
			return []*Group{writeGroup("zerolog", SizeJSON, 1, SegmentDefault, true, func(s *Sink) bool {
				switch s.ID {
				case "mmaplog/none", "mmaplog/exact-clock", "osfile", "bufio", "diode", "lumberjack", "phuslu", "memcopy", "discard":
					return true
				}
				return false
			})}
		},
	})
	// The shipping rows (follow.go, ship.go), after the Write path's.
	registerScenario(&Scenario{
		Name:   "follow",
		Title:  "Writer to reader latency across processes",
		Groups: func(quick bool) []*Group { return []*Group{followGroup(quick)} },
	})
	registerScenario(&Scenario{
		Name:   "ship",
		Title:  "Shipping throughput to a Beats server",
		Groups: func(quick bool) []*Group { return []*Group{shipGroup(quick), shipLogsGroup(quick)} },
	})
}

func allSinks(s *Sink) bool      { return !s.EncodeOnly }
func rotatingSinks(s *Sink) bool { return s.Rotates }

// writeGroup builds a group of write-path cases: the record stream of the
// given size written by g goroutines into every registered sink that keep
// accepts.
func writeGroup(scenario string, size, g int, segment int64, encode bool, keep func(*Sink) bool) *Group {
	gr := &Group{Scenario: scenario, Size: size, Goroutines: g, Segment: segment, Encode: encode, Baseline: BaselineSink}
	gr.Title = fmt.Sprintf("%s records, %d goroutine%s, %s segments", sizeName(size), g, plural(g), bytesName(segment))
	if encode {
		gr.Title = fmt.Sprintf("zerolog events encoded in the loop (~%d B), %d goroutine%s", size, g, plural(g))
	}
	for _, s := range sinkRegistry {
		if keep(s) {
			gr.Cases = append(gr.Cases, &Case{ID: s.ID, Name: s.Name, Policy: s.Policy, Run: writeCase(s, gr)})
		}
	}
	return gr
}

func sizeName(n int) string {
	switch n {
	case SizeJSON:
		return "~200 B zerolog JSON"
	case SizeLarge:
		return "4 KiB"
	}
	return fmt.Sprintf("%d B", n)
}

func bytesName(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
