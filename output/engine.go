package output

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// The engine is what every output shares: the queue of published batches,
// taken from the sources in turn; the hosts and their connections
// (workers), each pulling windows of batches from the queue while it has
// room in its pipeline; failover and load balancing; reconnection with
// exponential backoff and jitter; sending every unacknowledged window
// again, to another host where there is one; and handing acknowledgements
// back to each source in its own publishing order.
//
// Pulling is what keeps a slow host from holding up the others
// (elastic/beats#12567): a connection takes a window only when its own
// pipeline has room, so a host that does not acknowledge holds at most its
// pipeline's windows, and those are sent elsewhere once it is found dead or
// stalled (Options.Timeout).

// batch is one published batch.
type batch struct {
	src    *source
	seq    uint64 // position in its source's publishing order
	pub    Batch  // the publisher's
	lines  Lines  // pub, where it keeps its events as lines; nil otherwise
	events [][]byte
	bytes  int
	parts  int  // parts not acknowledged yet (queued or in windows)
	done   bool // acknowledged by a receiver; its Ack may wait for earlier batches of its source
}

// part is a run of a batch's events that goes in one window: the whole
// batch, or a piece of it where the batch did not fit in the window's room.
type part struct {
	b      *batch
	off    int // index in b.events of events[0]
	events [][]byte
}

// before orders a source's parts: by batch, then by position in the batch.
func (p *part) before(q *part) bool {
	if p.b.seq != q.b.seq {
		return p.b.seq < q.b.seq
	}
	return p.off < q.off
}

// window is what one connection sends, and has acknowledged, as one unit:
// the parts of one or more batches, BulkMaxSize events at most (fewer while
// sources share the output: see engine.limit).
type window struct {
	parts  []*part
	events int
	state  any // the session's own, for asynchronous outputs (Kafka)
}

// each calls fn with every event of the window, in order.
func (w *window) each(fn func(ev []byte)) {
	for _, p := range w.parts {
		for _, ev := range p.events {
			fn(ev)
		}
	}
}

// source is one publishing order.
type source struct {
	e      *engine
	unsent []*part  // waiting to be sent (again), in order
	order  []*batch // published and not acknowledged to the publisher yet, in order
	ready  bool     // in e.ready
	next   uint64
	last   time.Time // when it last published
}

func (s *source) Publish(ctx context.Context, b Batch) error {
	return s.e.publish(ctx, s, b)
}

// Close lets the output forget a source that publishes no more, once every
// batch it published was acknowledged (a shipper's log that was let go):
// the output keeps no trace of the sources that came and went.
func (s *source) Close() {
	e := s.e
	e.mu.Lock()
	if len(s.order) == 0 && len(s.unsent) == 0 && !s.ready {
		e.sources = slices.DeleteFunc(e.sources, func(x *source) bool { return x == s })
	}
	e.mu.Unlock()
}

// session is one connection to a host. send writes a window; await waits
// for the acknowledgement of the oldest window sent and not yet awaited (it
// runs on another goroutine than send, one window at a time, in order);
// close breaks the connection, making a blocked send or await return.
type session interface {
	send(w *window) error
	await(w *window) error
	close() error
}

// host is one address of an output.
type host struct {
	addr    string
	index   int
	connect func(ctx context.Context) (session, error)
	c       hostCounters
}

// worker is one connection's state, guarded by engine.mu.
type worker struct {
	h        *host
	windows  []*window // sent (or being sent) and not acknowledged, in order
	broken   bool
	err      error
	progress atomic.Bool // a window was acknowledged on this connection
}

type engine struct {
	name  string
	opts  Options
	hosts []*host

	mu       sync.Mutex
	cond     *sync.Cond
	ready    []*source // sources with batches waiting, taken from in turn
	sources  []*source // every source, for limit
	rate     ackRate   // events acknowledged per second, for limit
	rr       int
	pending  int // batches published whose ack has not been called
	closing  bool
	stopping bool
	active   int // failover: the host in use
	drained  chan struct{}

	slots chan struct{} // one token per pending batch (Window)
	ackMu sync.Mutex    // serializes ack callbacks, keeping each source's order
	acks  []*batch      // scratch of ackWindow, under ackMu

	def                             *source
	events, bytes, batches, dropped atomic.Uint64
	// hostConnected, if set, says how many connections a host has up
	// (Kafka: the client's broker connections) instead of the sessions.
	hostConnected func(h *host) int

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	done   chan struct{}
}

// connectTo makes one session with the host addr, as a worker would.
func (e *engine) connectTo(ctx context.Context, addr string) (session, error) {
	for _, h := range e.hosts {
		if h.addr == addr {
			return h.connect(ctx)
		}
	}
	return nil, fmt.Errorf("output %s: no host %s", e.name, addr)
}

// newEngine starts an output over hosts, each with opts.Workers
// connections made by connect.
func newEngine(name string, opts Options, hosts []string, workers int, connect func(ctx context.Context, addr string) (session, error)) *engine {
	e := &engine{
		name: name, opts: opts,
		slots:   make(chan struct{}, opts.Window),
		drained: make(chan struct{}),
		done:    make(chan struct{}),
	}
	e.cond = sync.NewCond(&e.mu)
	e.def = &source{e: e}
	e.sources = append(e.sources, e.def)
	e.ctx, e.cancel = context.WithCancel(context.Background())
	for i, a := range hosts {
		h := &host{addr: a, index: i}
		h.connect = func(ctx context.Context) (session, error) { return connect(ctx, h.addr) }
		e.hosts = append(e.hosts, h)
	}
	if len(hosts) > 1 {
		e.active = rand.IntN(len(hosts))
	}
	for _, h := range e.hosts {
		for range workers {
			e.wg.Add(1)
			go e.worker(&worker{h: h})
		}
	}
	return e
}

func (e *engine) String() string { return e.name }

func (e *engine) NewSource() Publisher {
	s := &source{e: e}
	e.mu.Lock()
	e.sources = append(e.sources, s)
	e.mu.Unlock()
	return s
}

func (e *engine) Stats() Stats {
	s := Stats{Events: e.events.Load(), Bytes: e.bytes.Load(), Batches: e.batches.Load(), Dropped: e.dropped.Load()}
	var last error
	for _, h := range e.hosts {
		hs := h.c.stats(h.addr)
		if e.hostConnected != nil {
			hs.Connected = e.hostConnected(h)
		}
		s.Hosts = append(s.Hosts, hs)
		s.Connects += hs.Connects
		s.Errors += hs.Errors
		s.Connected = s.Connected || hs.Connected > 0
		if hs.LastError != nil {
			last = hs.LastError
		}
	}
	s.LastError = last
	e.mu.Lock()
	s.Pending = e.pending
	e.mu.Unlock()
	return s
}

// ErrClosed is returned by Publish after Close.
var ErrClosed = errors.New("output closed")

func (e *engine) Publish(ctx context.Context, b Batch) error {
	return e.publish(ctx, e.def, b)
}

func (e *engine) publish(ctx context.Context, src *source, pub Batch) error {
	events := pub.Events()
	if len(events) == 0 {
		pub.Ack()
		return nil
	}
	select {
	case e.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-e.done:
		return ErrClosed
	}
	b := &batch{src: src, pub: pub, events: events}
	b.lines, _ = pub.(Lines)
	for _, ev := range events {
		b.bytes += len(ev)
	}
	e.mu.Lock()
	if e.closing {
		e.mu.Unlock()
		<-e.slots
		return ErrClosed
	}
	b.seq = src.next
	src.next++
	b.parts = 1
	src.last = time.Now()
	src.order = append(src.order, b)
	src.unsent = append(src.unsent, &part{b: b, events: events})
	if !src.ready {
		// At the end of the round: a source that is put first whenever
		// it had nothing waiting would be a busy source whose every
		// batch is taken as soon as it is published, ahead of the
		// others every time.
		src.ready = true
		e.ready = append(e.ready, src)
	}
	e.pending++
	e.cond.Broadcast()
	e.mu.Unlock()
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
	if e.pending == 0 {
		close(e.drained)
	}
	e.mu.Unlock()
	var err error
	select {
	case <-e.drained:
	case <-ctx.Done():
		e.mu.Lock()
		left := e.pending
		e.mu.Unlock()
		err = fmt.Errorf("output %s: closed with %d batch(es) not acknowledged: %w", e.name, left, ctx.Err())
	}
	// The context first: a worker that sees stopping then finds it done,
	// and stops without reporting its connection's end as a failure.
	e.cancel()
	e.mu.Lock()
	e.stopping = true
	e.cond.Broadcast()
	e.mu.Unlock()
	e.wg.Wait()
	e.nackLeft()
	close(e.done)
	return err
}

// nackLeft calls Nack on the batches left unacknowledged when Close gave
// up, each source's in its order, once no connection reads them any more.
func (e *engine) nackLeft() {
	e.mu.Lock()
	var left []*batch
	for _, s := range e.sources {
		left = append(left, s.order...)
		clear(s.order)
		s.order, s.unsent, s.ready = s.order[:0], nil, false
	}
	e.ready = nil
	e.pending -= len(left)
	e.mu.Unlock()
	for _, b := range left {
		b.pub.Nack(fmt.Errorf("output %s: closed before the batch of %d event(s) was acknowledged: %w", e.name, len(b.events), ErrClosed))
	}
}

// mayUse reports whether h's connections may take windows now (under mu).
func (e *engine) mayUse(h *host) bool { return e.opts.Loadbalance || e.active == h.index }

// shareSpan is how recently a source must have published to count as
// sharing the output (limit).
const shareSpan = 5 * time.Second

// shareWindowTime is how long the receivers take to acknowledge a window
// while sources share the output (limit), and minShared the fewest events
// such a window is cut to.
const (
	shareWindowTime = time.Millisecond
	minShared       = 64
)

// limit is the most events take puts in a window (under mu): BulkMaxSize
// for a source alone. While another source has batches waiting or has
// published within shareSpan, the windows are kept short: every window
// already in flight when a quiet source's batch comes is one it waits for.
// They then hold what the receivers acknowledge in shareWindowTime, by the
// rate measured, between minShared and SharedBulkMaxSize events: short
// where the receivers are slow, where each event in a window costs the
// quiet source's the most, and no shorter than needed where they are fast.
func (e *engine) limit(now time.Time) int {
	if e.opts.SharedBulkMaxSize >= e.opts.BulkMaxSize || len(e.sources) < 2 || !e.shared(now) {
		return e.opts.BulkMaxSize
	}
	n := e.opts.SharedBulkMaxSize
	if r := e.rate.perSecond; r > 0 {
		n = min(n, max(int(r*shareWindowTime.Seconds()), minShared))
	}
	return n
}

// shared reports whether more than one source has batches waiting or has
// published within shareSpan (under mu).
func (e *engine) shared(now time.Time) bool {
	if len(e.ready) > 1 {
		return true
	}
	n := 0
	for _, s := range e.sources {
		if !s.last.IsZero() && now.Sub(s.last) < shareSpan {
			if n++; n > 1 {
				return true
			}
		}
	}
	return false
}

// ackRate estimates the events acknowledged per second, all hosts
// together, over spans of at least ackRateSpan (a moving average); a span
// longer than a second (the output was idle) starts it over.
type ackRate struct {
	perSecond float64
	events    int
	since     time.Time
}

const ackRateSpan = 50 * time.Millisecond

func (r *ackRate) add(now time.Time, events int) {
	d := now.Sub(r.since)
	switch {
	case r.since.IsZero() || d > time.Second:
		r.events, r.since = events, now
		return
	case d < ackRateSpan:
		r.events += events
		return
	}
	v := float64(r.events+events) / d.Seconds()
	if r.perSecond == 0 {
		r.perSecond = v
	} else {
		r.perSecond += (v - r.perSecond) / 4
	}
	r.events, r.since = 0, now
}

// take removes the next window from the queue (under mu). The sources
// with batches waiting take turns: in its turn a source gives its oldest
// batches until the window is full (limit), the batch that overfills it
// split and the rest left first in the source's queue, and the next window
// starts with the next source. A source's turn is counted in events, not
// batches, so that a quiet log publishing a batch of one event every
// millisecond is not held to one batch per window behind a busy one
// publishing BulkMaxSize events per batch; and a window is filled up from
// the next source, so that a quiet source's few events ride with a busy
// source's instead of taking a pipeline slot as a window of their own.
func (e *engine) take() *window {
	w := &window{}
	limit := e.limit(time.Now())
	for len(e.ready) > 0 && w.events < limit {
		if e.rr >= len(e.ready) {
			e.rr = 0
		}
		src := e.ready[e.rr]
		for len(src.unsent) > 0 && w.events < limit {
			p := src.unsent[0]
			if room := limit - w.events; len(p.events) > room {
				head := &part{b: p.b, off: p.off, events: p.events[:room:room]}
				p.off += room
				p.events = p.events[room:]
				p.b.parts++
				p = head
			} else {
				src.unsent[0] = nil
				src.unsent = src.unsent[1:]
			}
			w.parts = append(w.parts, p)
			w.events += len(p.events)
		}
		if len(src.unsent) == 0 {
			src.ready = false
			e.ready = slices.Delete(e.ready, e.rr, e.rr+1)
		} else {
			e.rr++
		}
	}
	return w
}

// requeue puts the parts of windows that were not acknowledged back into
// their sources' queues, in order (under mu).
func (e *engine) requeue(ws []*window) {
	for _, w := range ws {
		for _, p := range w.parts {
			src := p.b.src
			i, _ := slices.BinarySearchFunc(src.unsent, p, func(x, p *part) int {
				switch {
				case x.before(p):
					return -1
				case p.before(x):
					return 1
				}
				return 0
			})
			src.unsent = slices.Insert(src.unsent, i, p)
			if !src.ready {
				src.ready = true
				e.ready = append(e.ready, src)
			}
		}
	}
	e.cond.Broadcast()
}

// ackWindow hands w's acknowledgement to the publishers: each batch is
// done, and every source whose oldest batches are done gets their acks, in
// its order.
func (e *engine) ackWindow(h *host, w *window) {
	h.c.acked.Add(uint64(w.events))
	e.ackMu.Lock()
	e.mu.Lock()
	e.rate.add(time.Now(), w.events)
	for _, p := range w.parts {
		if p.b.parts--; p.b.parts == 0 {
			p.b.done = true
		}
	}
	calls := e.acks[:0]
	for _, p := range w.parts {
		src := p.b.src
		for len(src.order) > 0 && src.order[0].done {
			calls = append(calls, src.order[0])
			src.order[0] = nil
			src.order = src.order[1:]
		}
	}
	e.pending -= len(calls)
	if e.closing && e.pending == 0 {
		close(e.drained)
	}
	e.mu.Unlock()
	for _, b := range calls {
		e.events.Add(uint64(len(b.events)))
		e.bytes.Add(uint64(b.bytes))
		e.batches.Add(1)
		b.pub.Ack()
	}
	n := len(calls)
	clear(calls)
	e.acks = calls
	e.ackMu.Unlock()
	for range n {
		<-e.slots
	}
}

// hostFailed moves failover on to the next host after a failure of h.
func (e *engine) hostFailed(h *host) {
	e.mu.Lock()
	if !e.opts.Loadbalance && len(e.hosts) > 1 && e.active == h.index {
		e.active = (h.index + 1) % len(e.hosts)
		e.cond.Broadcast()
	}
	e.mu.Unlock()
}

// others reports whether another host could take a stalled host's windows.
func (e *engine) others() bool { return len(e.hosts) > 1 }

// worker is one connection to wk.h: it connects when there is work for its
// host, serves until the connection fails, and reconnects after a backoff.
func (e *engine) worker(wk *worker) {
	defer e.wg.Done()
	h := wk.h
	var backoff time.Duration
	for {
		e.mu.Lock()
		for !e.stopping && !(len(e.ready) > 0 && e.mayUse(h)) {
			e.cond.Wait()
		}
		stop := e.stopping
		e.mu.Unlock()
		if stop {
			return
		}
		if backoff > 0 {
			// Full jitter on the upper half: [d/2, d).
			d := backoff/2 + rand.N(backoff/2+1)
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-e.ctx.Done():
				t.Stop()
				return
			}
		}
		sess, err := h.connect(e.ctx)
		if err != nil {
			if e.ctx.Err() != nil {
				return
			}
			h.c.fail(fmt.Errorf("output %s: %s: connect: %w", e.name, h.addr, err), e.opts.OnError)
			e.hostFailed(h)
			backoff = e.next(backoff, false)
			continue
		}
		if st, ok := sess.(interface{ setOthers(func() bool) }); ok {
			st.setOthers(e.others)
		}
		h.c.connects.Add(1)
		h.c.connected.Add(1)
		err = e.serve(wk, sess)
		h.c.connected.Add(-1)
		if e.ctx.Err() != nil {
			return
		}
		h.c.fail(fmt.Errorf("output %s: %s: %w", e.name, h.addr, err), e.opts.OnError)
		e.hostFailed(h)
		backoff = e.next(backoff, wk.progress.Swap(false))
	}
}

// next returns the backoff after a failure: BackoffMin when the connection
// got a window acknowledged, doubling otherwise.
func (e *engine) next(d time.Duration, progress bool) time.Duration {
	if progress {
		return e.opts.BackoffMin
	}
	return min(max(2*d, e.opts.BackoffMin), e.opts.BackoffMax)
}

// serve sends windows on sess while its pipeline has room, until the
// connection fails or the output stops; then it puts what was not
// acknowledged back into the queue and returns why it stopped.
func (e *engine) serve(wk *worker, sess session) error {
	depth := e.opts.Pipelining
	sent := make(chan *window, depth)
	ackerDone := make(chan struct{})
	go func() {
		defer close(ackerDone)
		for w := range sent {
			if err := sess.await(w); err != nil {
				e.mu.Lock()
				if !wk.broken {
					wk.broken, wk.err = true, fmt.Errorf("waiting for acknowledgement: %w", err)
				}
				e.cond.Broadcast()
				e.mu.Unlock()
				sess.close() // unblock a send in progress
				for range sent {
				}
				return
			}
			wk.progress.Store(true)
			e.mu.Lock()
			wk.windows[0] = nil
			wk.windows = wk.windows[1:]
			e.cond.Broadcast()
			e.mu.Unlock()
			e.ackWindow(wk.h, w)
		}
	}()
	h := wk.h
	for {
		e.mu.Lock()
		for !e.stopping && !wk.broken && !(len(wk.windows) < depth && len(e.ready) > 0 && e.mayUse(h)) {
			e.cond.Wait()
		}
		if e.stopping || wk.broken {
			e.mu.Unlock()
			break
		}
		w := e.take()
		wk.windows = append(wk.windows, w)
		e.mu.Unlock()
		if err := sess.send(w); err != nil {
			e.mu.Lock()
			if !wk.broken {
				wk.broken, wk.err = true, fmt.Errorf("send: %w", err)
			}
			e.mu.Unlock()
			break
		}
		h.c.sent.Add(uint64(w.events))
		sent <- w
	}
	close(sent)
	sess.close()
	<-ackerDone
	e.mu.Lock()
	err := wk.err
	if err == nil {
		err = errors.New("stopped")
	}
	if !e.stopping {
		e.requeue(wk.windows)
	}
	clear(wk.windows)
	wk.windows, wk.broken, wk.err = wk.windows[:0], false, nil
	e.mu.Unlock()
	return err
}
