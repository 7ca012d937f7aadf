package output

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// batch is one published batch.
type batch struct {
	events [][]byte
	ack    func()
	bytes  int
}

// session is one connection of an output. send writes a batch; await waits
// for the acknowledgement of the oldest batch sent and not yet awaited (it
// runs on another goroutine than send, one batch at a time, in order); close
// breaks the connection, making a blocked send or await return.
type session interface {
	send(b *batch) error
	await(b *batch) error
	close() error
}

// engine is what every output shares: the window of unacknowledged batches,
// the sending goroutine, the acknowledging goroutine of each connection,
// reconnection with exponential backoff and jitter, and resending every
// unacknowledged batch on a new connection.
type engine struct {
	name    string
	opts    Options
	connect func(ctx context.Context) (session, error)
	c       counters

	slots chan struct{} // one token per batch in flight
	kick  chan struct{} // something was published

	mu      sync.Mutex
	pending []*batch // published and not acknowledged, oldest first
	unsent  int      // pending[unsent:] are not sent on the current connection
	closing bool
	drained chan struct{} // closed when closing and nothing is pending

	progress atomic.Bool // a batch was acknowledged since the last failure

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

func newEngine(name string, opts Options, connect func(ctx context.Context) (session, error)) *engine {
	e := &engine{
		name: name, opts: opts, connect: connect,
		slots:   make(chan struct{}, opts.Window),
		kick:    make(chan struct{}, 1),
		drained: make(chan struct{}),
		done:    make(chan struct{}),
	}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	go e.run()
	return e
}

func (e *engine) String() string { return e.name }

func (e *engine) Stats() Stats {
	s := e.c.stats()
	e.mu.Lock()
	s.Pending = len(e.pending)
	e.mu.Unlock()
	return s
}

// ErrClosed is returned by Publish after Close.
var ErrClosed = errors.New("output closed")

func (e *engine) Publish(ctx context.Context, events [][]byte, ack func()) error {
	if len(events) == 0 {
		if ack != nil {
			ack()
		}
		return nil
	}
	select {
	case e.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-e.done:
		return ErrClosed
	}
	b := &batch{events: events, ack: ack}
	for _, ev := range events {
		b.bytes += len(ev)
	}
	e.mu.Lock()
	if e.closing {
		e.mu.Unlock()
		<-e.slots
		return ErrClosed
	}
	e.pending = append(e.pending, b)
	e.mu.Unlock()
	select {
	case e.kick <- struct{}{}:
	default:
	}
	return nil
}

func (e *engine) Close(ctx context.Context) error {
	e.mu.Lock()
	if e.closing {
		e.mu.Unlock()
		<-e.done
		return ErrClosed
	}
	e.closing = true
	left := len(e.pending)
	if left == 0 {
		close(e.drained)
	}
	e.mu.Unlock()
	var err error
	select {
	case <-e.drained:
	case <-ctx.Done():
		e.mu.Lock()
		left = len(e.pending)
		e.mu.Unlock()
		err = fmt.Errorf("output %s: closed with %d batch(es) not acknowledged: %w", e.name, left, ctx.Err())
	}
	e.cancel()
	<-e.done
	return err
}

// acked is called by a connection's acknowledging goroutine for the oldest
// pending batch.
func (e *engine) acked(b *batch) {
	e.mu.Lock()
	if len(e.pending) == 0 || e.pending[0] != b {
		e.mu.Unlock()
		panic("output: acknowledgement out of order")
	}
	e.pending[0] = nil
	e.pending = e.pending[1:]
	e.unsent--
	if e.closing && len(e.pending) == 0 {
		close(e.drained)
	}
	e.mu.Unlock()
	e.c.events.Add(uint64(len(b.events)))
	e.c.bytes.Add(uint64(b.bytes))
	e.c.batches.Add(1)
	if b.ack != nil {
		b.ack()
	}
	<-e.slots
}

// run sends pending batches over a connection, making a new one (after a
// backoff) whenever the current one fails, and sending every unacknowledged
// batch again on it.
func (e *engine) run() {
	defer close(e.done)
	var (
		sess    session
		sent    chan *batch
		failed  chan error
		ackDone chan struct{}
		backoff time.Duration
	)
	drop := func(err error) {
		e.c.fail(fmt.Errorf("output %s: %w", e.name, err), e.opts.OnError)
		e.c.connected.Store(false)
		sess.close()
		close(sent)
		<-ackDone
		sess = nil
		e.mu.Lock()
		e.unsent = 0 // send everything not acknowledged again
		e.mu.Unlock()
	}
	defer func() {
		if sess != nil {
			e.c.connected.Store(false)
			sess.close()
			close(sent)
			<-ackDone
		}
	}()
	for {
		e.mu.Lock()
		var b *batch
		if e.unsent < len(e.pending) {
			b = e.pending[e.unsent]
		}
		e.mu.Unlock()
		if b == nil {
			select {
			case <-e.kick:
			case err := <-failed:
				drop(err)
				failed = nil
				backoff = e.next(backoff)
			case <-e.ctx.Done():
				return
			}
			continue
		}
		if sess == nil {
			if backoff > 0 {
				// Full jitter on the upper half: [d/2, d).
				d := backoff/2 + rand.N(backoff/2+1)
				select {
				case <-time.After(d):
				case <-e.ctx.Done():
					return
				}
			}
			s, err := e.connect(e.ctx)
			if err != nil {
				if e.ctx.Err() != nil {
					return
				}
				e.c.fail(fmt.Errorf("output %s: connect: %w", e.name, err), e.opts.OnError)
				backoff = e.next(backoff)
				continue
			}
			e.c.connects.Add(1)
			e.c.connected.Store(true)
			sess = s
			sent = make(chan *batch, e.opts.Window)
			failed = make(chan error, 1)
			ackDone = make(chan struct{})
			go e.acker(sess, sent, failed, ackDone)
		}
		select {
		case err := <-failed:
			drop(err)
			failed = nil
			backoff = e.next(backoff)
			continue
		default:
		}
		if err := sess.send(b); err != nil {
			drop(fmt.Errorf("send: %w", err))
			failed = nil
			backoff = e.next(backoff)
			continue
		}
		e.mu.Lock()
		e.unsent++
		e.mu.Unlock()
		sent <- b
	}
}

// next returns the backoff after a failure: it starts over at BackoffMin
// when a batch got through since the last failure, and doubles otherwise.
func (e *engine) next(d time.Duration) time.Duration {
	if e.progress.Swap(false) {
		return e.opts.BackoffMin
	}
	return min(max(2*d, e.opts.BackoffMin), e.opts.BackoffMax)
}

// acker waits for the acknowledgement of each batch sent on sess, in order.
func (e *engine) acker(sess session, sent <-chan *batch, failed chan<- error, done chan<- struct{}) {
	defer close(done)
	for b := range sent {
		if err := sess.await(b); err != nil {
			failed <- fmt.Errorf("waiting for acknowledgement: %w", err)
			sess.close() // unblock a send in progress
			for range sent {
			}
			return
		}
		e.progress.Store(true)
		e.acked(b)
	}
}
