//go:build linux

package counter_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mmaplog/mmaplog/counter"
	"github.com/mmaplog/mmaplog/internal/fault"
	"github.com/mmaplog/mmaplog/internal/shmtest"
	"github.com/mmaplog/mmaplog/internal/testutil"
	"github.com/mmaplog/mmaplog/region"
)

func TestMain(m *testing.M) {
	switch os.Getenv("MMAPLOG_COUNTER_CHILD") {
	case "produce":
		produceChild()
		return
	case "collect":
		collectChild()
		return
	case "truncated":
		truncatedChild()
		return
	case "closetrunc":
		closeTruncChild()
		return
	}
	testutil.VerifyTestMain(m)
}

func anonMap(t testing.TB, s *counter.Shape) *counter.Map {
	t.Helper()
	m, err := counter.Open("anon:", s, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Remove() })
	return m
}

func TestAddIncCounter(t *testing.T) {
	m := anonMap(t, &counter.Shape{Rules: 10, Metrics: 4})
	m.Inc(3, 2)
	m.Add(3, 2, 40)
	c, err := m.Counter(9, 3)
	if err != nil {
		t.Fatal(err)
	}
	c.Inc()
	c.Add(6)
	if m.Load(3, 2) != 41 || m.Load(9, 3) != 7 || c.Load() != 7 || m.Load(0, 0) != 0 {
		t.Fatalf("loads: %d %d %d", m.Load(3, 2), m.Load(9, 3), c.Load())
	}
	// Outside the shape: nothing added anywhere, each call counted.
	m.Add(10, 0, 5)
	m.Inc(0, 4)
	m.Inc(-1, 0)
	if m.Overflow() != 3 {
		t.Fatalf("overflow %d, want 3", m.Overflow())
	}
	if _, err := m.Counter(0, 4); err == nil {
		t.Fatal("got a handle outside the shape")
	}
	ds, err := m.Peek()
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 3 || ds[0].Total != 41 || ds[1].Total != 7 || !ds[2].Overflow || ds[2].Value != 3 {
		t.Fatalf("peek: %+v", ds)
	}
}

func TestZeroAllocs(t *testing.T) {
	m := anonMap(t, nil)
	c, _ := m.Counter(1, 1)
	if n := testing.AllocsPerRun(1000, func() { m.Inc(5, 7); m.Add(1023, 127, 3); c.Inc() }); n != 0 {
		t.Fatalf("%v allocations per Add/Inc", n)
	}
}

func TestNames(t *testing.T) {
	m := anonMap(t, &counter.Shape{Rules: 4, Metrics: 4})
	if err := m.Describe(1, "http_requests", "route", "/api", "method", "GET"); err != nil {
		t.Fatal(err)
	}
	if err := m.NameMetric(2, "status_5xx"); err != nil {
		t.Fatal(err)
	}
	name, labels := m.RuleName(1)
	if name != "http_requests" || len(labels) != 2 || labels[0] != (counter.Label{Name: "route", Value: "/api"}) || labels[1].Value != "GET" {
		t.Fatalf("rule 1: %q %v", name, labels)
	}
	if m.MetricName(2) != "status_5xx" || m.MetricName(1) != "" {
		t.Fatalf("metric names %q %q", m.MetricName(2), m.MetricName(1))
	}
	// Renaming replaces.
	m.Describe(1, "renamed")
	if n, l := m.RuleName(1); n != "renamed" || l != nil {
		t.Fatalf("after rename: %q %v", n, l)
	}
	if err := m.Describe(0, strings.Repeat("x", 57)); err == nil {
		t.Fatal("a name longer than the slot was accepted")
	}
	if err := m.Describe(0, "n", "odd"); err == nil {
		t.Fatal("labels without a value were accepted")
	}
	if err := m.Describe(4, "n"); err == nil {
		t.Fatal("a rule outside the shape was named")
	}
	noNames := anonMap(t, &counter.Shape{Rules: 1, Metrics: 1, NameSize: -1})
	if err := noNames.Describe(0, "x"); !errors.Is(err, counter.ErrNoNames) {
		t.Fatalf("naming in a map without name slots: %v", err)
	}
}

// TestNamesConcurrent: readers never see a torn name while writers in
// other goroutines rename the slot.
func TestNamesConcurrent(t *testing.T) {
	m := anonMap(t, &counter.Shape{Rules: 1, Metrics: 1})
	names := []string{"a", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "cccccc"}
	m.Describe(0, names[0], "k", names[0])
	var stop atomic.Bool
	var wg sync.WaitGroup
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				m.Describe(0, names[(w+i)%3], "k", names[(w+i)%3])
			}
		}(w)
	}
	for i := 0; i < 20000; i++ {
		n, l := m.RuleName(0)
		if n == "" {
			continue // busy slot: retried later
		}
		if (n != names[0] && n != names[1] && n != names[2]) || len(l) != 1 || l[0].Value != n {
			stop.Store(true)
			wg.Wait()
			t.Fatalf("torn read: %q %v", n, l)
		}
	}
	stop.Store(true)
	wg.Wait()
}

func TestOpenSharesAndChecksShape(t *testing.T) {
	url := "shm:" + shmtest.ShmName(t)
	shape := &counter.Shape{Rules: 8, Metrics: 8, Padded: true}
	// Many goroutines open at once: one creates, every one gets the same map.
	var wg sync.WaitGroup
	maps := make([]*counter.Map, 8)
	errs := make([]error, 8)
	for i := range maps {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			maps[i], errs[i] = counter.Open(url, shape, nil)
		}(i)
	}
	wg.Wait()
	created := 0
	for i, m := range maps {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if m.Created() {
			created++
		}
		m.Inc(7, 7)
	}
	full := counter.Shape{Rules: 8, Metrics: 8, Padded: true, NameSize: 64}
	if created != 1 || maps[0].Load(7, 7) != 8 || maps[0].Shape() != full {
		t.Fatalf("created %d times, value %d, shape %v", created, maps[0].Load(7, 7), maps[0].Shape())
	}
	if _, err := counter.Open(url, &counter.Shape{Rules: 8, Metrics: 9}, nil); !errors.Is(err, counter.ErrShape) {
		t.Fatalf("open with another shape: %v, want ErrShape", err)
	}
	any, err := counter.Open(url, nil, nil) // nil: whatever is there
	if err != nil || any.Shape() != full {
		t.Fatalf("open with nil shape: %v %v", any, err)
	}
	any.Close()
	for _, m := range maps {
		m.Close()
	}
	region.Remove(url)
}

func TestAttachRejectsDamagedHeader(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c")
	m, err := counter.Create("file:"+path, &counter.Shape{Rules: 4, Metrics: 4}, nil)
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	f, _ := os.OpenFile(path, os.O_RDWR, 0)
	f.WriteAt([]byte{99}, 64) // the rules field of the counter header
	f.Close()
	_, err = counter.Attach("file:"+path, nil)
	if !errors.Is(err, region.ErrChecksum) {
		t.Fatalf("damaged counter header: %v", err)
	}
	// A region of another layout is refused before its data is read.
	other := "file:" + filepath.Join(t.TempDir(), "o")
	r, _ := region.Create(other, region.Layout{ID: 1, Version: 1, Name: "x"}, 5000, nil)
	r.Publish()
	r.Detach()
	if _, err := counter.Attach(other, nil); !errors.Is(err, region.ErrLayout) {
		t.Fatalf("foreign layout: %v", err)
	}
}

// sumEmitter decodes events and adds their values up per counter.
type sumEmitter struct {
	mu     sync.Mutex
	sums   map[[2]int]uint64
	events int
	fail   bool
}

func (e *sumEmitter) Emit(batch [][]byte) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.fail {
		return errors.New("output down")
	}
	for _, b := range batch {
		var ev struct {
			Type         string
			Rule, Metric int
			Value        uint64
		}
		if err := json.Unmarshal(b, &ev); err != nil {
			return fmt.Errorf("bad event %s: %v", b, err)
		}
		k := [2]int{ev.Rule, ev.Metric}
		if ev.Type == "counter_overflow" {
			k = [2]int{-1, -1}
		}
		e.sums[k] += ev.Value
		e.events++
	}
	return nil
}

// TestCollectWhileIncrementing: goroutines increment while a collector
// collects every millisecond, with shipping failing now and then; after a
// final collection everything shipped equals everything added, exactly.
func TestCollectWhileIncrementing(t *testing.T) {
	m := anonMap(t, &counter.Shape{Rules: 32, Metrics: 8})
	src, err := counter.NewMapSource(m)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	em := &sumEmitter{sums: map[[2]int]uint64{}}
	coll := counter.NewCollector(src, em, &counter.CollectorOptions{Host: "test", BatchSize: 7})

	// Each producer adds at least perG times, and goes on until the
	// collector has made minCollections collections: how much they
	// overlap is a count, not a matter of this machine's speed.
	const goroutines, perG, minCollections = 8, 20000, 10
	var collected atomic.Int64
	want := make([]map[[2]int]uint64, goroutines)
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			want[g] = map[[2]int]uint64{}
			for i := 0; i < perG || collected.Load() < minCollections; i++ {
				r, mt, n := rng.IntN(33), rng.IntN(8), uint64(1+rng.IntN(3))
				m.Add(r, mt, n)
				if r == 32 {
					want[g][[2]int{-1, -1}]++ // outside: counted once per call
				} else {
					want[g][[2]int{r, mt}] += n
				}
				if i%100 == 99 {
					time.Sleep(200 * time.Microsecond) // let collections interleave
				}
			}
		}(g)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	collections, failures := 0, 0
	for running := true; running; {
		select {
		case <-done:
			running = false
		case <-time.After(time.Millisecond):
		}
		em.mu.Lock()
		em.fail = collections%5 == 4 // every fifth shipping fails
		em.mu.Unlock()
		if _, err := coll.CollectOnce(false); err != nil {
			if !errors.Is(err, counter.ErrEmit) {
				t.Fatal(err)
			}
			failures++
		}
		collections++
		collected.Store(int64(collections))
	}
	em.fail = false
	if _, err := coll.CollectOnce(true); err != nil {
		t.Fatal(err)
	}
	total := map[[2]int]uint64{}
	for _, w := range want {
		for k, v := range w {
			total[k] += v
		}
	}
	if len(total) != len(em.sums) {
		t.Errorf("%d counters shipped, %d incremented", len(em.sums), len(total))
	}
	for k, v := range total {
		if em.sums[k] != v {
			t.Errorf("counter %v: shipped %d, added %d", k, em.sums[k], v)
		}
	}
	t.Logf("%d collections (%d failed shipping), %d events", collections, failures, em.events)
	if collections < minCollections || failures == 0 {
		t.Errorf("only %d collections, %d failed: the test did not interleave", collections, failures)
	}
	// Nothing is left unshipped, and the collector's totals agree.
	ds, _ := m.Peek()
	for _, d := range ds {
		if d.Value != 0 {
			t.Errorf("counter (%d,%d) has %d unshipped", d.Rule, d.Metric, d.Value)
		}
	}
	for _, d := range coll.Totals() {
		if d.Value != total[[2]int{d.Rule, d.Metric}] {
			t.Errorf("collector total of (%d,%d) is %d", d.Rule, d.Metric, d.Value)
		}
	}
}

func TestLease(t *testing.T) {
	url := "shm:" + shmtest.ShmName(t)
	m, err := counter.Create(url, &counter.Shape{Rules: 2, Metrics: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Remove()
	a, err := counter.NewMapSource(m)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := counter.NewMapSource(m); !errors.Is(err, counter.ErrBusy) {
		t.Fatalf("second collector: %v, want ErrBusy", err)
	}
	a.Close()
	b, err := counter.NewMapSource(m)
	if err != nil {
		t.Fatalf("after the first closed: %v", err)
	}
	b.Close()
	// A lease left by a process that died is taken over: run a child that
	// takes the lease and exits without releasing it.
	startChild(t, "collect", url, "leak-lease").wait(t)
	c, err := counter.NewMapSource(m)
	if err != nil {
		t.Fatalf("lease of a dead collector not taken over: %v", err)
	}
	c.Close()
}

// TestFaultIsAnError: the region file is truncated under a collector; the
// collection fails with fault.ErrFault instead of killing the process.
func TestFaultIsAnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c")
	m, err := counter.Create("file:"+path, &counter.Shape{Rules: 256, Metrics: 16}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	m.Inc(200, 3)
	src, err := counter.NewMapSource(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 4096); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Collect(false); !errors.Is(err, fault.ErrFault) {
		t.Fatalf("collect on a truncated file: %v, want fault.ErrFault", err)
	}
	if _, err := m.Peek(); !errors.Is(err, fault.ErrFault) {
		t.Fatalf("peek on a truncated file: %v, want fault.ErrFault", err)
	}
}

// TestMultiProcess: three producer processes of four goroutines each add
// to a shared-memory map while a collector process ships every 2 ms; half
// way through, the collector is stopped and another one started. The sum of
// everything the collectors shipped equals the sum of everything the
// producers added, per counter, exactly. The producers wait half way for a
// gate, opened once the second collector runs: each collector has adds to
// ship, however the processes happen to be scheduled.
func TestMultiProcess(t *testing.T) {
	url := "shm:" + shmtest.ShmName(t)
	m, err := counter.Create(url, &counter.Shape{Rules: 64, Metrics: 16}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Remove()
	m.Describe(5, "jobs", "queue", "high")
	m.NameMetric(1, "done")

	startCollector := func() *child {
		c := startChild(t, "collect", url, "2ms")
		if line := c.firstLine(t); line != "ready" {
			t.Fatalf("collector says %q", line)
		}
		return c
	}
	coll1 := startCollector()
	gate := filepath.Join(t.TempDir(), "gate")
	var producers []*child
	for p := 0; p < 3; p++ {
		producers = append(producers, startChild(t, "produce", url, fmt.Sprint(p), "4", "30000", gate))
	}
	// Switch collectors once a good part of the adds are in (the
	// producers add about 350,000 before the gate). The deadline only
	// catches a hang.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Millisecond) {
		ds, _ := m.Peek()
		var sum uint64
		for _, d := range ds {
			sum += d.Total
		}
		if sum > 200000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the producers added %d in a minute, want more than 200000 before the gate", sum)
		}
	}
	out1 := coll1.stop(t)
	coll2 := startCollector()
	// The adds after the gate come after the first collector's final
	// collection: the second one ships them.
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var pouts []string
	for _, p := range producers {
		pouts = append(pouts, p.wait(t))
	}
	time.Sleep(20 * time.Millisecond)
	out2 := coll2.stop(t)

	added := map[[2]int]uint64{}
	for _, o := range pouts {
		sc := bufio.NewScanner(strings.NewReader(o))
		for sc.Scan() {
			var r, mt int
			var v uint64
			if _, err := fmt.Sscan(sc.Text(), &r, &mt, &v); err != nil {
				t.Fatalf("producer output %q: %v", sc.Text(), err)
			}
			added[[2]int{r, mt}] += v
		}
	}
	em := &sumEmitter{sums: map[[2]int]uint64{}}
	var batch [][]byte
	named := false
	for _, o := range []string{out1, out2} {
		for _, line := range strings.Split(strings.TrimSpace(o), "\n") {
			if line != "" {
				batch = append(batch, []byte(line))
				named = named || strings.Contains(line, `"rule_name":"jobs","labels":{"queue":"high"},"metric_name":"done"`)
			}
		}
	}
	if err := em.Emit(batch); err != nil {
		t.Fatal(err)
	}
	if len(added) < 500 {
		t.Fatalf("only %d counters were incremented", len(added))
	}
	for k, v := range added {
		if em.sums[k] != v {
			t.Errorf("counter %v: shipped %d, added %d", k, em.sums[k], v)
		}
	}
	if len(em.sums) != len(added) {
		t.Errorf("%d counters shipped, %d added", len(em.sums), len(added))
	}
	if len(out1) == 0 || len(out2) == 0 {
		t.Errorf("one collector shipped nothing: %d and %d bytes", len(out1), len(out2))
	}
	if !named {
		t.Error("no event carried the names stored by the producer")
	}
	t.Logf("%d counters, %d events from two collectors (first %d bytes, second %d bytes of output)", len(added), em.events, len(out1), len(out2))
}
