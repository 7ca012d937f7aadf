package powercut

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestLazyFS checks the filesystem the power cuts are made on: after a
// cut, exactly what was fsynced is there (file data by an fsync of the
// file, entries by an fsync of their directory), and what the operations
// the writer uses (shared mmap, msync, fallocate, flock,
// RENAME_NOREPLACE) do before it.
func TestLazyFS(t *testing.T) {
	needFUSE(t)
	work := t.TempDir()
	backing, mnt := filepath.Join(work, "backing"), filepath.Join(work, "mnt")
	d, err := StartDaemon(backing, mnt)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if d != nil {
			d.Cut()
		}
	}()
	p := func(name string) string { return filepath.Join(mnt, name) }
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	write := func(name, data string, fsync bool) {
		t.Helper()
		f, err := os.OpenFile(p(name), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
		must(err)
		_, err = f.WriteString(data)
		must(err)
		if fsync {
			must(f.Sync())
		}
		must(f.Close())
	}
	syncDir := func(name string) {
		t.Helper()
		f, err := os.Open(p(name))
		must(err)
		must(f.Sync())
		must(f.Close())
	}

	write("durable", "hello", true)
	write("nosync", "lost data", false)
	write("old", "renamed", true)
	write("gone", "unlinked", true)
	must(os.Mkdir(p("keptdir"), 0o700))
	write("keptdir/inner", "inner", true)
	syncDir("keptdir")

	// Shared mapping: page 0 msynced, page 1 written after the msync and
	// never synced; and a page written, unmapped and closed (written back
	// to the daemon by the kernel), never synced.
	f, err := os.OpenFile(p("mapped"), os.O_RDWR|os.O_CREATE, 0o600)
	must(err)
	must(unix.Fallocate(int(f.Fd()), 0, 0, 3*4096))
	must(f.Sync())
	m, err := unix.Mmap(int(f.Fd()), 0, 3*4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	must(err)
	copy(m[0:], "AAAA")
	must(unix.Msync(m[:4096], unix.MS_SYNC))
	copy(m[4096:], "BBBB")
	copy(m[8192:], "CCCC")
	must(unix.Msync(m[8192:], unix.MS_ASYNC))
	must(unix.SyncFileRange(int(f.Fd()), 8192, 4096, unix.SYNC_FILE_RANGE_WRITE))
	must(unix.Munmap(m))
	// flock is the kernel's own on this mount: a second description
	// cannot take an exclusive lock held by the first.
	g, err := os.Open(p("mapped"))
	must(err)
	must(unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB))
	if err := unix.Flock(int(g.Fd()), unix.LOCK_SH|unix.LOCK_NB); !errors.Is(err, unix.EWOULDBLOCK) {
		t.Errorf("flock: a shared lock beside an exclusive one: %v", err)
	}
	g.Close()
	must(f.Close())
	syncDir(".")

	// After the last fsync of the root: undone by the cut.
	must(unix.Renameat2(unix.AT_FDCWD, p("old"), unix.AT_FDCWD, p("new"), unix.RENAME_NOREPLACE))
	write("durable2", "x", false)
	if err := unix.Renameat2(unix.AT_FDCWD, p("durable2"), unix.AT_FDCWD, p("durable"), unix.RENAME_NOREPLACE); !errors.Is(err, syscall.EEXIST) {
		t.Errorf("RENAME_NOREPLACE over an existing file: %v, want EEXIST", err)
	}
	must(os.Remove(p("gone")))
	write("notindir", "data", true)
	must(os.Mkdir(p("newdir"), 0o700))
	write("newdir/file", "data", true)
	syncDir("newdir")
	if b, err := os.ReadFile(p("nosync")); err != nil || string(b) != "lost data" {
		t.Errorf("reads before the cut see what was written: %q, %v", b, err)
	}

	must(d.Cut())
	if d, err = StartDaemon(backing, mnt); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"durable":       "hello",
		"nosync":        "", // created, its entry fsynced, its data not
		"old":           "renamed",
		"gone":          "unlinked",
		"keptdir/inner": "inner",
	}
	for name, content := range want {
		b, err := os.ReadFile(p(name))
		if err != nil || string(b) != content {
			t.Errorf("%s after the cut: %q, %v; want %q", name, b, err, content)
		}
	}
	for _, name := range []string{"new", "durable2", "notindir", "newdir"} {
		if _, err := os.Lstat(p(name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s after the cut: %v, want it gone (its directory was not fsynced after)", name, err)
		}
	}
	b, err := os.ReadFile(p("mapped"))
	switch {
	case err != nil || len(b) != 3*4096:
		t.Errorf("mapped after the cut: %d bytes, %v", len(b), err)
	case string(b[:4]) != "AAAA":
		t.Errorf("mapped: the msynced page lost: %q", b[:4])
	case !bytes.Equal(b[4096:], make([]byte, 2*4096)):
		t.Errorf("mapped: pages never fsynced survived: %q, %q", b[4096:4100], b[8192:8196])
	}
	must(d.Stop())
	d = nil
}
