package vcs

import (
	"time"

	"github.com/mmaplog/mmaplog/counter"
	"github.com/mmaplog/mmaplog/internal/fault"
)

// DefaultGrace is how long Collect waits after switching the index before
// emptying the old map: producers that loaded the old index just before
// the switch finish their add in far less. One that is slower (descheduled
// between its load and its add) is not lost either: its add stays in the
// old map and is shipped when that map is next collected.
const DefaultGrace = 50 * time.Millisecond

// Source collects a VCS segment: switch the index, wait the grace period,
// then empty the old map with atomic swaps. It is a counter.Source.
//
// The design it reads zeroes the old map after reading it, so an increment
// landing between the read and the zeroing is lost. Swapping each entry
// with zero instead takes exactly what was there, and anything added later
// stays for the next collection.
type Source struct {
	seg     *Segment
	grace   time.Duration
	pending []entry // taken but not yet committed, sorted by key
}

type entry struct {
	key int // rule*Metrics + metric
	v   uint64
}

// NewSource returns a source collecting seg, waiting grace (0: DefaultGrace)
// between the switch and the scan.
func NewSource(seg *Segment, grace time.Duration) *Source {
	if grace <= 0 {
		grace = DefaultGrace
	}
	return &Source{seg: seg, grace: grace}
}

// String returns the segment's address.
func (s *Source) String() string { return s.seg.String() }

// Segment returns the segment collected.
func (s *Source) Segment() *Segment { return s.seg }

// Close does nothing: the segment belongs to the caller.
func (s *Source) Close() error { return nil }

// Collect switches maps, waits the grace period and empties the old map;
// with final set it empties both maps without switching. What it takes is
// added to whatever was taken before and not committed, and all of it is
// returned.
func (s *Source) Collect(final bool) (b counter.Batch, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fault.Error(v, s.seg.String())
		}
	}()
	defer fault.Catch()()
	if err := s.seg.Check(); err != nil {
		return b, err
	}
	var maps []int
	if final {
		maps = []int{0, 1}
	} else {
		old, err := s.seg.Switch()
		if err != nil {
			return b, err
		}
		start := time.Now()
		time.Sleep(s.grace)
		b.Grace = time.Since(start)
		maps = []int{old}
	}
	start := time.Now()
	for _, m := range maps {
		var got []entry
		s.seg.Take(m, func(rule, metric int, v uint32) {
			got = append(got, entry{rule*Metrics + metric, uint64(v)})
		})
		s.pending = merge(s.pending, got)
		b.Cells += Rules * Metrics
	}
	b.Scan = time.Since(start)
	b.Deltas = make([]counter.Delta, len(s.pending))
	for i, e := range s.pending {
		b.Deltas[i] = counter.Delta{Rule: e.key / Metrics, Metric: e.key % Metrics, Value: e.v}
	}
	return b, nil
}

// Commit forgets what the last Collect returned: it was shipped.
func (s *Source) Commit() error {
	s.pending = nil
	return nil
}

// Peek returns what is in both maps now plus what was taken and not
// committed, without taking anything.
func (s *Source) Peek() (ds []counter.Delta, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fault.Error(v, s.seg.String())
		}
	}()
	defer fault.Catch()()
	if err := s.seg.Check(); err != nil {
		return nil, err
	}
	all := append([]entry(nil), s.pending...)
	for m := 0; m < 2; m++ {
		var got []entry
		s.seg.Peek(m, func(rule, metric int, v uint32) {
			got = append(got, entry{rule*Metrics + metric, uint64(v)})
		})
		all = merge(all, got)
	}
	for _, e := range all {
		ds = append(ds, counter.Delta{Rule: e.key / Metrics, Metric: e.key % Metrics, Value: e.v})
	}
	return ds, nil
}

// merge adds two lists sorted by key into one.
func merge(a, b []entry) []entry {
	if len(a) == 0 {
		return b
	}
	if len(b) == 0 {
		return a
	}
	out := make([]entry, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i].key < b[j].key:
			out = append(out, a[i])
			i++
		case a[i].key > b[j].key:
			out = append(out, b[j])
			j++
		default:
			out = append(out, entry{a[i].key, a[i].v + b[j].v})
			i++
			j++
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
}

var _ counter.Source = (*Source)(nil)
