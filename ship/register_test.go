package ship_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mmaplog/mmaplog/internal/cursorfile"
	"github.com/mmaplog/mmaplog/mmaplog"
	"github.com/mmaplog/mmaplog/ship"
	"github.com/mmaplog/mmaplog/tail"
)

// appendUntil appends records to w until its active segment is seg; it
// returns the sequence number of the last one.
func appendUntil(t *testing.T, w *mmaplog.Writer, seg uint64) uint64 {
	t.Helper()
	pad := strings.Repeat("x", 200)
	var last uint64
	for w.Stats().Segment < seg {
		seq, err := w.Append(mmaplog.LevelInfo, []byte(fmt.Sprintf(`{"message":"record %s"}`, pad)))
		if err != nil {
			t.Fatal(err)
		}
		last = seq
	}
	return last
}

// TestShipRegistersCursorKeptElsewhere: a shipper keeping its cursor in a
// cursor directory registers it under DIR/cursors, where a writer with
// KeepUnshipped sees it: while the shipper is stopped the writer keeps
// what it has not shipped, far past MaxBackups, and the shipper back ships
// every record, none lost. The registration follows the cursor, never
// ahead of it, and names it.
func TestShipRegistersCursorKeptElsewhere(t *testing.T) {
	root := t.TempDir()
	dir, cdir := filepath.Join(root, "log"), filepath.Join(root, "state")
	const seg = 16 << 10
	w, err := mmaplog.Open(dir, &mmaplog.Options{SegmentSize: seg, MaxBackups: 1, MaxTotalSize: 64 * seg, KeepUnshipped: true})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	shipped1 := appendUntil(t, w, 2)
	cfg := ship.Config{Dir: dir, Output: openOutput(t, "file://"+filepath.Join(root, "out1.ndjson")), CursorName: "c", CursorDir: cdir,
		ScanInterval: 10 * time.Millisecond, SaveInterval: time.Millisecond}
	r := runShipper(t, cfg)
	waitFor(t, "the first records shipped", hangLimit, func() bool { return r.s.Stats().Acked == shipped1 })
	if err := r.finish(t); err != nil {
		t.Fatal(err)
	}
	real := filepath.Join(cdir, "c", ship.CursorFileName(dir))
	checkRegistration(t, dir, real, shipped1+1)

	// The shipper is away; the writer goes on through 20 segments.
	last := appendUntil(t, w, 22)
	if st := w.Stats(); st.Held == 0 || st.UnshippedRemoved != 0 {
		t.Fatalf("writer stats %+v: want segments held for the shipper, none removed unshipped", st)
	}
	cfg.Output = openOutput(t, "file://"+filepath.Join(root, "out2.ndjson"))
	r = runShipper(t, cfg)
	waitFor(t, "the rest shipped", hangLimit, func() bool { return r.s.Stats().Acked+r.s.Stats().Lost >= last-shipped1 })
	if err := r.finish(t); err != nil {
		t.Fatal(err)
	}
	if st := r.s.Stats(); st.Lost != 0 || st.Acked != last-shipped1 {
		t.Fatalf("the shipper back: %d records shipped, %d lost; want %d shipped, none lost", st.Acked, st.Lost, last-shipped1)
	}
	checkRegistration(t, dir, real, last+1)
}

// checkRegistration checks that the log in dir holds one cursor, the
// registration of the cursor at real, and that both say next.
func checkRegistration(t *testing.T, dir, real string, next uint64) {
	t.Helper()
	c, err := tail.LoadCursor(real)
	if err != nil || c.NextSeq != next {
		t.Fatalf("the cursor %s: %+v, %v; want next %d", real, c, err, next)
	}
	ents, err := cursorfile.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || !strings.HasPrefix(ents[0].Name, "c@") || ents[0].Err != nil || ents[0].Cursor.NextSeq != next ||
		ents[0].Cursor.CursorFile != real || ents[0].Cursor.LogID != c.LogID {
		t.Fatalf("cursors under %s: %+v; want the registration of %s, next %d", dir, ents, real, next)
	}
}

// TestShipRegistrationUnwritable: a registration that cannot be saved
// (here DIR/cursors is a file) is said once, and shipping goes on with the
// cursor saved where it is kept.
func TestShipRegistrationUnwritable(t *testing.T) {
	root := t.TempDir()
	dir, cdir := filepath.Join(root, "log"), filepath.Join(root, "state")
	writeRecords(t, dir, 50)
	if err := os.WriteFile(filepath.Join(dir, tail.CursorDir), []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := ship.Config{Dir: dir, Output: openOutput(t, "file://"+filepath.Join(root, "out.ndjson")), CursorName: "c", CursorDir: cdir,
		SaveInterval: time.Millisecond, Window: 10}
	r := runShipper(t, cfg)
	waitFor(t, "every record shipped", hangLimit, func() bool { return r.s.Stats().Acked == 50 })
	if err := r.finish(t); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range r.logs.lines {
		if strings.Contains(l, "cannot register cursor") {
			n++
		}
	}
	if n != 1 || r.s.Stats().CursorSaves < 2 {
		t.Fatalf("%d notes about the registration in %d saves, want one: %q", n, r.s.Stats().CursorSaves, r.logs.lines)
	}
	if c, err := tail.LoadCursor(filepath.Join(cdir, "c", ship.CursorFileName(dir))); err != nil || c.NextSeq != 51 {
		t.Fatalf("the cursor: %+v %v", c, err)
	}
}
