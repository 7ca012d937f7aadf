package output

import (
	"context"
	"io"
	"testing"
)

// TestSourceClose: a closed source is forgotten once its batches are
// acknowledged, and not before: sources that come and go (a shipper's
// logs) leave nothing behind.
func TestSourceClose(t *testing.T) {
	out, err := Open("stdout", &Options{Stdout: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	e := out.(*engine)
	defer e.Close(context.Background())
	n0 := len(e.sources)
	for i := 0; i < 100; i++ {
		src := out.NewSource()
		acked := make(chan struct{})
		if err := src.Publish(context.Background(), NewBatch([][]byte{[]byte(`{"a":1}`)}, func() { close(acked) })); err != nil {
			t.Fatal(err)
		}
		<-acked
		src.(interface{ Close() }).Close()
	}
	e.mu.Lock()
	n := len(e.sources)
	e.mu.Unlock()
	if n != n0 {
		t.Fatalf("%d sources after 100 came and went, %d before", n, n0)
	}
}
