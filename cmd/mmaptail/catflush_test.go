package main

import (
	"bytes"
	"fmt"
	"io"
	"path/filepath"
	"testing"

	"github.com/mmaplog/mmaplog/mmaplog"
)

// writeRecorder keeps every Write it is given, as write(2) calls would be.
type writeRecorder struct{ writes [][]byte }

func (w *writeRecorder) Write(p []byte) (int, error) {
	w.writes = append(w.writes, bytes.Clone(p))
	return len(p), nil
}

// TestCatFlushesWholeLines: cat's buffered output reaches its standard
// output only in whole lines (so that a cat killed between two writes leaves
// no half record), with records of odd sizes that do not divide its buffer.
func TestCatFlushesWholeLines(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	w, err := mmaplog.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	const n = 5000
	for i := 0; i < n; i++ {
		if _, err := fmt.Fprintf(w, "record %d %s", i, bytes.Repeat([]byte("x"), 37+i%211)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var out writeRecorder
	if code := run([]string{"cat", dir}, nil, &out, io.Discard); code != 0 {
		t.Fatalf("cat exited %d", code)
	}
	if len(out.writes) < 2 {
		t.Fatalf("%d writes: the output should take several buffers", len(out.writes))
	}
	lines := 0
	for i, p := range out.writes {
		if len(p) == 0 || p[len(p)-1] != '\n' {
			t.Fatalf("write %d of %d (%d bytes) does not end at a line's end", i+1, len(out.writes), len(p))
		}
		lines += bytes.Count(p, []byte("\n"))
	}
	if lines != n {
		t.Fatalf("%d lines, want %d", lines, n)
	}
}
