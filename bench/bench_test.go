package main

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/mmaplog/mmaplog/internal/testutil"
)

func TestMain(m *testing.M) {
	if code, ok := followWriterMain(); ok {
		os.Exit(code) // the writer process of a follow case
	}
	quietDiode()
	testutil.VerifyTestMain(m,
		// lumberjack v2.2.1 starts a goroutine at the first rotation that
		// Close never stops (its millRun loops on a channel nobody closes).
		goleak.IgnoreTopFunction("gopkg.in/natefinch/lumberjack%2ev2.(*Logger).millRun"),
	)
}

// TestQuick runs the harness as -quick does and checks what it produced:
// every sink measured in every group with non-zero figures, mmaplog's
// Write path free of allocations, rotation happening with small segments,
// the JSON report complete, and the charts readable PNGs.
func TestQuick(t *testing.T) {
	cfg := DefaultConfig(true)
	cfg.Dir = t.TempDir()
	var progress bytes.Buffer
	cfg.Progress = &progress
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !strings.Contains(progress.String(), "rep 2/2") {
		t.Errorf("no progress line for the second repetition in %q", lastLine(progress.String()))
	}

	// Every registered sink appears in the sizes groups, with figures.
	seen := map[string]bool{}
	baselines := map[string]string{}
	for _, g := range rep.groups {
		baselines[g.Title] = g.Baseline
	}
	for _, r := range rep.Results {
		seen[r.ID] = true
		where := r.ID + " in " + r.Group
		if r.Err != "" || r.Reps != cfg.Reps {
			t.Errorf("%s: %d of %d repetitions, error %q", where, r.Reps, cfg.Reps, r.Err)
			continue
		}
		if r.RecordsPerS <= 0 || r.MBPerS <= 0 || r.NsPerOp <= 0 || r.CPUNsPerOp <= 0 || r.Records <= 0 || r.Bytes <= 0 {
			t.Errorf("%s: zero throughput figures: %+v", where, r)
		}
		if r.Scenario == "ship" {
			checkShipRow(t, where, r)
		} else if r.LatRecords <= 0 || r.P50 <= 0 || r.P50 > r.P99 || r.P99 > r.P999 || r.P999 > r.Max {
			t.Errorf("%s: latency percentiles p50 %d p99 %d p99.9 %d max %d over %d samples", where, r.P50, r.P99, r.P999, r.Max, r.LatRecords)
		}
		if r.RSS <= 0 {
			t.Errorf("%s: RSS %d", where, r.RSS)
		}
		if len(r.Repetitions) != cfg.Reps {
			t.Errorf("%s: %d repetitions' figures, want %d", where, len(r.Repetitions), cfg.Reps)
		}
		for i, rp := range r.Repetitions {
			if rp.RecordsPerS < r.RecordsMin || rp.RecordsPerS > r.RecordsMax || rp.DirtyBytes < 0 {
				t.Errorf("%s: repetition %d: %+v outside [%v, %v]", where, i, rp, r.RecordsMin, r.RecordsMax)
			}
		}
		baseline := baselines[r.Group]
		if baseline == "" {
			t.Errorf("%s: group %q not in the run's groups", where, r.Group)
		}
		if r.ID != baseline && (r.Vs == nil || r.Vs["records_per_s"] <= 0 || (r.Scenario != "ship" && r.Vs["p99_ns"] <= 0)) {
			t.Errorf("%s: no ratios against %s: %v", where, baseline, r.Vs)
		}
		if r.Scenario == "follow" {
			// Every record the writer process wrote was read (Dropped,
			// below), and the writer's CPU time came back from it.
			if r.WriterCPUNsPerOp <= 0 || r.Written <= r.Records {
				t.Errorf("%s: writer CPU %.0f ns/record, %d written (warm-up included), %d measured", where, r.WriterCPUNsPerOp, r.Written, r.Records)
			}
		}
		if r.ID == "diode" {
			if r.Dropped > uint64(r.Written) {
				t.Errorf("%s: dropped %d of %d", where, r.Dropped, r.Written)
			}
		} else if r.Dropped != 0 {
			t.Errorf("%s: %d records not delivered", where, r.Dropped)
		}
		if r.Sink == "mmaplog" {
			// Background work (retention at each rotation, the flusher,
			// the runtime) allocates a little per pass, whatever the
			// number of records; an allocation per Write would be one per
			// record. (The Write path alone is checked for exactly 0 below.)
			const background = 400
			if allocs := r.AllocsPerOp * float64(r.Records); allocs >= 0.25*float64(r.Records)+background && !(r.Encode && raceEnabled) {
				t.Errorf("%s: %.0f allocations over %d records (%.3f allocs/op)", where, allocs, r.Records, r.AllocsPerOp)
			}
			if r.Scenario == "rotation" && r.Policy != "write" && r.Rotations < 10 {
				t.Errorf("%s: %d rotations with 1 MiB segments", where, r.Rotations)
			}
		}
	}
	for _, id := range []string{"follow/20us", "follow/flat", "ship/beats", "ship/beats-zlib3", "ship/beats-host", "ship/kafka", "ship/es", "ship/otlp", "ship/logs-1", "ship/logs-100", "ship/logs-quiet", "ship/logs-quiet-paced"} {
		if !seen[id] {
			t.Errorf("shipping row %s was not measured", id)
		}
	}
	for _, s := range sinkRegistry {
		if !seen[s.ID] {
			t.Errorf("sink %s was not measured", s.ID)
		}
		if s.Policy != "" {
			a, ok := rep.WriteAllocs[s.ID]
			if !ok || a != 0 {
				t.Errorf("%s: Write path allocations %v (measured: %v), want 0", s.ID, a, ok)
			}
		}
	}

	var md bytes.Buffer
	rep.WriteMarkdown(&md)
	for _, want := range []string{"| **mmaplog (flush none)** |", "| lumberjack |", "| memory copy (limit) |", "#### Targets", "(0.", "x) |",
		"| **one every 20 µs** |", "| flat out |", "| **beats, uncompressed** |", "| beats, zlib 3 |", "| – | – | – | – |"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown report lacks %q", want)
		}
	}

	// The JSON report parses, and every row has every field of the issue.
	jpath := filepath.Join(t.TempDir(), "bench.json")
	if err := rep.WriteJSON(jpath); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(jpath)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Machine map[string]any   `json:"machine"`
		Results []map[string]any `json:"results"`
		Targets []map[string]any `json:"targets"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("JSON report does not parse: %v", err)
	}
	if runtime.GOOS == "linux" && !strings.Contains(rep.Machine.Writeback, "vm.dirty") {
		t.Errorf("machine: no dirty page limits in %q", rep.Machine.Writeback)
	}
	if len(doc.Results) != len(rep.Results) || len(doc.Targets) == 0 || doc.Machine["cores"] == nil {
		t.Fatalf("JSON report: %d results (want %d), %d targets, machine %v", len(doc.Results), len(rep.Results), len(doc.Targets), doc.Machine)
	}
	numeric := []string{"size", "goroutines", "records_per_s", "mb_per_s", "ns_per_op", "allocs_per_op",
		"p50_ns", "p99_ns", "p999_ns", "max_ns", "rss_bytes"}
	for i, r := range doc.Results {
		for _, k := range []string{"sink", "policy"} {
			if _, ok := r[k].(string); !ok {
				t.Errorf("JSON result %d: field %q missing or not a string", i, k)
			}
		}
		for _, k := range numeric {
			v, ok := r[k].(float64)
			noLatency := r["scenario"] == "ship" && (strings.HasPrefix(k, "p") || k == "max_ns")
			if !ok {
				t.Errorf("JSON result %d (%v): field %q missing or not a number", i, r["id"], k)
			} else if v <= 0 && k != "allocs_per_op" && !noLatency {
				t.Errorf("JSON result %d (%v): %s = %v", i, r["id"], k, v)
			}
		}
	}

	// The charts are PNG images of a readable size.
	files, err := rep.WritePlots(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 5 {
		t.Errorf("wrote %d charts, want 5: %v", len(files), files)
	}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(fh)
		fh.Close()
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if b := img.Bounds(); b.Dx() < 600 || b.Dy() < 300 {
			t.Errorf("%s: %dx%d pixels", f, b.Dx(), b.Dy())
		}
	}
}

// checkShipRow checks a shipping row: no latency (none is measured), every
// acknowledged event received (Dropped, checked by the caller), events
// larger than the records (the metadata is added), and the bytes on the
// wire: at least the events' JSON uncompressed, less with zlib.
func checkShipRow(t *testing.T, where string, r *Result) {
	t.Helper()
	if r.ID == "ship/logs-quiet" || r.ID == "ship/logs-quiet-paced" {
		// The quiet log's records' latency, one every millisecond.
		if r.LatRecords == 0 || r.P50 <= 0 || r.P50 > r.Max {
			t.Errorf("%s: quiet log latency over %d samples, p50 %d, max %d", where, r.LatRecords, r.P50, r.Max)
		}
	} else if r.LatRecords != 0 || r.P50 != 0 || r.Max != 0 {
		t.Errorf("%s: latency figures %d samples, p50 %d, max %d: the shipping rows measure none", where, r.LatRecords, r.P50, r.Max)
	}
	if r.EventBytes <= r.MeanSize || r.WireBytes <= 0 {
		t.Errorf("%s: events of %.0f bytes for records of %.0f, %.0f bytes each on the wire", where, r.EventBytes, r.MeanSize, r.WireBytes)
	}
	switch r.ID {
	case "ship/beats":
		// The bytes read and the events acknowledged during a pass are
		// counted at slightly different moments (a window in flight),
		// hence the tenth of slack.
		if r.WireBytes < 0.9*r.EventBytes {
			t.Errorf("%s: uncompressed, yet %.0f bytes per event on the wire for %.0f of JSON", where, r.WireBytes, r.EventBytes)
		}
	case "ship/beats-zlib3":
		if r.WireBytes >= r.EventBytes/2 {
			t.Errorf("%s: zlib 3, yet %.0f bytes per event on the wire for %.0f of JSON", where, r.WireBytes, r.EventBytes)
		}
	}
}

// The command's errors are one line with a non-zero status, and -list
// names every sink and scenario.
func TestCommandLine(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"-nosuchflag"}, &out, &errb); code != 2 {
		t.Errorf("unknown flag: exit %d, want 2", code)
	}
	errb.Reset()
	if code := run([]string{"-q", "-sinks", "nosuch"}, &out, &errb); code != 1 || strings.Count(strings.TrimSpace(errb.String()), "\n") != 0 || !strings.Contains(errb.String(), `no sink "nosuch"`) {
		t.Errorf("unknown sink: exit %d, stderr %q", code, errb.String())
	}
	out.Reset()
	if code := run([]string{"-list"}, &out, &errb); code != 0 {
		t.Fatalf("-list: exit %d", code)
	}
	for _, s := range sinkRegistry {
		if !strings.Contains(out.String(), s.ID) {
			t.Errorf("-list lacks sink %s", s.ID)
		}
	}
	for _, s := range scenarioRegistry {
		if !strings.Contains(out.String(), s.Name) {
			t.Errorf("-list lacks scenario %s", s.Name)
		}
	}
}

// Every stream has records of its nominal size (about it, for the JSON
// events), each ending in a newline, and is the same on every run.
func TestStreams(t *testing.T) {
	for _, n := range []int{SizeSmall, SizeJSON, SizeLarge} {
		s, err := NewStream(n)
		if err != nil {
			t.Fatal(err)
		}
		again, _ := NewStream(n)
		for i, r := range s.Records {
			if r[len(r)-1] != '\n' {
				t.Fatalf("%s record %d does not end in a newline", s.Name, i)
			}
			if n != SizeJSON && len(r) != n {
				t.Fatalf("%s record %d is %d bytes", s.Name, i, len(r))
			}
			if !bytes.Equal(r, again.Records[i]) {
				t.Fatalf("%s record %d differs between two generations", s.Name, i)
			}
		}
		if n == SizeJSON {
			if s.Mean < 170 || s.Mean > 230 {
				t.Errorf("zerolog events are %.0f bytes on average, want about 200", s.Mean)
			}
			var ev map[string]any
			if err := json.Unmarshal(s.Records[0], &ev); err != nil || ev["level"] == nil || ev["message"] == nil {
				t.Errorf("not a zerolog event: %s (%v)", s.Records[0], err)
			}
		}
	}
	if _, err := NewStream(100); err == nil {
		t.Error("a stream of an unknown size was made")
	}
}

func lastLine(s string) string {
	if i := strings.LastIndex(s, "\r"); i >= 0 {
		return s[i:]
	}
	return s
}
