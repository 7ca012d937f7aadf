package fileutil

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestLock(t *testing.T) {
	p := filepath.Join(t.TempDir(), "LOCK")
	l, err := TryLock(p)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o600 {
		t.Errorf("lock file mode %v", st.Mode())
	}
	_, err = TryLock(p)
	var le *LockedError
	if !errors.As(err, &le) || le.PID != os.Getpid() {
		t.Fatalf("second lock: %v", err)
	}
	if held, pid, err := IsLocked(p); !held || pid != os.Getpid() || err != nil {
		t.Fatalf("IsLocked: %v %d %v", held, pid, err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if held, _, _ := IsLocked(p); held {
		t.Fatal("still locked after Release")
	}
	if held, _, err := IsLocked(filepath.Join(t.TempDir(), "none")); held || err != nil {
		t.Fatalf("missing lock file: %v %v", held, err)
	}
	l2, err := TryLock(p)
	if err != nil {
		t.Fatal(err)
	}
	l2.Release()
}

func TestRenameNoReplace(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	os.WriteFile(a, []byte("a"), 0o600)
	os.WriteFile(b, []byte("b"), 0o600)
	if err := RenameNoReplace(a, b); !errors.Is(err, os.ErrExist) {
		t.Fatalf("replaced: %v", err)
	}
	if got, _ := os.ReadFile(b); string(got) != "b" {
		t.Fatal("target changed")
	}
	os.Remove(b)
	if err := RenameNoReplace(a, b); err != nil {
		t.Fatal(err)
	}
}

func TestPreallocateAndPrefault(t *testing.T) {
	f, err := CreateExclusive(filepath.Join(t.TempDir(), "seg"), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := Preallocate(f, 1<<20); err != nil {
		t.Fatal(err)
	}
	b, err := Map(f, 1<<20, true)
	if err != nil {
		t.Fatal(err)
	}
	defer Unmap(b)
	if err := PrefaultWrite(b); err != nil {
		t.Fatal(err)
	}
	touchPages(b) // the fallback leaves contents unchanged
	for _, c := range b {
		if c != 0 {
			t.Fatal("pre-faulting changed the contents")
		}
	}
	if err := Msync(b, 100, 5000, true); err != nil {
		t.Fatal(err)
	}
	if err := StartWriteback(f, 0, 4096); err != nil {
		t.Fatal(err)
	}
	if err := Fdatasync(f); err != nil {
		t.Fatal(err)
	}
}
