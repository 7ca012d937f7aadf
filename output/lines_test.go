package output_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mmaplog/mmaplog/internal/testutil"
	"github.com/mmaplog/mmaplog/output"
)

// linedBatch lays its events out as the shipper does: in 64 KiB chunks
// (one of its own for a larger event), each event followed by a newline,
// and gives their lines where they lie (output.Lines). It counts the
// lines it gave, and its acknowledgement.
type linedBatch struct {
	chunks [][]byte
	firsts []int
	events [][]byte
	given  *atomic.Int64 // events whose lines AppendLines gave
	ack    func()
}

func newLinedBatch(given *atomic.Int64, ack func(), events ...[]byte) *linedBatch {
	b := &linedBatch{given: given, ack: ack}
	for _, ev := range events {
		k := len(b.chunks) - 1
		if k < 0 || cap(b.chunks[k])-len(b.chunks[k]) < len(ev)+1 {
			b.chunks = append(b.chunks, make([]byte, 0, max(64<<10, len(ev)+1)))
			b.firsts = append(b.firsts, len(b.events))
			k++
		}
		start := len(b.chunks[k])
		b.chunks[k] = append(append(b.chunks[k], ev...), '\n')
		b.events = append(b.events, b.chunks[k][start:start+len(ev):start+len(ev)])
	}
	return b
}

func (b *linedBatch) Events() [][]byte { return b.events }
func (b *linedBatch) Ack()             { b.ack() }
func (b *linedBatch) Nack(error)       {}

func (b *linedBatch) AppendLines(dst [][]byte, i, j int) [][]byte {
	b.given.Add(int64(j - i))
	k := sort.Search(len(b.firsts), func(k int) bool { return b.firsts[k] > i }) - 1
	for ; i < j; k++ {
		end := j
		if k+1 < len(b.firsts) {
			end = min(j, b.firsts[k+1])
		}
		off, n := 0, 0
		for e := b.firsts[k]; e < i; e++ {
			off += len(b.events[e]) + 1
		}
		for e := i; e < end; e++ {
			n += len(b.events[e]) + 1
		}
		dst = append(dst, b.chunks[k][off:off+n])
		i = end
	}
	return dst
}

// linesEvent is event n of source src, of about size bytes.
func linesEvent(src string, n, size int) []byte {
	ev := fmt.Appendf(nil, `{"src":%q,"n":%d,"pad":"`, src, n)
	ev = append(ev, bytes.Repeat([]byte{'x'}, max(size-len(ev)-2, 0))...)
	return append(ev, `"}`...)
}

// publishLines publishes n events of source "lined" in lined batches and
// n of source "plain" in plain ones, from two sources of out, with sizes
// from a few bytes to more than a chunk, and waits until every batch is
// acknowledged and out closed.
func publishLines(t *testing.T, out output.Output, n int, given *atomic.Int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for _, src := range []string{"lined", "plain"} {
		p := out.NewSource()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, per := 0, 1; i < n; i, per = i+per, per%97+13 {
				var evs [][]byte
				for j := i; j < min(i+per, n); j++ {
					evs = append(evs, linesEvent(src, j, []int{40, 300, 2000, 40, 300, 2000, 40, 70 << 10}[j%8]))
				}
				var b output.Batch = output.NewBatch(evs, func() {})
				if src == "lined" {
					b = newLinedBatch(given, func() {}, evs...)
				}
				if err := p.Publish(ctx, b); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := out.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// checkLinesOf checks newline-delimited JSON: n events of each source,
// each once, in the source's order, every line whole.
func checkLinesOf(t *testing.T, b []byte, n int) {
	t.Helper()
	if len(b) > 0 && b[len(b)-1] != '\n' {
		t.Fatalf("ends with a torn line: ...%q", b[max(0, len(b)-80):])
	}
	next := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for line := 1; sc.Scan(); line++ {
		var ev struct {
			Src string
			N   int
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("line %d: %v: %.100q", line, err, sc.Bytes())
		}
		if ev.N != next[ev.Src] {
			t.Fatalf("line %d: event %d of %s, want %d", line, ev.N, ev.Src, next[ev.Src])
		}
		next[ev.Src]++
	}
	if next["lined"] != n || next["plain"] != n {
		t.Fatalf("%d lined and %d plain events, want %d of each", next["lined"], next["plain"], n)
	}
}

// TestLinesWhereTheyLie: the newline-delimited outputs (tcp://, file://,
// stdout on a file) take the lines of batches that keep them (output.Lines)
// where they lie, windows cutting batches anywhere, mixed with the events
// of other batches, and write every event once, whole, in order.
func TestLinesWhereTheyLie(t *testing.T) {
	const n = 1500
	opts := func() *output.Options { return &output.Options{Window: 8, BulkMaxSize: 100} }
	t.Run("tcp", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		got := make(chan []byte, 1)
		go func() {
			c, err := l.Accept()
			if err != nil {
				got <- nil
				return
			}
			b, _ := io.ReadAll(c)
			c.Close()
			got <- b
		}()
		out, err := output.Open("tcp://"+l.Addr().String(), opts())
		if err != nil {
			t.Fatal(err)
		}
		var given atomic.Int64
		publishLines(t, out, n, &given)
		checkLinesOf(t, <-got, n)
		if given.Load() != n {
			t.Errorf("the lines of %d lined events were taken, want %d", given.Load(), n)
		}
	})
	t.Run("file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "events.ndjson")
		out, err := output.Open("file://"+path, opts())
		if err != nil {
			t.Fatal(err)
		}
		var given atomic.Int64
		publishLines(t, out, n, &given)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		checkLinesOf(t, b, n)
		if given.Load() != n {
			t.Errorf("the lines of %d lined events were taken, want %d", given.Load(), n)
		}
	})
	t.Run("stdout", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "stdout")
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		o := opts()
		o.Stdout = f
		out, err := output.Open("stdout", o)
		if err != nil {
			t.Fatal(err)
		}
		var given atomic.Int64
		publishLines(t, out, n, &given)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		checkLinesOf(t, b, n)
		if given.Load() != n {
			t.Errorf("the lines of %d lined events were taken, want %d", given.Load(), n)
		}
	})
}

// TestFileDiskFullLines is TestFileDiskFull with batches that keep their
// lines: the vectored writes fail in part or whole while the disk is
// full, and the file never holds a torn line; once space is freed every
// event is written, once.
func TestFileDiskFullLines(t *testing.T) {
	dir := testutil.Tmpfs(t, "256k")
	filler := filepath.Join(dir, "filler")
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filler, make([]byte, int64(st.Bavail)*st.Bsize-40<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "events.ndjson")
	var mu sync.Mutex
	var fullErrs int
	var torn string
	full := make(chan struct{})
	out, err := output.Open("file://"+path, &output.Options{Window: 8, BackoffMin: 5 * time.Millisecond, BackoffMax: 50 * time.Millisecond,
		OnError: func(err error) {
			mu.Lock()
			defer mu.Unlock()
			if !errors.Is(err, unix.ENOSPC) {
				t.Errorf("error other than a full disk: %v", err)
				return
			}
			if b, _ := os.ReadFile(path); len(b) > 0 && b[len(b)-1] != '\n' {
				torn = string(b[max(0, len(b)-80):])
			}
			if fullErrs++; fullErrs == 3 {
				close(full)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	const n = 3000 // about 200 KB of events, five times what fits
	done := make(chan struct{})
	var given atomic.Int64
	go func() {
		defer close(done)
		ctx := context.Background()
		for i := 0; i < n; i += 40 {
			var evs [][]byte
			for j := i; j < min(i+40, n); j++ {
				evs = append(evs, linesEvent("lined", j, 60))
			}
			if err := out.Publish(ctx, newLinedBatch(&given, func() {}, evs...)); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	select {
	case <-full:
	case <-time.After(2 * time.Minute):
		t.Fatal("the disk never filled")
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	<-done
	if err := out.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if torn != "" {
		t.Fatalf("a torn line was left in the file after a failed write: ...%q", torn)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if given.Load() == 0 {
		t.Fatal("no lines taken where they lie")
	}
	next := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var ev struct{ N int }
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil || ev.N != next {
			t.Fatalf("line %d: %q (%v), want event %d", next+1, sc.Bytes(), err, next)
		}
		next++
	}
	if next != n {
		t.Fatalf("%d events in the file, want %d", next, n)
	}
	t.Logf("%d failed writes while the disk was full", fullErrs)
}
