package counter

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/mmaplog/mmaplog/internal/fault"
)

// Emitter ships a batch of events, each one JSON object (no newline). It
// returns nil once the batch is delivered (or handed to something that will
// not lose it); an error makes the collector keep the counts for the next
// collection. The collector never reuses the slices it passes, so an
// Emitter may keep them.
//
// This is the seam between collection and the shipping outputs: anything
// with this method (stdout, a Logstash output) can receive counter events.
type Emitter interface {
	Emit(batch [][]byte) error
}

// EmitterFunc adapts a function to Emitter.
type EmitterFunc func(batch [][]byte) error

// Emit calls f(batch).
func (f EmitterFunc) Emit(batch [][]byte) error { return f(batch) }

// CollectorOptions configure a Collector. A nil *CollectorOptions means the
// zero value.
type CollectorOptions struct {
	// Host goes into every event; "" means os.Hostname().
	Host string
	// BatchSize is the most events passed to one Emit call; 0 means 1000.
	BatchSize int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Stats describes one collection.
type Stats struct {
	Time     time.Time
	Final    bool
	Counters int // counters that changed (events emitted)
	Cells    int // counters scanned
	Scan     time.Duration
	Grace    time.Duration
	Emit     time.Duration
}

// Collector collects deltas from a Source, turns each into a JSON event and
// ships them through an Emitter, committing only what was shipped. It also
// keeps, for each counter, the sum of everything it shipped (Totals), which
// is what a Prometheus endpoint exports for a source without totals.
type Collector struct {
	src   Source
	emit  Emitter
	host  string
	batch int
	now   func() time.Time

	mu     sync.Mutex
	totals map[[2]int]*Delta
}

// NewCollector returns a Collector shipping what src counts through emit. A
// nil emit ships nothing and only accumulates Totals.
func NewCollector(src Source, emit Emitter, opts *CollectorOptions) *Collector {
	var o CollectorOptions
	if opts != nil {
		o = *opts
	}
	if o.Host == "" {
		o.Host, _ = os.Hostname()
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 1000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Collector{src: src, emit: emit, host: o.Host, batch: o.BatchSize, now: o.Now, totals: map[[2]int]*Delta{}}
}

// ErrEmit wraps the error of an Emitter: nothing was committed, and the
// next collection ships the same counts again (with any added since).
var ErrEmit = errors.New("counter: shipping failed; the counts are kept for the next collection")

// CollectOnce makes one collection: Collect, emit, Commit. final is passed
// to Source.Collect (take everything: the last collection before exit).
func (c *Collector) CollectOnce(final bool) (Stats, error) {
	b, err := c.src.Collect(final)
	st := Stats{Time: c.now(), Final: final, Counters: len(b.Deltas), Cells: b.Cells, Scan: b.Scan, Grace: b.Grace}
	if err != nil {
		return st, err
	}
	if c.emit != nil && len(b.Deltas) > 0 {
		start := time.Now()
		meta := EventMeta{Time: st.Time, Host: c.host, Region: c.src.String()}
		for i := 0; i < len(b.Deltas); i += c.batch {
			chunk := b.Deltas[i:min(i+c.batch, len(b.Deltas))]
			arena := make([]byte, 0, 256*len(chunk))
			events := make([][]byte, len(chunk))
			for j, d := range chunk {
				n := len(arena)
				arena = AppendEvent(arena, d, meta)
				events[j] = arena[n:len(arena):len(arena)]
			}
			if err := c.emit.Emit(events); err != nil {
				st.Emit = time.Since(start)
				return st, fmt.Errorf("%w: %s: %w", ErrEmit, c.src, err)
			}
		}
		st.Emit = time.Since(start)
	}
	if err := c.src.Commit(); err != nil {
		return st, err
	}
	c.mu.Lock()
	for _, d := range b.Deltas {
		k := [2]int{d.Rule, d.Metric}
		t := c.totals[k]
		if t == nil {
			t = &Delta{Rule: d.Rule, Metric: d.Metric, Overflow: d.Overflow}
			c.totals[k] = t
		}
		t.Value += d.Value
		t.Total = d.Total
		t.RuleName, t.Labels, t.MetricName = d.RuleName, d.Labels, d.MetricName
	}
	c.mu.Unlock()
	return st, nil
}

// Totals returns, for every counter shipped since the Collector started,
// the sum of what it shipped (Value) and the last Total seen, sorted by
// rule and metric.
func (c *Collector) Totals() []Delta {
	c.mu.Lock()
	out := make([]Delta, 0, len(c.totals))
	for _, t := range c.totals {
		out = append(out, *t)
	}
	c.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Rule != out[j].Rule {
			return out[i].Rule < out[j].Rule
		}
		return out[i].Metric < out[j].Metric
	})
	return out
}

// Run collects every interval until ctx is done, then makes a final
// collection (Collect(true)) and returns. report, if not nil, is called
// after each collection with its stats and error. An emit error is
// reported and retried at the next interval; any other error (the lease
// lost, a fault on the region) ends Run after the final attempt.
func (c *Collector) Run(ctx context.Context, interval time.Duration, report func(Stats, error)) error {
	if interval <= 0 {
		return fmt.Errorf("counter: collection interval %v must be positive", interval)
	}
	if report == nil {
		report = func(Stats, error) {}
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			st, err := c.CollectOnce(true)
			report(st, err)
			return err
		case <-t.C:
			if ctx.Err() != nil {
				continue // the final collection comes next
			}
			st, err := c.CollectOnce(false)
			report(st, err)
			if err != nil && (errors.Is(err, ErrBusy) || errors.Is(err, fault.ErrFault)) {
				return err
			}
		}
	}
}
