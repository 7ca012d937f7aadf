package mmaplog_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mmaplog/mmaplog/internal/testutil"
	"github.com/mmaplog/mmaplog/mmaplog"
	"github.com/mmaplog/mmaplog/rotate"
)

// TestOpenRefusesWhatItCannotCreate: a symbolic link, a directory or a FIFO
// at a name the writer will create (the next segments, their temporary
// names, the compressed name of a rolled segment) makes Open fail at once,
// naming it, instead of a Write failing a thousand records later.
func TestOpenRefusesWhatItCannotCreate(t *testing.T) {
	target := filepath.Join(t.TempDir(), "victim")
	os.WriteFile(target, []byte("keep me"), 0o600)
	for _, c := range []struct {
		name string
		make func(path string) error
	}{
		{rotate.SegmentName(4), func(p string) error { return os.Symlink(target, p) }},
		{rotate.SegmentName(5), func(p string) error { return os.Symlink(target, p) }},
		{rotate.SegmentName(4) + ".tmp", func(p string) error { return os.Symlink(target, p) }},
		{rotate.SegmentName(5), func(p string) error { return os.Mkdir(p, 0o700) }},
		{rotate.SegmentName(1) + rotate.CompressedExt, func(p string) error { return os.Symlink(target, p) }},
		{rotate.SegmentName(1) + rotate.CompressedExt + ".tmp", func(p string) error { return unix.Mkfifo(p, 0o600) }},
	} {
		dir := t.TempDir()
		w, err := mmaplog.Open(dir, &mmaplog.Options{SegmentSize: 64 << 10, MaxBackups: -1})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 1200; i++ {
			w.Write(bytes.Repeat([]byte("r"), 100))
		}
		w.Close()
		if n := lastSegment(t, dir); n != 3 {
			t.Fatalf("the log ends in segment %d, the case wants 3", n)
		}
		p := filepath.Join(dir, c.name)
		if err := c.make(p); err != nil {
			t.Fatal(err)
		}
		_, err = mmaplog.Open(dir, &mmaplog.Options{SegmentSize: 64 << 10, MaxBackups: -1, Compress: true})
		if err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: Open gave %v, want an error naming it", c.name, err)
		}
		if b, _ := os.ReadFile(target); string(b) != "keep me" {
			t.Fatalf("%s: the link's target was modified", c.name)
		}
	}
}

// TestCloseReportsOnlyNewErrors: Writes that failed for a full disk returned
// their error; once room is made and writing resumed, Close returns nil
// instead of the same error again.
func TestCloseReportsOnlyNewErrors(t *testing.T) {
	dir := testutil.Tmpfs(t, "1m")
	var told []error
	w, err := mmaplog.Open(dir, &mmaplog.Options{SegmentSize: 256 << 10, MaxBackups: -1, OnError: func(err error) { told = append(told, err) }})
	if err != nil {
		t.Fatal(err)
	}
	rec := bytes.Repeat([]byte("d"), 1000)
	var werr error
	for i := 0; i < 10000 && werr == nil; i++ {
		_, werr = w.Write(rec)
	}
	if !errors.Is(werr, unix.ENOSPC) {
		t.Fatalf("got %v, want ENOSPC", werr)
	}
	l, _ := rotate.List(dir)
	os.Remove(l.Segments[0].Path)
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := w.Write(rec); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("still failing after room was made: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close returned %v, which the failing Write already returned", err)
	}
	if len(told) == 0 {
		t.Fatal("OnError was not told about the failed preparation")
	}
}
