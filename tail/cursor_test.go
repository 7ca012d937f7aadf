package tail_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mmaplog/mmaplog/tail"
)

// loadWithin runs LoadCursor, failing the test if it does not return
// within a minute (a hang); unblock, if set, is called then to let it go.
func loadWithin(t *testing.T, path string, unblock func()) (tail.Cursor, error) {
	t.Helper()
	type result struct {
		c   tail.Cursor
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := tail.LoadCursor(path)
		done <- result{c, err}
	}()
	select {
	case r := <-done:
		return r.c, r.err
	case <-time.After(time.Minute): // catches a hang only
		if unblock != nil {
			unblock()
		}
		<-done
		t.Fatalf("LoadCursor(%s) did not return in a minute", path)
	}
	return tail.Cursor{}, nil
}

// wantCursorPathError checks that err wraps ErrCursorPath and says
// everything in says.
func wantCursorPathError(t *testing.T, what string, err error, says ...string) {
	t.Helper()
	if !errors.Is(err, tail.ErrCursorPath) {
		t.Fatalf("%s: %v; want an error wrapping ErrCursorPath", what, err)
	}
	for _, s := range says {
		if !strings.Contains(err.Error(), s) {
			t.Fatalf("%s: %q does not say %q", what, err, s)
		}
	}
}

// emptyDir fails if dir holds anything.
func emptyDir(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 0 {
		t.Fatalf("%s holds %v: written through a symbolic link", dir, ents)
	}
}

// TestCursorFIFO: a named pipe at a cursor's path is refused at once with
// an error naming it, never waited on (opening a pipe for reading waits
// for a writer: a shipper stuck there no longer even stops on SIGTERM);
// listing the cursors skips it.
func TestCursorFIFO(t *testing.T) {
	dir := t.TempDir()
	path := tail.CursorPath(dir, "ship")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := loadWithin(t, path, func() {
		if f, err := os.OpenFile(path, os.O_WRONLY, 0); err == nil {
			f.Close()
		}
	})
	wantCursorPathError(t, "LoadCursor of a named pipe", err, path, "named pipe")
	if cs, err := tail.Cursors(dir); err != nil || len(cs) != 0 {
		t.Fatalf("Cursors with a named pipe: %+v %v", cs, err)
	}
}

// TestCursorDirSymlink: a symbolic link planted at DIR/cursors, to an
// existing directory or to none, is never followed: saving, loading and
// listing cursors fail with an error naming it, and nothing is created or
// written where it points.
func TestCursorDirSymlink(t *testing.T) {
	for _, dangling := range []bool{false, true} {
		dir, elsewhere := t.TempDir(), t.TempDir()
		target := elsewhere
		if dangling {
			target = filepath.Join(elsewhere, "none")
		}
		if err := os.Symlink(target, filepath.Join(dir, tail.CursorDir)); err != nil {
			t.Fatal(err)
		}
		path := tail.CursorPath(dir, "ship")
		err := tail.Cursor{LogID: [16]byte{1}, NextSeq: 5}.Save(path)
		wantCursorPathError(t, "Save through a symbolic link", err, filepath.Join(dir, tail.CursorDir), "symbolic link")
		_, err = loadWithin(t, path, nil)
		wantCursorPathError(t, "LoadCursor through a symbolic link", err, filepath.Join(dir, tail.CursorDir), "symbolic link")
		if errors.Is(err, tail.ErrNoCursor) {
			t.Fatalf("LoadCursor through a symbolic link: %v; the link is not a missing cursor", err)
		}
		_, err = tail.Cursors(dir)
		wantCursorPathError(t, "Cursors through a symbolic link", err, filepath.Join(dir, tail.CursorDir))
		_, err = tail.OpenCursorDir(path, true)
		wantCursorPathError(t, "OpenCursorDir through a symbolic link", err, filepath.Join(dir, tail.CursorDir))
		emptyDir(t, elsewhere)
	}
}

// TestCursorFileSymlink: a symbolic link at a cursor's path is not read
// (an error naming it), and saving replaces the link itself: the file it
// points to is never written.
func TestCursorFileSymlink(t *testing.T) {
	dir := t.TempDir()
	other := filepath.Join(t.TempDir(), "other-cursor")
	want := tail.Cursor{LogID: [16]byte{2}, NextSeq: 9}
	if err := want.Save(other); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(other)
	if err != nil {
		t.Fatal(err)
	}
	path := tail.CursorPath(dir, "ship")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(other, path); err != nil {
		t.Fatal(err)
	}
	_, err = loadWithin(t, path, nil)
	wantCursorPathError(t, "LoadCursor of a symbolic link", err, path, "symbolic link")
	if err := (tail.Cursor{LogID: [16]byte{3}, NextSeq: 7}).Save(path); err != nil {
		t.Fatal(err)
	}
	if after, err := os.ReadFile(other); err != nil || string(after) != string(before) {
		t.Fatalf("the file the link pointed to changed: %q, was %q (%v)", after, before, err)
	}
	if st, err := os.Lstat(path); err != nil || !st.Mode().IsRegular() {
		t.Fatalf("after Save, %s is %v (%v); want a regular file in place of the link", path, st.Mode(), err)
	}
	if c, err := tail.LoadCursor(path); err != nil || c.NextSeq != 7 {
		t.Fatalf("the saved cursor: %+v %v", c, err)
	}
}
