package ship_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mmaplog/mmaplog/ship"
	"github.com/mmaplog/mmaplog/tail"
)

// runUntilError runs a shipper with cfg and returns the error it stops
// with; it fails the test if the shipper does not stop on its own within a
// minute, or then when cancelled, calling unblock (if set) to let it go.
func runUntilError(t *testing.T, cfg ship.Config, unblock func()) error {
	t.Helper()
	r := runShipper(t, cfg)
	select {
	case err := <-r.done:
		r.done <- err
		return err
	case <-time.After(time.Minute): // catches a hang only
	}
	r.stop()
	select {
	case err := <-r.done:
		r.done <- err
		t.Fatalf("the shipper did not stop on its own in a minute; cancelled, it returned %v", err)
	case <-time.After(time.Minute):
		if unblock != nil {
			unblock()
		}
		t.Fatal("the shipper neither stopped on its own nor when cancelled")
	}
	return nil
}

// TestShipCursorFIFO: a named pipe at the cursor's path stops the shipper
// at once with an error naming it; opening it never waits for a writer
// (a shipper stuck there did not even stop when told to).
func TestShipCursorFIFO(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	writeRecords(t, dir, 10)
	path := tail.CursorPath(dir, "fifo")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	// Lets a shipper stuck opening the pipe go, once the test failed.
	unblock := func() {
		if f, err := os.OpenFile(path, os.O_WRONLY|unix.O_NONBLOCK, 0); err == nil {
			f.Close()
		}
	}
	out := filepath.Join(t.TempDir(), "events.ndjson")
	err := runUntilError(t, ship.Config{Dir: dir, Output: openOutput(t, "file://"+out), CursorName: "fifo"}, unblock)
	if !errors.Is(err, tail.ErrCursorPath) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "named pipe") {
		t.Fatalf("shipper with a named pipe as its cursor: %v", err)
	}
	if n := countAll(shipped(t, out)); n != 0 {
		t.Fatalf("%d events shipped without a cursor", n)
	}
}

// TestShipCursorDirSymlink: a symbolic link planted at DIR/cursors stops
// the shipper with an error naming it; neither its lock nor its cursor is
// created where the link points.
func TestShipCursorDirSymlink(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	writeRecords(t, dir, 10)
	elsewhere := t.TempDir()
	if err := os.Symlink(elsewhere, filepath.Join(dir, tail.CursorDir)); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "events.ndjson")
	err := runUntilError(t, ship.Config{Dir: dir, Output: openOutput(t, "file://"+out), CursorName: "ship"}, nil)
	if !errors.Is(err, tail.ErrCursorPath) || !strings.Contains(err.Error(), filepath.Join(dir, tail.CursorDir)) {
		t.Fatalf("shipper with DIR/cursors a symbolic link: %v", err)
	}
	if ents, err := os.ReadDir(elsewhere); err != nil || len(ents) != 0 {
		t.Fatalf("%s holds %v (%v): written through the link", elsewhere, ents, err)
	}
}
