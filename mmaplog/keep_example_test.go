package mmaplog_test

import (
	"fmt"
	"os"

	"github.com/mmaplog/mmaplog/mmaplog"
	"github.com/mmaplog/mmaplog/rotate"
	"github.com/mmaplog/mmaplog/tail"
)

// Keep until shipped: a consumer's cursor under DIR/cursors (what
// `mmaptail ship` saves) holds the rolled segments it has not passed, past
// MaxBackups; only MaxTotalSize would remove them.
func Example_keepUnshipped() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)

	w, err := mmaplog.Open(dir, &mmaplog.Options{SegmentSize: 16 << 10, MaxBackups: 1, MaxTotalSize: 1 << 20, KeepUnshipped: true})
	if err != nil {
		panic(err)
	}
	// A shipper that has shipped nothing yet: its next record is 1.
	if err := (tail.Cursor{LogID: w.LogID(), NextSeq: 1}).Save(tail.CursorPath(dir, "ship")); err != nil {
		panic(err)
	}
	for i := 1; w.Stats().Segment < 6; i++ {
		fmt.Fprintf(w, `{"message":"event %d","padding":"%0200d"}`, i, 0)
	}
	if err := w.Close(); err != nil {
		panic(err)
	}

	l, _ := rotate.List(dir)
	fmt.Printf("segments %d to %d kept (MaxBackups alone keeps 5 and 6)\n", l.Segments[0].Num, l.Segments[len(l.Segments)-1].Num)
	fmt.Println("removed unshipped:", w.Stats().UnshippedRemoved)
	// Output:
	// segments 1 to 6 kept (MaxBackups alone keeps 5 and 6)
	// removed unshipped: 0
}
