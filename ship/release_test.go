package ship_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mmaplog/mmaplog/internal/testutil"
	"github.com/mmaplog/mmaplog/mmaplog"
	"github.com/mmaplog/mmaplog/ship"
	"github.com/mmaplog/mmaplog/tail"
)

// openFDs is the number of files this process has open.
func openFDs(t *testing.T) int {
	t.Helper()
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

// writeSmallLog writes n records into a new log in dir, with small
// segments.
func writeSmallLog(t *testing.T, dir string, n int) {
	t.Helper()
	w, err := mmaplog.Open(dir, &mmaplog.Options{SegmentSize: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for i := 0; i < n; i++ {
		if _, err := fmt.Fprintf(w, `{"i":%d,"message":"record %d of %s"}`, i, i, filepath.Base(dir)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRemovedLogsLetGo: logs created under a pattern, shipped, then their
// directories removed, round after round: each is let go once what was
// read is acknowledged, and the shipper's open files, goroutines and
// mappings of the logs come back to what they were before (they once grew
// by two files and two goroutines per removed log, each pinning its
// deleted segment). With the cursors under the log directories, the
// directories are not made again by a cursor save; with a cursor
// directory, the cursors of the removed logs are removed, and a new log
// made at a removed one's path is shipped from its first record.
func TestRemovedLogsLetGo(t *testing.T) {
	for _, cursorDir := range []bool{false, true} {
		t.Run(map[bool]string{false: "cursors in the logs", true: "cursor directory"}[cursorDir], func(t *testing.T) {
			root := t.TempDir()
			apps := filepath.Join(root, "apps")
			keep := filepath.Join(root, "keep", "log")
			writeSmallLog(t, keep, 10)
			out := filepath.Join(root, "events.ndjson")
			cfg := ship.Config{Logs: []string{keep, filepath.Join(apps, "*")}, Output: openOutput(t, "file://"+out),
				CursorName: "c", ScanInterval: 10 * time.Millisecond, SaveInterval: time.Millisecond}
			cdir := filepath.Join(root, "cursors")
			if cursorDir {
				cfg.CursorDir = cdir
			}
			r := runShipper(t, cfg)
			waitFor(t, "the log that stays", hangLimit, func() bool { return r.s.Stats().Acked == 10 })
			// The baseline: the shipper running, its output connected,
			// one log followed.
			fds0, gs0 := openFDs(t), runtime.NumGoroutine()
			const rounds, logs, per = 3, 40, 50
			acked := uint64(10)
			for round := 0; round < rounds; round++ {
				var dirs []string
				for i := 0; i < logs; i++ {
					d := filepath.Join(apps, fmt.Sprintf("r%d-app%02d", round, i))
					writeSmallLog(t, d, per)
					dirs = append(dirs, d)
				}
				acked += logs * per
				waitFor(t, "the new logs shipped", hangLimit, func() bool { return r.s.Stats().Acked == acked })
				if n := r.s.Stats().Logs; n != logs+1 {
					t.Fatalf("round %d: %d logs followed, want %d", round, n, logs+1)
				}
				for _, d := range dirs {
					if err := os.RemoveAll(d); err != nil {
						t.Fatal(err)
					}
				}
				waitFor(t, "the removed logs let go", hangLimit, func() bool { return r.s.Stats().Released == (round+1)*logs })
				waitFor(t, "open files back to the baseline", hangLimit, func() bool { return openFDs(t) <= fds0 })
				waitFor(t, "goroutines back to the baseline", hangLimit, func() bool { return runtime.NumGoroutine() <= gs0 })
				if m := testutil.MappingsUnder(t, apps); len(m) != 0 {
					t.Fatalf("round %d: %d mappings of removed logs left, such as %s", round, len(m), m[0])
				}
				for _, d := range dirs {
					if _, err := os.Stat(d); !os.IsNotExist(err) {
						t.Fatalf("%s is there again after its removal: %v", d, err)
					}
				}
				if st := r.s.Stats(); st.Logs != 1 || st.Acked != acked || st.Failed != 0 {
					t.Fatalf("round %d: stats %+v", round, st)
				}
			}
			if cursorDir {
				// Only the kept log's cursor (and its lock) remains.
				var left []string
				filepath.Walk(cdir, func(p string, fi os.FileInfo, err error) error {
					if err == nil && !fi.IsDir() && !strings.Contains(p, ".lock") {
						left = append(left, p)
					}
					return nil
				})
				if len(left) != 1 {
					t.Fatalf("cursors left under %s: %q; want the kept log's alone", cdir, left)
				}
				// A new log where a removed one was ships from its first
				// record, not refused for the old log's cursor.
				again := filepath.Join(apps, "r0-app00")
				writeSmallLog(t, again, 7)
				waitFor(t, "the new log at an old path", hangLimit, func() bool { return r.s.Stats().Acked == acked+7 })
				acked += 7
			}
			if err := r.finish(t); err != nil {
				t.Fatal(err)
			}
			if !r.logs.has("removed: shipped up to record 50") {
				t.Errorf("no message about the removed logs: %q", r.logs.lines[:min(5, len(r.logs.lines))])
			}
			got := shipped(t, out)
			if c, err := tail.LoadCursor(keepCursor(cfg, keep)); err != nil || c.NextSeq != 11 {
				t.Fatalf("the kept log's cursor: %+v, %v", c, err)
			}
			if want := len(got); want != rounds*logs+1 {
				t.Fatalf("events of %d logs, want %d", want, rounds*logs+1)
			}
		})
	}
}

func keepCursor(cfg ship.Config, dir string) string {
	if cfg.CursorDir != "" {
		return filepath.Join(cfg.CursorDir, cfg.CursorName, ship.CursorFileName(dir))
	}
	return tail.CursorPath(dir, cfg.CursorName)
}

// TestSetInputs: inputs added while the shipper runs start; a removed
// input's log stops with its cursor saved after its last acknowledged
// record, and goes on from there when the input comes back; a log whose
// input's fields changed starts again with them, neither losing nor
// repeating a record.
func TestSetInputs(t *testing.T) {
	root := t.TempDir()
	a, b := filepath.Join(root, "a"), filepath.Join(root, "b")
	writeSmallLog(t, a, 10)
	writeSmallLog(t, b, 20)
	out := filepath.Join(root, "events.ndjson")
	inA := ship.Input{Logs: []string{a}, Fields: map[string]string{"app": "a"}}
	inB := ship.Input{Logs: []string{filepath.Join(root, "[b]")}, Fields: map[string]string{"app": "b"}}
	r := runShipper(t, ship.Config{Inputs: []ship.Input{inA}, Output: openOutput(t, "file://"+out), CursorName: "c"})
	waitFor(t, "a shipped", hangLimit, func() bool { return r.s.Stats().Acked == 10 })
	if err := r.s.SetInputs([]ship.Input{inA, inB}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b shipped", hangLimit, func() bool { return r.s.Stats().Acked == 30 })
	// a's input goes: a stops, its cursor saved past its 10 records.
	if err := r.s.SetInputs([]ship.Input{inB}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a let go", hangLimit, func() bool { return r.s.Stats().Released == 1 })
	if c, err := tail.LoadCursor(tail.CursorPath(a, "c")); err != nil || c.NextSeq != 11 {
		t.Fatalf("a's cursor %+v, %v: want it saved at 11", c, err)
	}
	writeSmallLog(t, a, 5) // not shipped while a's input is away
	inB.Fields = map[string]string{"app": "b2"}
	if err := r.s.SetInputs([]ship.Input{inB, inA}); err != nil {
		t.Fatal(err)
	}
	// Written once the old b let go: records it read before would carry
	// the old fields.
	waitFor(t, "b stopped for the change", hangLimit, func() bool { return r.logs.has(b + ": its input changed") })
	writeSmallLog(t, b, 3)
	waitFor(t, "a's new records and b's", hangLimit, func() bool { return r.s.Stats().Acked == 38 })
	if err := r.s.SetInputs([]ship.Input{{Logs: []string{"["}}}); err == nil {
		t.Fatal("a bad pattern was taken")
	}
	if err := r.finish(t); err != nil {
		t.Fatal(err)
	}
	got := shipped(t, out)
	if len(got[a]) != 15 || len(got[b]) != 23 {
		t.Fatalf("distinct records: a %d, b %d; want 15, 23", len(got[a]), len(got[b]))
	}
	for _, m := range got {
		for seq, n := range m {
			if n != 1 {
				t.Fatalf("record %d shipped %d times", seq, n)
			}
		}
	}
	// b's records after the change carry the new field.
	apps := map[string]int{}
	for _, ev := range readLines(t, out) {
		var e struct {
			App string
			Log struct{ Offset uint64 }
		}
		json.Unmarshal(ev, &e)
		apps[e.App]++
	}
	if apps["a"] != 15 || apps["b"] != 20 || apps["b2"] != 3 {
		t.Fatalf("events by app: %v; want a 15, b 20, b2 3", apps)
	}
	for _, want := range []string{a + ": no input names it any more: stopped at record 10", b + ": its input changed"} {
		if !r.logs.has(want) {
			t.Errorf("no message %q in %q", want, r.logs.lines)
		}
	}
}
