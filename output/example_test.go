package output_test

import (
	"context"
	"fmt"

	"github.com/mmaplog/mmaplog/output"
)

// Publish batches of encoded JSON events; the callback says when the
// receiver has them (for stdout: when they are written).
func ExampleOpen() {
	out, err := output.Open("stdout", nil)
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	events := [][]byte{[]byte(`{"message":"one"}`), []byte(`{"message":"two"}`)}
	if err := out.Publish(ctx, output.NewBatch(events, func() { fmt.Println("acknowledged") })); err != nil {
		panic(err)
	}
	if err := out.Close(ctx); err != nil {
		panic(err)
	}
	// Output:
	// {"message":"one"}
	// {"message":"two"}
	// acknowledged
}
