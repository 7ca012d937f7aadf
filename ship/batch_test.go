package ship

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mmaplog/mmaplog/mmaplog"
	"github.com/mmaplog/mmaplog/output"
	"github.com/mmaplog/mmaplog/tail"
)

// TestEncodeIntoChunk: events are encoded where the batch's chunk has
// room, each followed by a newline, and AppendLines gives any run of them
// as the chunk holds them; an event that does not fit leaves the batch as
// it was.
func TestEncodeIntoChunk(t *testing.T) {
	enc, err := NewEncoder("/var/log/app", "web-1", map[string]string{"service.name": "checkout"})
	if err != nil {
		t.Fatal(err)
	}
	b := &shipBatch{}
	b.addChunk(make([]byte, 0, chunkSize))
	var want [][]byte
	for i := 1; ; i++ {
		rec := tail.Record{Seq: uint64(i), Time: 1e18, Type: 3, Payload: fmt.Appendf(nil, `{"i":%d,"pad":%q}`, i, strings.Repeat("p", i*7%500))}
		ev := enc.Append(nil, rec)
		start := len(b.chunks[0])
		got, in := b.encode(enc, rec)
		if !in {
			if !bytes.Equal(got, ev) || len(b.events) != i-1 || len(b.chunks[0]) != start {
				t.Fatalf("record %d did not fit: event %.40q, %d events, chunk at %d (was %d)", i, got, len(b.events), len(b.chunks[0]), start)
			}
			if room := chunkSize - start; len(ev)+1 <= room {
				t.Fatalf("record %d: %d bytes with its newline refused with %d left", i, len(ev)+1, room)
			}
			break
		}
		if e := b.events[i-1]; !bytes.Equal(e, ev) || !sameMemory(e, b.chunks[0][start:]) {
			t.Fatalf("record %d: event %.40q, not where the chunk had room", i, e)
		}
		want = append(want, append(ev, '\n'))
	}
	if !bytes.Equal(b.chunks[0], bytes.Join(want, nil)) {
		t.Fatal("the chunk does not hold the events and their newlines")
	}
	// A second chunk, with a copied event: runs across both.
	b.addChunk(make([]byte, 0, chunkSize))
	b.appendEvent([]byte(`{"copied":true}`))
	want = append(want, []byte("{\"copied\":true}\n"))
	for _, r := range [][2]int{{0, len(want)}, {3, 4}, {5, len(want) - 1}, {len(want) - 2, len(want)}, {len(want) - 1, len(want)}} {
		lines := b.AppendLines(nil, r[0], r[1])
		if got, w := bytes.Join(lines, nil), bytes.Join(want[r[0]:r[1]], nil); !bytes.Equal(got, w) || len(lines) > 2 {
			t.Fatalf("lines of events [%d, %d): %d slices, %d bytes, want %d bytes in at most 2", r[0], r[1], len(lines), len(got), len(w))
		}
	}
}

// TestShipMemoryAccounted ships records of every size the chunks meet (small
// ones, ones that end a chunk, text whose escaping outgrows the room
// reserved for it, records larger than a chunk) with a budget of a few
// chunks, so that batches wait for it and stop at it: every event is the
// encoder's, in order, and once everything is acknowledged the budget is
// whole again: no chunk was lost or counted twice.
func TestShipMemoryAccounted(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	w, err := mmaplog.Open(dir, &mmaplog.Options{SegmentSize: 16 << 20, MaxRecordSize: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	var recs [][]byte
	for i := 0; i < 3000; i++ {
		var p []byte
		switch {
		case i%500 == 7: // larger than a chunk
			p = fmt.Appendf(nil, `{"i":%d,"big":%q}`, i, strings.Repeat("b", 100<<10+i))
		case i%250 == 11: // text whose escaping outgrows even a new chunk
			p = append(fmt.Appendf(nil, "text %d ", i), bytes.Repeat([]byte{2}, 12000+i)...)
		case i%100 == 3: // text escaped six times over: more than its room
			p = append(fmt.Appendf(nil, "text %d ", i), bytes.Repeat([]byte{1}, 3000+i)...)
		case i%2 == 0:
			p = fmt.Appendf(nil, `{"i":%d,"msg":%q}`, i, strings.Repeat("m", i%700))
		default:
			p = fmt.Appendf(nil, "plain text record %d %s", i, strings.Repeat("t", i%300))
		}
		if _, err := w.Append(mmaplog.LevelInfo, p); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, p)
	}
	w.Close()
	path := filepath.Join(t.TempDir(), "events.ndjson")
	out, err := output.Open("file://"+path, &output.Options{Window: OutputWindow})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Dir: dir, Output: out, Host: "h", BufferBytes: 4 * chunkSize})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	for deadline := time.Now().Add(2 * time.Minute); s.Stats().Acked < uint64(len(recs)); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events acknowledged in 2 minutes", s.Stats().Acked, len(recs))
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if s.budget.avail != s.budget.total {
		t.Errorf("budget %d of %d after every batch was acknowledged", s.budget.avail, s.budget.total)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := NewEncoder(dir, "h", nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := tail.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	lines := bytes.SplitAfter(b, []byte("\n"))
	i := 0
	for ; r.Next(); i++ {
		want := append(enc.Append(nil, r.Record()), '\n')
		if i >= len(lines) || !bytes.Equal(lines[i], want) {
			t.Fatalf("line %d is not the event of record %d (%d bytes of %q...)", i+1, i+1, len(recs[i]), recs[i][:min(len(recs[i]), 20)])
		}
	}
	if i != len(recs) || len(lines) != i+1 || len(lines[i]) != 0 {
		t.Fatalf("%d records read, %d lines in the file, want %d", i, len(lines)-1, len(recs))
	}
}
