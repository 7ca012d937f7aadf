package ship

import (
	"context"
	"sync"
)

// budget is the memory all the logs of a shipper share for events in flight
// (read and encoded, and not yet acknowledged and saved): a semaphore of
// bytes whose waiters are served in the order they came, so that a log that
// ships flat out cannot keep a quiet one waiting for more than the next
// release.
type budget struct {
	mu      sync.Mutex
	total   int64
	avail   int64
	waiters []*budgetWaiter
}

type budgetWaiter struct {
	n     int64
	ready chan struct{}
}

func newBudget(n int64) *budget { return &budget{total: n, avail: n} }

// acquire waits until n bytes are available and takes them. n larger than
// the whole budget (one event larger than it) waits until all of it is
// available, and takes it and the excess, the budget going below zero as
// with force: otherwise it would wait for ever.
func (b *budget) acquire(ctx context.Context, n int64) error {
	if over := n - b.total; over > 0 {
		if err := b.acquire(ctx, b.total); err != nil {
			return err
		}
		b.force(over)
		return nil
	}
	b.mu.Lock()
	if len(b.waiters) == 0 && b.avail >= n {
		b.avail -= n
		b.mu.Unlock()
		return nil
	}
	w := &budgetWaiter{n: n, ready: make(chan struct{})}
	b.waiters = append(b.waiters, w)
	b.mu.Unlock()
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
		b.mu.Lock()
		select {
		case <-w.ready:
			// Granted meanwhile: give it back.
			b.avail += n
			b.grant()
		default:
			for i, x := range b.waiters {
				if x == w {
					b.waiters = append(b.waiters[:i], b.waiters[i+1:]...)
					break
				}
			}
			b.grant() // a smaller waiter behind may fit now
		}
		b.mu.Unlock()
		return ctx.Err()
	}
}

// tryAcquire takes n bytes if they are available and nobody waits.
func (b *budget) tryAcquire(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.waiters) == 0 && b.avail >= n {
		b.avail -= n
		return true
	}
	return false
}

// force takes n bytes whether or not they are available (one event larger
// than what a batch was granted): the budget may go below zero, and later
// acquisitions wait until it is back.
func (b *budget) force(n int64) {
	b.mu.Lock()
	b.avail -= n
	b.mu.Unlock()
}

// release gives n bytes back.
func (b *budget) release(n int64) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	b.avail += n
	b.grant()
	b.mu.Unlock()
}

// grant serves the waiters in order while they fit (under mu).
func (b *budget) grant() {
	for len(b.waiters) > 0 && b.avail >= b.waiters[0].n {
		w := b.waiters[0]
		b.waiters[0] = nil
		b.waiters = b.waiters[1:]
		b.avail -= w.n
		close(w.ready)
	}
}
