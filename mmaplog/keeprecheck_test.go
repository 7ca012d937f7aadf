package mmaplog

import (
	"testing"
	"time"

	"github.com/mmaplog/mmaplog/internal/cursorfile"
	"github.com/mmaplog/mmaplog/rotate"
)

// TestKeepUnshippedRecheck: a writer that rolls over no more lets its held
// segments go once the consumer passed them, at its next periodic pass.
func TestKeepUnshippedRecheck(t *testing.T) {
	defer func(d time.Duration) { keepRecheck = d }(keepRecheck)
	keepRecheck = 20 * time.Millisecond
	dir := t.TempDir()
	const seg = 16 << 10
	w, err := Open(dir, &Options{SegmentSize: seg, MaxBackups: 1, MaxTotalSize: 32 * seg, KeepUnshipped: true})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	p := make([]byte, 200)
	if _, err := w.Append(LevelInfo, p); err != nil {
		t.Fatal(err)
	}
	cur := cursorfile.Path(dir, "c")
	if err := (cursorfile.Cursor{LogID: w.LogID(), NextSeq: 1}).Save(cur); err != nil {
		t.Fatal(err)
	}
	for w.Stats().Segment < 6 {
		if _, err := w.Append(LevelInfo, p); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "segments held", func() bool { return w.Stats().Held == 4 })
	// The consumer catches up; the writer writes nothing more.
	if err := (cursorfile.Cursor{LogID: w.LogID(), NextSeq: w.Stats().NextSeq}).Save(cur); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "held segments let go", func() bool {
		l, err := rotate.List(dir)
		return err == nil && w.Stats().Held == 0 && l.Segments[0].Num == 5
	})
}
