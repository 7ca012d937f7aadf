package ship_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	lumber "github.com/elastic/go-lumber/server/v2"

	"github.com/mmaplog/mmaplog/mmaplog"
	"github.com/mmaplog/mmaplog/output"
	"github.com/mmaplog/mmaplog/ship"
	"github.com/mmaplog/mmaplog/tail"
)

// largeRecords writes small records around large ones (sizes in bytes of
// message): the record after a large one is where a shipper that reuses
// its encoding buffer carelessly goes wrong.
func largeRecords(t *testing.T, dir string, sizes []int) []string {
	t.Helper()
	w, err := mmaplog.Open(dir, &mmaplog.Options{SegmentSize: 64 << 20, MaxRecordSize: 16 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var msgs []string
	for i, n := range sizes {
		msg := fmt.Sprintf("record %d ", i+1) + strings.Repeat(string(rune('a'+i%26)), n)
		rec := []byte(msg) // plain text, shipped as {"message": ...}
		if i%2 == 1 {
			rec = fmt.Appendf(nil, `{"message":%q}`, msg)
		}
		if _, err := w.Append(mmaplog.LevelInfo, rec); err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, msg)
	}
	return msgs
}

// largeSizes: in turn plain text and JSON records, small ones after a
// plain 3.5 MiB one, a JSON 4.5 MiB one and a JSON 9 MiB one (more than
// the shipper's whole default buffer).
var largeSizes = []int{10, 20, 3500 << 10, 30, 40, 4500 << 10, 50, 9 << 20, 60, 70}

// checkMessages checks that events (JSON) carry msgs, one each, in order.
func checkMessages(t *testing.T, events [][]byte, msgs []string) {
	t.Helper()
	if len(events) != len(msgs) {
		t.Fatalf("%d events, want %d", len(events), len(msgs))
	}
	for i, ev := range events {
		var e struct {
			Message string
			Log     struct{ Offset uint64 }
		}
		if err := json.Unmarshal(ev, &e); err != nil {
			t.Fatalf("event %d (%d bytes, starting %.40q) is not JSON: %v", i+1, len(ev), ev, err)
		}
		if e.Message != msgs[i] || e.Log.Offset != uint64(i+1) {
			t.Fatalf("event %d: log.offset %d, message of %d bytes starting %.20q; want offset %d, %d bytes starting %.20q",
				i+1, e.Log.Offset, len(e.Message), e.Message, i+1, len(msgs[i]), msgs[i])
		}
	}
}

// TestLargeEventFile: every event after a large one is shipped whole to a
// file (not an empty line counted as delivered).
func TestLargeEventFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	msgs := largeRecords(t, dir, largeSizes)
	out := filepath.Join(t.TempDir(), "events.ndjson")
	r := runShipper(t, ship.Config{Dir: dir, Output: openOutput(t, "file://"+out), CursorName: "c"})
	waitFor(t, "every event", hangLimit, func() bool { return r.s.Stats().Acked == uint64(len(msgs)) })
	if err := r.finish(t); err != nil {
		t.Fatal(err)
	}
	checkMessages(t, readLines(t, out), msgs)
}

// TestLargeEventStdout: the same through the stdout output.
func TestLargeEventStdout(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	msgs := largeRecords(t, dir, largeSizes)
	var buf lockedBuffer
	out, err := output.Open("stdout", &output.Options{Window: ship.OutputWindow, Stdout: &buf})
	if err != nil {
		t.Fatal(err)
	}
	r := runShipper(t, ship.Config{Dir: dir, Output: out})
	waitFor(t, "every event", hangLimit, func() bool { return r.s.Stats().Acked == uint64(len(msgs)) })
	if err := r.finish(t); err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSuffix(buf.bytes(), []byte("\n")), []byte("\n"))
	checkMessages(t, lines, msgs)
}

// TestLargeEventBeats: the same to go-lumber's server decoding every event
// (as Logstash does): no window is refused, so none is sent again.
func TestLargeEventBeats(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	msgs := largeRecords(t, dir, largeSizes)
	addr := freeAddr(t)
	srv, err := lumber.ListenAndServe(addr, lumber.JSONDecoder(func(data []byte, v any) error {
		// Keep the raw event: the check decodes it again, with a
		// message that says which one failed.
		if !json.Valid(data) {
			return fmt.Errorf("not JSON: %.40q (%d bytes)", data, len(data))
		}
		*(v.(*any)) = append([]byte(nil), data...)
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	var mu sync.Mutex
	var got [][]byte
	go func() {
		for b := range srv.ReceiveChan() {
			mu.Lock()
			for _, ev := range b.Events {
				got = append(got, ev.([]byte))
			}
			mu.Unlock()
			b.ACK()
		}
	}()
	out := openOutput(t, "beats://"+addr)
	r := runShipper(t, ship.Config{Dir: dir, Output: out, CursorName: "c"})
	waitFor(t, "every event, or a refused window", hangLimit, func() bool {
		return r.s.Stats().Acked == uint64(len(msgs)) || out.Stats().Errors > 0
	})
	if st := out.Stats(); st.Errors > 0 {
		t.Fatalf("the receiver refused a window (it would be sent again forever): %s", st.LastError)
	}
	if err := r.finish(t); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	checkMessages(t, got, msgs)
}

func readLines(t *testing.T, path string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<20), 64<<20)
	for sc.Scan() {
		out = append(out, append([]byte(nil), sc.Bytes()...))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// lockedBuffer is an io.Writer safe for the output's goroutine and the
// test's.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]byte(nil), l.b.Bytes()...)
}

// TestPoisonRecordShipped: a record repeating a member the metadata has
// 2,000 times is shipped, with every value kept, and so are the records
// after it.
func TestPoisonRecordShipped(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	w, err := mmaplog.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	poison := "{" + strings.TrimSuffix(strings.Repeat(`"host":"x",`, 2000), ",") + "}"
	for _, p := range []string{`{"message":"before"}`, poison, `{"message":"after"}`} {
		if _, err := w.Append(mmaplog.LevelInfo, []byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	out := filepath.Join(t.TempDir(), "events.ndjson")
	r := runShipper(t, ship.Config{Dir: dir, Output: openOutput(t, "file://"+out), CursorName: "c"})
	waitFor(t, "every event", hangLimit, func() bool { return r.s.Stats().Acked == 3 })
	if err := r.finish(t); err != nil {
		t.Fatal(err)
	}
	lines := readLines(t, out)
	if len(lines) != 3 {
		t.Fatalf("%d events", len(lines))
	}
	var ev struct{ Labels map[string]string }
	if err := json.Unmarshal(lines[1], &ev); err != nil {
		t.Fatal(err)
	}
	if len(ev.Labels) != 2000 {
		t.Fatalf("%d values of the record kept in labels, want 2000", len(ev.Labels))
	}
	if c, err := tail.LoadCursor(tail.CursorPath(dir, "c")); err != nil || c.NextSeq != 4 {
		t.Fatalf("cursor %+v, %v: want it past the three records", c, err)
	}
}

// TestRelativeLogPath: log.file.path is the log's absolute path when the
// log was given relative to the working directory.
func TestRelativeLogPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	writeRecords(t, dir, 3)
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(wd, dir)
	if err != nil || filepath.IsAbs(rel) {
		t.Fatalf("no relative path to %s from %s: %v", dir, wd, err)
	}
	out := filepath.Join(t.TempDir(), "events.ndjson")
	r := runShipper(t, ship.Config{Logs: []string{rel}, Output: openOutput(t, "file://"+out)})
	waitFor(t, "every event", hangLimit, func() bool { return r.s.Stats().Acked == 3 })
	if err := r.finish(t); err != nil {
		t.Fatal(err)
	}
	got := shipped(t, out)
	if len(got) != 1 || len(got[dir]) != 3 {
		t.Fatalf("events by log.file.path: %v; want the 3 under %s (given as %s)", got, dir, rel)
	}
}
