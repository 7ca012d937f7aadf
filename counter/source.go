package counter

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/mmaplog/mmaplog/internal/fault"
	"github.com/mmaplog/mmaplog/internal/fileutil"
)

// Delta is what one counter gained since the last committed collection.
type Delta struct {
	Rule, Metric int
	Value        uint64 // the increase
	// Total is the counter's value after the increase, for sources that
	// keep totals (the counter map); 0 where they do not (VCS segments,
	// whose counters are emptied by collection).
	Total      uint64
	RuleName   string  // from the map's name slots; "" if none
	Labels     []Label // the rule's labels
	MetricName string  // "" if none
	// Overflow marks the pseudo-counter of Adds that addressed a counter
	// outside the shape (Rule and Metric are -1).
	Overflow bool
}

// Batch is the result of one collection.
type Batch struct {
	Deltas []Delta
	Scan   time.Duration // time spent reading the counters
	Grace  time.Duration // time spent waiting for producers (VCS)
	Cells  int           // counters scanned
}

// Source is something counters are collected from: a counter map (NewMapSource) or
// a VCS segment (package vcs). Collection is two steps, so that nothing is
// lost when shipping fails: Collect returns everything counted since the
// last Commit, and Commit, called once it was shipped, marks it done. If
// Commit is not called, the next Collect returns the same counts again,
// plus whatever was added since. Methods are not safe for concurrent use.
type Source interface {
	// Collect returns the deltas since the last Commit. final says the
	// producers have stopped (or the collector is about to): take
	// everything there is.
	Collect(final bool) (Batch, error)
	// Commit marks the deltas of the last Collect shipped.
	Commit() error
	// Peek returns the counters' state without collecting anything: the
	// value not yet shipped of each non-zero counter, and its total where
	// the source keeps totals.
	Peek() ([]Delta, error)
	// String returns the source's address.
	String() string
	// Close releases the source (not the producers' counters).
	Close() error
}

// ErrBusy: another collector commits from this counter map already.
var ErrBusy = errors.New("counter: another collector is shipping this counter map")

// MapSource collects from a counter map. The counters are never zeroed or
// otherwise written by the collector: each is monotonic, and the map keeps
// beside it the value last shipped, so the delta is "value now minus value
// shipped". A producer's Add can never be lost between the two, and a
// collector that restarts carries on where the previous one committed.
type MapSource struct {
	m     *Map
	lease *atomic.Uint64
	pid   uint64
	snap  []snapEntry
	ovf   uint64 // overflow value seen by the last Collect
}

type snapEntry struct {
	i   int
	cur uint64
}

// NewMapSource makes m a collection source. Only one source per map may
// commit at a time, across all processes: the map's lease word holds the
// pid of the collector; a lease held by a live process is ErrBusy, one
// left by a dead process is taken over. Close releases the lease.
func NewMapSource(m *Map) (src *MapSource, err error) {
	defer func() {
		if v := recover(); v != nil {
			src, err = nil, fault.Error(v, m.r.String())
		}
	}()
	defer fault.Catch()()
	base := unsafe.Pointer(unsafe.SliceData(m.r.Bytes()))
	s := &MapSource{m: m, lease: (*atomic.Uint64)(unsafe.Add(base, offLease)), pid: uint64(os.Getpid())}
	for {
		h := s.lease.Load()
		if h != 0 && fileutil.ProcessAlive(int(h)) {
			return nil, fmt.Errorf("%w %s: process %d holds its lease; stop it first (a lease left by a dead process is taken over)", ErrBusy, m.r, h)
		}
		if s.lease.CompareAndSwap(h, s.pid) {
			return s, nil
		}
	}
}

// String returns the map's address.
func (s *MapSource) String() string { return s.m.r.String() }

// Map returns the map collected from.
func (s *MapSource) Map() *Map { return s.m }

// Close releases the lease (the map stays attached; close it separately).
// A memory fault (the region's file truncated by another process, which
// took the lease with it) is returned as an error wrapping fault.ErrFault.
func (s *MapSource) Close() error {
	err := fault.Guard("", func() error {
		s.lease.CompareAndSwap(s.pid, 0)
		return nil
	})
	if err != nil {
		return fmt.Errorf("counter: release the lease of %s: %w", s.m.r, err)
	}
	return nil
}

// Collect returns every counter whose value differs from the value last
// shipped. A memory fault (the region's file truncated by another process)
// is returned as an error wrapping fault.ErrFault.
func (s *MapSource) Collect(final bool) (b Batch, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fault.Error(v, s.m.r.String())
		}
	}()
	defer fault.Catch()()
	if s.lease.Load() != s.pid {
		return Batch{}, fmt.Errorf("%w %s: the lease was taken by process %d", ErrBusy, s.m.r, s.lease.Load())
	}
	start := time.Now()
	s.snap = s.snap[:0]
	m := s.m
	for i := 0; i < m.cnt; i++ {
		cur := m.word(i).Load()
		if sh := m.shippedWord(i).Load(); cur != sh {
			s.snap = append(s.snap, snapEntry{i, cur})
			b.Deltas = append(b.Deltas, Delta{Rule: i / m.shape.Metrics, Metric: i % m.shape.Metrics, Value: cur - sh, Total: cur})
		}
	}
	s.ovf = m.overflow.Load()
	if sh := s.overflowShipped().Load(); s.ovf != sh {
		b.Deltas = append(b.Deltas, Delta{Rule: -1, Metric: -1, Value: s.ovf - sh, Total: s.ovf, Overflow: true})
	}
	b.Scan = time.Since(start)
	b.Cells = m.cnt
	m.label(b.Deltas)
	return b, nil
}

func (s *MapSource) overflowShipped() *atomic.Uint64 {
	return (*atomic.Uint64)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(s.m.r.Bytes())), offOverflowShipped))
}

// Commit records the values of the last Collect as shipped.
func (s *MapSource) Commit() (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fault.Error(v, s.m.r.String())
		}
	}()
	defer fault.Catch()()
	if s.lease.Load() != s.pid {
		return fmt.Errorf("%w %s: the lease was taken by process %d; nothing committed", ErrBusy, s.m.r, s.lease.Load())
	}
	for _, e := range s.snap {
		s.m.shippedWord(e.i).Store(e.cur)
	}
	s.overflowShipped().Store(s.ovf)
	s.snap = s.snap[:0]
	(*atomic.Uint64)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(s.m.r.Bytes())), offCommits)).Add(1)
	return nil
}

// Peek returns every non-zero counter with its total and the part not yet
// shipped (Value), without collecting.
func (s *MapSource) Peek() ([]Delta, error) { return s.m.Peek() }

// Peek returns every non-zero counter of the map with its total (Total) and
// the part not yet shipped (Value). It writes nothing, needs no lease, and
// works on a map attached read-only.
func (m *Map) Peek() (ds []Delta, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fault.Error(v, m.r.String())
		}
	}()
	defer fault.Catch()()
	for i := 0; i < m.cnt; i++ {
		if cur := m.word(i).Load(); cur != 0 {
			ds = append(ds, Delta{Rule: i / m.shape.Metrics, Metric: i % m.shape.Metrics, Value: cur - m.shippedWord(i).Load(), Total: cur})
		}
	}
	if o := m.overflow.Load(); o != 0 {
		sh := (*atomic.Uint64)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(m.r.Bytes())), offOverflowShipped)).Load()
		ds = append(ds, Delta{Rule: -1, Metric: -1, Value: o - sh, Total: o, Overflow: true})
	}
	m.label(ds)
	return ds, nil
}

// label fills in the names of ds, reading each rule's and metric's slot
// once.
func (m *Map) label(ds []Delta) {
	if m.names.size == 0 {
		return
	}
	type rn struct {
		name   string
		labels []Label
	}
	rules := map[int]rn{}
	metrics := map[int]string{}
	for i := range ds {
		d := &ds[i]
		if d.Overflow {
			continue
		}
		r, ok := rules[d.Rule]
		if !ok {
			r.name, r.labels = m.RuleName(d.Rule)
			rules[d.Rule] = r
		}
		mn, ok := metrics[d.Metric]
		if !ok {
			mn = m.MetricName(d.Metric)
			metrics[d.Metric] = mn
		}
		d.RuleName, d.Labels, d.MetricName = r.name, r.labels, mn
	}
}

var _ Source = (*MapSource)(nil)
