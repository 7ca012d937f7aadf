package output_test

import (
	"context"
	"io"
	"sync/atomic"
	"testing"

	"github.com/mmaplog/mmaplog/output"
)

// TestCloseReportsNothing: closing an output whose batches are all
// acknowledged is no failure: OnError hears nothing of its connections
// stopping, however the workers and Close interleave.
func TestCloseReportsNothing(t *testing.T) {
	var errs atomic.Int64
	var last atomic.Value
	for i := 0; i < 300; i++ {
		out, err := output.Open("stdout", &output.Options{Stdout: io.Discard, OnError: func(err error) {
			errs.Add(1)
			last.Store(err.Error())
		}})
		if err != nil {
			t.Fatal(err)
		}
		if err := out.Publish(context.Background(), output.NewBatch([][]byte{[]byte(`{"n":1}`)}, nil)); err != nil {
			t.Fatal(err)
		}
		if err := out.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n := errs.Load(); n > 0 {
		t.Fatalf("%d errors reported by closing outputs, the last: %v", n, last.Load())
	}
}
