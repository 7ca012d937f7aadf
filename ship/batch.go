package ship

import (
	"sort"
	"sync"
	"time"

	"github.com/mmaplog/mmaplog/tail"
)

// chunkSize is the unit of the shipper's memory for events.
const chunkSize = 64 << 10

// chunkPool is the number of free chunks kept for reuse (4 MiB).
const chunkPool = 64

// shipBatch is a batch of one log's events, and the output.Batch the log
// publishes. The events are encoded straight into chunks of the shipper's
// memory (chunkSize each, or one event's size where that is larger), each
// taken from the shared budget before an event is encoded into it, so that
// what the shipper holds for events is exactly what the budget counts, and
// an event is written once before the output reads it. Each event is
// followed by a newline, so that the newline-delimited outputs write the
// chunks as they are (output.Lines). Ack and Nack give the memory back.
type shipBatch struct {
	l      *logShipper
	chunks [][]byte // in order; events are encoded at the end of the last
	firsts []int    // index in events of the first event of each chunk
	events [][]byte // slices of the chunks, without their newlines
	size   int      // bytes of the events
	grant  int64    // budget bytes the chunks hold (their capacities)
	last   tail.Record
	logID  [16]byte
	sent   time.Time
}

// batchPool keeps batches, with the capacity of their slices, for reuse.
var batchPool = sync.Pool{New: func() any { return new(shipBatch) }}

func newShipBatch(l *logShipper) *shipBatch {
	b := batchPool.Get().(*shipBatch)
	b.l = l
	return b
}

// Events returns the batch's events (output.Batch).
func (b *shipBatch) Events() [][]byte { return b.events }

// Ack is called by the output once every event is acknowledged.
func (b *shipBatch) Ack() { b.l.ackBatch(b) }

// Nack is called by the output for a batch it never will acknowledge.
func (b *shipBatch) Nack(error) { b.l.nackBatch(b) }

// AppendLines appends the lines of events [i, j) as they lie in the
// chunks, a slice per chunk (output.Lines).
func (b *shipBatch) AppendLines(dst [][]byte, i, j int) [][]byte {
	k := sort.Search(len(b.firsts), func(k int) bool { return b.firsts[k] > i }) - 1
	for ; i < j; k++ {
		end := j
		if k+1 < len(b.firsts) {
			end = min(j, b.firsts[k+1])
		}
		off := 0
		for e := b.firsts[k]; e < i; e++ {
			off += len(b.events[e]) + 1
		}
		n := 0
		for e := i; e < end; e++ {
			n += len(b.events[e]) + 1
		}
		dst = append(dst, b.chunks[k][off:off+n:off+n])
		i = end
	}
	return dst
}

// room returns the bytes the last chunk has left.
func (b *shipBatch) room() int {
	if len(b.chunks) == 0 {
		return 0
	}
	c := b.chunks[len(b.chunks)-1]
	return cap(c) - len(c)
}

// addChunk makes c, taken from the budget, the chunk events go into.
func (b *shipBatch) addChunk(c []byte) {
	b.chunks = append(b.chunks, c)
	b.firsts = append(b.firsts, len(b.events))
	b.grant += int64(cap(c))
}

// dropEmptyChunk takes off the last chunk if no event went into it (one
// taken for an event that turned out larger), and returns it.
func (b *shipBatch) dropEmptyChunk() []byte {
	k := len(b.chunks) - 1
	if k < 0 || b.firsts[k] != len(b.events) {
		return nil
	}
	c := b.chunks[k]
	b.chunks[k] = nil
	b.chunks, b.firsts = b.chunks[:k], b.firsts[:k]
	b.grant -= int64(cap(c))
	return c
}

// encode encodes rec at the end of the last chunk, followed by a newline.
// Where the event does not fit in what the chunk has left, it returns the
// event, encoded in memory of its own, and false: the batch is unchanged.
func (b *shipBatch) encode(enc *Encoder, rec tail.Record) ([]byte, bool) {
	if b.room() < 2 {
		return enc.Append(nil, rec), false
	}
	k := len(b.chunks) - 1
	c := b.chunks[k]
	start := len(c)
	free := c[start : start : cap(c)-1] // the last byte kept for the newline
	ev := enc.Append(free, rec)
	if !sameMemory(ev, free) {
		return ev, false // it outgrew the chunk: append moved it
	}
	b.commit(k, start, len(ev))
	return nil, true
}

// appendEvent copies ev, and a newline, at the end of the last chunk,
// which has room for them.
func (b *shipBatch) appendEvent(ev []byte) {
	k := len(b.chunks) - 1
	start := len(b.chunks[k])
	b.chunks[k] = append(b.chunks[k], ev...)
	b.commit(k, start, len(ev))
}

// commit adds the event of n bytes at start in chunk k, and its newline.
func (b *shipBatch) commit(k, start, n int) {
	c := b.chunks[k][:start+n+1]
	c[start+n] = '\n'
	b.chunks[k] = c
	b.events = append(b.events, c[start:start+n:start+n])
	b.size += n
}

// sameMemory reports whether a starts where b does: an append to b did not
// move.
func sameMemory(a, b []byte) bool {
	return cap(a) > 0 && cap(b) > 0 && &a[:1][0] == &b[:1][0]
}

// free gives the batch's memory back (to the pool and the budget) and the
// batch to batchPool.
func (b *shipBatch) free(s *Shipper) {
	grant := b.grant
	for i, c := range b.chunks {
		s.recycle(c)
		b.chunks[i] = nil
	}
	clear(b.events)
	*b = shipBatch{chunks: b.chunks[:0], firsts: b.firsts[:0], events: b.events[:0]}
	batchPool.Put(b)
	s.budget.release(grant)
}

// chunk returns memory for events: a pooled chunk of chunkSize, or for a
// larger event one of its own.
func (s *Shipper) chunk(size int) []byte {
	if size == chunkSize {
		select {
		case c := <-s.chunks:
			return c[:0]
		default:
		}
	}
	return make([]byte, 0, size)
}

// recycle gives a chunk back to the pool (one of chunkSize; a larger one
// goes to the garbage collector).
func (s *Shipper) recycle(c []byte) {
	if cap(c) != chunkSize {
		return
	}
	select {
	case s.chunks <- c:
	default:
	}
}
