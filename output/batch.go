package output

// Batch is what a producer publishes: its events, and the calls by which
// the output says what became of them. A producer's batch type carries what
// it needs to act on the outcome (the shipper's: the memory the events lie
// in, the records they came from), so that nothing is made per batch but
// the batch itself.
type Batch interface {
	// Events returns the batch's events, each one JSON object without a
	// trailing newline. The output reads them until it calls Ack or Nack;
	// the producer must not change them before. Events is called once, by
	// Publish.
	Events() [][]byte
	// Ack is called once the receiver acknowledged every event of the
	// batch (outputs without acknowledgements: once it was written to the
	// connection or file; Kafka events over the size limit count as
	// acknowledged once dropped and reported), exactly once for every
	// batch Publish took, in the order they were published through the
	// same Publisher. It runs on one of the output's goroutines and must
	// not block. Once it is called the output no longer reads the events.
	Ack()
	// Nack is called instead of Ack for a batch Publish took that never
	// will be acknowledged: Close gave up waiting for it (err wraps
	// ErrClosed). The receivers may have some or all of its events. It is
	// called once the output's connections are closed, so that the output
	// no longer reads the events.
	Nack(err error)
}

// Lines is implemented by a Batch that keeps each of its events followed
// by a newline in its own memory, as the shipper lays them out: the
// newline-delimited outputs (tcp://, file://, stdout) then hand the lines
// to the kernel where they lie, with one vectored write, instead of
// copying them into a buffer first.
type Lines interface {
	// AppendLines appends to dst the newline-delimited JSON of events
	// [i, j) (indexes into Events): each event followed by a newline, as
	// slices of the batch's memory, one per run of events that lie end
	// to end. The output does not change the bytes.
	AppendLines(dst [][]byte, i, j int) [][]byte
}

// NewBatch returns a Batch of events whose Ack calls ack (nil: nothing) and
// whose Nack does nothing: for a producer with nothing to do but note the
// acknowledgement, such as one that waits for each batch in turn.
func NewBatch(events [][]byte, ack func()) Batch { return &funcBatch{events: events, ack: ack} }

type funcBatch struct {
	events [][]byte
	ack    func()
}

func (b *funcBatch) Events() [][]byte { return b.events }

func (b *funcBatch) Ack() {
	if b.ack != nil {
		b.ack()
	}
}

func (b *funcBatch) Nack(error) {}
