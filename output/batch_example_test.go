package output_test

import (
	"context"
	"fmt"

	"github.com/mmaplog/mmaplog/output"
)

// positionBatch is a producer's batch: its events, and the position its
// producer may move to once they are delivered.
type positionBatch struct {
	events [][]byte
	next   int        // the position after the batch's last event
	acked  chan<- int // where the producer learns it
}

func (b *positionBatch) Events() [][]byte { return b.events }
func (b *positionBatch) Ack()             { b.acked <- b.next }
func (b *positionBatch) Nack(err error)   { fmt.Println("not delivered:", err) }

// A producer's own Batch type carries what the producer does once the
// batch is delivered (moving a position on, taking back the events'
// memory), instead of a closure per batch.
func ExampleBatch() {
	out, err := output.Open("stdout", nil)
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	acked := make(chan int, 2)
	for _, b := range []struct {
		events [][]byte
		next   int
	}{
		{[][]byte{[]byte(`{"n":1}`), []byte(`{"n":2}`)}, 3},
		{[][]byte{[]byte(`{"n":3}`)}, 4},
	} {
		if err := out.Publish(ctx, &positionBatch{events: b.events, next: b.next, acked: acked}); err != nil {
			panic(err)
		}
	}
	if err := out.Close(ctx); err != nil {
		panic(err)
	}
	fmt.Println("delivered up to", <-acked, "then", <-acked)
	// Output:
	// {"n":1}
	// {"n":2}
	// {"n":3}
	// delivered up to 3 then 4
}
