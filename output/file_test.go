package output_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mmaplog/mmaplog/internal/testutil"
	"github.com/mmaplog/mmaplog/output"
)

// checkLines reads an NDJSON file: every line is a JSON object, and every
// "n" in [0, n) is there exactly once (besides the ones in extra).
func checkLines(t *testing.T, path string, n int, extra ...int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		t.Fatalf("%s ends with a torn line: %q", path, b[max(0, len(b)-80):])
	}
	seen := map[int]int{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	line := 0
	for sc.Scan() {
		line++
		var ev struct{ N *int }
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil || ev.N == nil {
			t.Fatalf("line %d is not an event: %q (%v)", line, sc.Text(), err)
		}
		seen[*ev.N]++
	}
	for _, x := range extra {
		seen[x]--
	}
	for i := 0; i < n; i++ {
		if seen[i] != 1 {
			t.Fatalf("event %d is in the file %d times", i, seen[i])
		}
		delete(seen, i)
	}
	for k, v := range seen {
		if v != 0 {
			t.Fatalf("unexpected event %d (%d times)", k, v)
		}
	}
}

// TestFileDiskFull: the file output on a small tmpfs that fills. Writes
// fail, in part or whole, while it is full: the file never holds a torn
// line, not even between the retries; once space is freed every event is
// written, each once, and every line is valid JSON.
func TestFileDiskFull(t *testing.T) {
	dir := testutil.Tmpfs(t, "256k")
	filler := filepath.Join(dir, "filler")
	// Fill all but about 40 KiB.
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	free := int64(st.Bavail) * st.Bsize
	if err := os.WriteFile(filler, make([]byte, free-40<<10), 0o600); err != nil {
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
	const n = 3000 // ~ 200 KB of events, five times what fits
	wait := publishAsync(t, out, n, 40)
	select {
	case <-full:
	case <-time.After(2 * time.Minute):
		t.Fatal("the disk never filled")
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	wait()
	mu.Lock()
	defer mu.Unlock()
	if torn != "" {
		t.Fatalf("a torn line was left in the file after a failed write: ...%q", torn)
	}
	checkLines(t, path, n)
	t.Logf("%d failed writes while the disk was full", fullErrs)
}

// TestFileRepairsTornTail: a file that ends with a torn line (a shipper
// killed during a write) is cut back to its last whole line when the
// output opens it.
func TestFileRepairsTornTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.ndjson")
	if err := os.WriteFile(path, []byte(`{"n":-1}`+"\n"+`{"n":-2,"mess`), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := output.Open("file://"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	publish(t, out, 500, 50)
	checkLines(t, path, 500, -1)
	b, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(b), `{"n":-1}`+"\n"+`{"n":0,`) {
		t.Fatalf("file starts %q", b[:40])
	}
}
