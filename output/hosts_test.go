package output_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	lumber "github.com/elastic/go-lumber/server/v2"

	"github.com/mmaplog/mmaplog/output"
)

// host is a go-lumber server playing one Logstash: it records the "n" of
// every event it receives, and acknowledges each batch after delay, or
// never (stall: it sends only keepalives, as a Logstash whose pipeline is
// blocked does). While a test holds gate it acknowledges nothing.
type host struct {
	t       *testing.T
	srv     *lumber.Server
	addr    string
	delay   time.Duration
	stall   bool
	hold    *holdAt
	gate    sync.Mutex
	mu      sync.Mutex
	seen    map[int]int
	batches int
	largest int // events in the largest batch received
	done    chan struct{}
	once    sync.Once
}

// holdAt, shared by the hosts of a test, makes the first of them that has
// acknowledged n events acknowledge no more: it goes on taking batches and
// sending keepalives, as a host about to die. The test then kills it in
// the middle of the stream at a count, not at whatever moment the
// scheduler lets the test look.
type holdAt struct {
	n       int
	claimed atomic.Bool
	host    chan *host // the host that holds
}

func newHoldAt(n int) *holdAt { return &holdAt{n: n, host: make(chan *host, 1)} }

func startHost(t *testing.T, delay time.Duration, stall bool) *host {
	t.Helper()
	return startHostHolding(t, delay, stall, nil)
}

// startHostHolding is startHost with the hosts' holdAt (nil: none).
func startHostHolding(t *testing.T, delay time.Duration, stall bool, hold *holdAt) *host {
	t.Helper()
	l := listen(t, "127.0.0.1:0")
	srv, err := lumber.NewWithListener(l, lumber.Keepalive(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	h := &host{t: t, srv: srv, addr: l.Addr().String(), delay: delay, stall: stall, hold: hold, seen: map[int]int{}, done: make(chan struct{})}
	go func() {
		defer close(h.done)
		acked, holding := 0, false
		for b := range srv.ReceiveChan() {
			h.mu.Lock()
			h.batches++
			h.largest = max(h.largest, len(b.Events))
			for _, ev := range b.Events {
				m, _ := ev.(map[string]interface{})
				n, _ := m["n"].(float64)
				h.seen[int(n)]++
			}
			h.mu.Unlock()
			if h.stall || holding {
				continue
			}
			time.Sleep(h.delay)
			h.gate.Lock()
			h.gate.Unlock()
			b.ACK()
			acked += len(b.Events)
			if h.hold != nil && acked >= h.hold.n && h.hold.claimed.CompareAndSwap(false, true) {
				holding = true
				h.hold.host <- h
			}
		}
	}()
	t.Cleanup(h.kill)
	return h
}

// kill closes the server and its connections, as a Logstash that dies.
func (h *host) kill() {
	h.once.Do(func() {
		h.srv.Close()
		<-h.done
	})
}

func (h *host) counts() (events, batches int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.seen), h.batches
}

// union checks that every event in [0, n) reached one of the hosts.
func union(t *testing.T, n int, hosts ...*host) {
	t.Helper()
	all := map[int]bool{}
	for _, h := range hosts {
		h.mu.Lock()
		for k := range h.seen {
			all[k] = true
		}
		h.mu.Unlock()
	}
	for i := 0; i < n; i++ {
		if !all[i] {
			t.Fatalf("event %d reached no host (%d of %d did)", i, len(all), n)
		}
	}
}

// publishAsync publishes n events in batches of per on its own goroutine;
// the returned function waits for every acknowledgement (checking their
// order) and closes the output.
func publishAsync(t *testing.T, out output.Output, n, per int) func() {
	done := make(chan struct{})
	go func() {
		defer close(done)
		publish(t, out, n, per)
	}()
	return func() {
		select {
		case <-done:
		case <-time.After(3 * time.Minute):
			t.Fatalf("not every event acknowledged: %+v", out.Stats())
		}
	}
}

func hostURL(hosts ...*host) string {
	var as []string
	for _, h := range hosts {
		as = append(as, h.addr)
	}
	return "beats://" + strings.Join(as, ",")
}

// largestBatch returns the events in the largest batch h received, and
// starts counting anew.
func (h *host) largestBatch() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := h.largest
	h.largest = 0
	return n
}

func hostStats(out output.Output, h *host) output.HostStats {
	for _, hs := range out.Stats().Hosts {
		if hs.Host == h.addr {
			return hs
		}
	}
	return output.HostStats{}
}

// waitUntil polls cond; the deadline only catches a hang.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestFailover: three hosts, failover. The host in use is killed in the
// middle of the stream: the output goes on to another one, and every event
// arrives.
func TestFailover(t *testing.T) {
	// The first host to acknowledge 3000 events then holds the rest: the
	// stream cannot end before the test kills it.
	hold := newHoldAt(3000)
	hosts := []*host{startHostHolding(t, 0, false, hold), startHostHolding(t, 0, false, hold), startHostHolding(t, 0, false, hold)}
	// The holding host is killed, never timed out as stalled, however long
	// the test takes to get there.
	out, err := output.Open(hostURL(hosts...), &output.Options{Window: 16, BackoffMin: 10 * time.Millisecond, BackoffMax: 100 * time.Millisecond, Timeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	const n = 30000
	wait := publishAsync(t, out, n, 100)
	var first *host
	select {
	case first = <-hold.host:
	case <-time.After(2 * time.Minute):
		t.Fatal("no host acknowledged 3000 events")
	}
	for _, h := range hosts {
		if ev, _ := h.counts(); h != first && ev != 0 {
			t.Fatalf("failover sent to two hosts while the first was fine (%s got %d)", h.addr, ev)
		}
	}
	first.kill()
	wait()
	union(t, n, hosts...)
	used := 0
	for _, h := range hosts {
		if ev, _ := h.counts(); ev > 0 {
			used++
		}
	}
	if used < 2 {
		t.Fatal("no other host took over")
	}
	if hs := hostStats(out, first); hs.Errors == 0 {
		t.Fatalf("the killed host has no error counted: %+v", hs)
	}
}

// TestLoadbalance: three hosts under --loadbalance, two connections each:
// one is killed in the middle of the stream, one stalls (takes batches,
// sends keepalives, acknowledges nothing). Every event arrives: the
// windows the dead and the stalled host held are sent again elsewhere
// after the timeout; each live host received batches, and the healthy one
// acknowledged.
func TestLoadbalance(t *testing.T) {
	good, doomed, stalled := startHost(t, 0, false), startHost(t, 0, false), startHost(t, 0, true)
	out, err := output.Open(hostURL(good, doomed, stalled), &output.Options{Window: 64, Loadbalance: true, Workers: 2, Timeout: time.Second,
		BackoffMin: 10 * time.Millisecond, BackoffMax: 200 * time.Millisecond, BulkMaxSize: 200})
	if err != nil {
		t.Fatal(err)
	}
	const n = 40000
	wait := publishAsync(t, out, n, 100)
	waitUntil(t, "the doomed host to get 2000 events", func() bool { ev, _ := doomed.counts(); return ev >= 2000 })
	doomed.kill()
	wait()
	union(t, n, good, doomed)
	for _, h := range []*host{good, doomed, stalled} {
		if _, b := h.counts(); b == 0 {
			t.Errorf("host %s received no batch", h.addr)
		}
	}
	gs, ss := hostStats(out, good), hostStats(out, stalled)
	if gs.Acked == 0 || ss.Acked != 0 || ss.Sent == 0 || ss.Errors == 0 {
		t.Fatalf("host stats: good %+v, stalled %+v", gs, ss)
	}
	if last := fmt.Sprint(ss.LastError); !strings.Contains(last, "stalled") && !strings.Contains(last, "timeout") {
		t.Errorf("the stalled host's error does not say so: %s", ss.LastError)
	}
}

// TestSlowHostHoldsOnlyItsWindows (elastic/beats#12567): under
// --loadbalance a host that takes 200 ms per batch never has more than its
// pipeline's windows, and the fast host ships the rest meanwhile.
func TestSlowHostHoldsOnlyItsWindows(t *testing.T) {
	fast, slow := startHost(t, 0, false), startHost(t, 200*time.Millisecond, false)
	const bulk = 100
	out, err := output.Open(hostURL(fast, slow), &output.Options{Window: 64, Loadbalance: true, BulkMaxSize: bulk})
	if err != nil {
		t.Fatal(err)
	}
	const n = 20000
	var stop atomic.Bool
	var worst atomic.Uint64
	go func() {
		for !stop.Load() {
			hs := hostStats(out, slow)
			if d := hs.Sent - hs.Acked; d > worst.Load() {
				worst.Store(d)
			}
			time.Sleep(time.Millisecond)
		}
	}()
	publish(t, out, n, 50)
	stop.Store(true)
	union(t, n, fast, slow)
	fastN, _ := fast.counts()
	if limit := uint64(output.DefaultPipelining * bulk); worst.Load() > limit {
		t.Fatalf("the slow host had %d events unacknowledged, more than its pipeline (%d)", worst.Load(), limit)
	}
	if fastN < n/2 {
		t.Fatalf("the fast host got %d of %d events: the slow one held it up", fastN, n)
	}
	t.Logf("fast host %d events, slow host %d; the slow one held at most %d at once", fastN, n-fastN, worst.Load())
}

// TestBatchSplit: batches larger than BulkMaxSize go in several windows,
// none larger than BulkMaxSize; a batch is acknowledged once all its parts
// are, in order; and when the host in use dies with parts of batches in
// flight, they are sent again to another host and every event arrives.
func TestBatchSplit(t *testing.T) {
	a, b := startHost(t, time.Millisecond, false), startHost(t, time.Millisecond, false)
	const bulk = 64
	out, err := output.Open(hostURL(a, b), &output.Options{Window: 8, BulkMaxSize: bulk,
		BackoffMin: 10 * time.Millisecond, BackoffMax: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	const n = 20000
	wait := publishAsync(t, out, n, 1000) // 16 parts each, the last of 40
	var first *host
	waitUntil(t, "a first host to get 3000 events", func() bool {
		for _, h := range []*host{a, b} {
			if ev, _ := h.counts(); ev >= 3000 {
				first = h
				return true
			}
		}
		return false
	})
	first.kill()
	wait()
	union(t, n, a, b)
	for _, h := range []*host{a, b} {
		if l := h.largestBatch(); l > bulk {
			t.Errorf("host %s received a batch of %d events, more than BulkMaxSize %d", h.addr, l, bulk)
		}
	}
}

// TestSharedWindows: while two sources publish, windows hold at most
// SharedBulkMaxSize events; a source alone has windows of BulkMaxSize.
func TestSharedWindows(t *testing.T) {
	h := startHost(t, 0, false)
	const bulk, shared = 400, 50
	out, err := output.Open(hostURL(h), &output.Options{Window: 64, BulkMaxSize: bulk, SharedBulkMaxSize: shared})
	if err != nil {
		t.Fatal(err)
	}
	busy, quiet := out.NewSource(), out.NewSource()
	ctx := context.Background()
	pub := func(src output.Publisher, n int) {
		t.Helper()
		done := make(chan struct{})
		evs := make([][]byte, n)
		for i := range evs {
			evs[i] = []byte(fmt.Sprintf(`{"n":%d}`, i))
		}
		if err := src.Publish(ctx, output.NewBatch(evs, func() { close(done) })); err != nil {
			t.Fatal(err)
		}
		<-done
	}
	pub(busy, 4*bulk)
	if l := h.largestBatch(); l != bulk {
		t.Fatalf("a source alone: largest window %d events, want BulkMaxSize %d", l, bulk)
	}
	pub(quiet, 1)
	pub(busy, 4*bulk)
	if l := h.largestBatch(); l > shared {
		t.Fatalf("two sources: largest window %d events, want SharedBulkMaxSize %d at most", l, shared)
	}
	if err := out.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestSourcesFair: a busy source has a backlog queued; a quiet source's
// batches published then are sent next, not after the backlog: fewer than
// a couple of windows of the busy source are acknowledged between the
// publishing of the quiet source's last batch and its acknowledgement.
// A source's turn is counted in events: twenty batches of one event
// published at once (a quiet log's records, one batch each) go in one
// turn, not one per window.
func TestSourcesFair(t *testing.T) {
	for _, quietBatches := range []int{1, 20} {
		t.Run(fmt.Sprintf("quiet-batches-%d", quietBatches), func(t *testing.T) {
			testSourcesFair(t, quietBatches)
		})
	}
}

func testSourcesFair(t *testing.T, quietBatches int) {
	// Each window takes the host 20 ms, so that the busy backlog lasts;
	// the host acknowledges nothing while the quiet batches are published
	// (gate), so that they are published at once as far as its progress
	// goes, however long this goroutine takes over them.
	h := startHost(t, 20*time.Millisecond, false)
	const bulk = 100
	out, err := output.Open(hostURL(h), &output.Options{Window: 512, BulkMaxSize: bulk})
	if err != nil {
		t.Fatal(err)
	}
	busy, quiet := out.NewSource(), out.NewSource()
	var busyAcked atomic.Int64
	ctx := context.Background()
	const batches = 60
	for i := 0; i < batches; i++ {
		evs := make([][]byte, bulk)
		for j := range evs {
			evs[j] = []byte(fmt.Sprintf(`{"n":%d}`, i*bulk+j))
		}
		if err := busy.Publish(ctx, output.NewBatch(evs, func() { busyAcked.Add(bulk) })); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, "the busy source to get going", func() bool { return busyAcked.Load() >= 3*bulk })
	h.gate.Lock()
	before := busyAcked.Load()
	acked := make(chan int64, 1)
	for i := 0; i < quietBatches; i++ {
		ack := func() {}
		if i == quietBatches-1 {
			ack = func() { acked <- busyAcked.Load() }
		}
		if err := quiet.Publish(ctx, output.NewBatch([][]byte{[]byte(fmt.Sprintf(`{"n":%d}`, -1-i))}, ack)); err != nil {
			h.gate.Unlock()
			t.Fatal(err)
		}
	}
	h.gate.Unlock()
	var after int64
	select {
	case after = <-acked:
	case <-time.After(2 * time.Minute):
		t.Fatal("the quiet source's batch was never acknowledged")
	}
	if err := out.Close(ctx); err != nil {
		t.Fatal(err)
	}
	ahead := after - before
	// Ahead of it: the windows on the connection when it was published,
	// and the busy batch that goes with it in its window.
	if limit := int64(output.DefaultPipelining+2) * bulk; ahead > limit {
		t.Fatalf("%d events of the busy source were acknowledged before the quiet one's last (limit %d, backlog %d)", ahead, limit, batches*bulk-before)
	}
	t.Logf("%d busy events acknowledged between the quiet batches' publishing and their acknowledgement (backlog was %d)", ahead, batches*bulk-before)
}

// TestSourcesOrder: several sources publishing at once through two hosts,
// one of them slow: each source's acknowledgements come in its own order.
func TestSourcesOrder(t *testing.T) {
	fast, slow := startHost(t, 0, false), startHost(t, 20*time.Millisecond, false)
	out, err := output.Open(hostURL(fast, slow), &output.Options{Window: 256, Loadbalance: true, BulkMaxSize: 64})
	if err != nil {
		t.Fatal(err)
	}
	const sources, per, batches = 4, 16, 100
	var wg sync.WaitGroup
	for s := 0; s < sources; s++ {
		src := out.NewSource()
		wg.Add(1)
		go func(s int) {
			defer wg.Done()
			next := 0
			var mu sync.Mutex
			for i := 0; i < batches; i++ {
				evs := make([][]byte, per)
				for j := range evs {
					evs[j] = []byte(fmt.Sprintf(`{"n":%d}`, (s*batches+i)*per+j))
				}
				i := i
				if err := src.Publish(context.Background(), output.NewBatch(evs, func() {
					mu.Lock()
					defer mu.Unlock()
					if i != next {
						t.Errorf("source %d: acknowledgement of batch %d, expected %d", s, i, next)
					}
					next = i + 1
				})); err != nil {
					t.Error(err)
					return
				}
			}
		}(s)
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := out.Close(ctx); err != nil {
		t.Fatal(err)
	}
	union(t, sources*batches*per, fast, slow)
}
