package cursorfile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestRoundTrip: what Save writes, Load reads back, a registration's
// CursorFile included, and List finds it by name, skipping what a save
// leaves behind (.tmp), directories (a shipper's CURSOR.lock) and other
// non-regular files.
func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	reg := Cursor{LogID: [16]byte{1, 2, 3}, NextSeq: 42, Segment: 3, Offset: 4096, Time: 7, Lost: 2, Saved: 9, CursorFile: "/var/lib/mmaptail/ship/x"}
	plain := Cursor{LogID: [16]byte{1, 2, 3}, NextSeq: 17, Saved: 1}
	if err := reg.Save(Path(dir, "ship@0123456789ab")); err != nil {
		t.Fatal(err)
	}
	if err := plain.Save(Path(dir, "beats")); err != nil {
		t.Fatal(err)
	}
	if got, err := Load(Path(dir, "ship@0123456789ab")); err != nil || got != reg {
		t.Fatalf("loaded %+v, %v; saved %+v", got, err, reg)
	}
	os.WriteFile(Path(dir, "beats.tmp"), []byte("half"), 0o600)
	os.Mkdir(Path(dir, "beats.lock"), 0o700)
	os.Symlink(Path(dir, "beats"), Path(dir, "link"))
	ents, err := List(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 2 || ents[0].Name != "beats" || ents[0].Cursor != plain || ents[1].Cursor != reg || ents[0].Err != nil || ents[1].Err != nil {
		t.Fatalf("List: %+v", ents)
	}
	if err := Remove(Path(dir, "beats")); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(Path(dir, "beats")); !errors.Is(err, ErrNoCursor) {
		t.Fatalf("after Remove: %v", err)
	}
	if err := Remove(Path(dir, "beats")); err != nil {
		t.Fatalf("removing a removed cursor: %v", err)
	}
	if err := Remove(Path(filepath.Join(dir, "none"), "beats")); err != nil {
		t.Fatalf("removing from a missing directory: %v", err)
	}
	if ents, err := List(filepath.Join(dir, "none")); err != nil || ents != nil {
		t.Fatalf("List of a log without cursors: %+v %v", ents, err)
	}
}

// TestRemoveNoFollow: Remove never removes through a symbolic link at
// DIR/cursors.
func TestRemoveNoFollow(t *testing.T) {
	dir, elsewhere := t.TempDir(), t.TempDir()
	victim := filepath.Join(elsewhere, "beats")
	os.WriteFile(victim, []byte("{}"), 0o600)
	os.Symlink(elsewhere, filepath.Join(dir, DirName))
	if err := Remove(Path(dir, "beats")); !errors.Is(err, ErrCursorPath) {
		t.Fatalf("Remove through a link: %v", err)
	}
	if _, err := os.Stat(victim); err != nil {
		t.Fatalf("removed through the link: %v", err)
	}
}

// TestSaveInLogMakesNoLog: a registration saved under a log directory that
// is gone does not make the directory again.
func TestSaveInLogMakesNoLog(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	err := Cursor{LogID: [16]byte{1}, NextSeq: 3}.SaveInLog(Path(dir, "ship@0123456789ab"))
	if err == nil {
		t.Fatal("saved a registration under a missing log directory")
	}
	if _, serr := os.Stat(dir); !os.IsNotExist(serr) {
		t.Fatalf("the log directory was made: %v", serr)
	}
	os.Mkdir(dir, 0o700)
	if err := (Cursor{LogID: [16]byte{1}, NextSeq: 3}).SaveInLog(Path(dir, "ship@0123456789ab")); err != nil {
		t.Fatal(err)
	}
}
