package counter

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"unsafe"

	"github.com/mmaplog/mmaplog/internal/fault"
	"github.com/mmaplog/mmaplog/region"
)

// Map is a counter map in a shared-memory region: Rules x Metrics 64-bit
// counters that any number of goroutines, in any number of processes, add
// to with atomic instructions, and that a collector in another process
// reads and ships without disturbing them.
//
// Add, Inc and the Counter handles are safe for concurrent use. No method
// may be used after Close.
type Map struct {
	r        *region.Region
	shape    Shape
	metrics  uintptr
	stride   uintptr
	counters unsafe.Pointer
	shipped  unsafe.Pointer
	cnt      int
	names    names
	overflow *atomic.Uint64
	created  bool
	health   *health
}

// Open attaches the counter map at url (a region URL, see package region),
// creating it with shape if it does not exist; a nil shape means
// DefaultShape when creating, and "whatever it is" when attaching. An
// existing map of another shape than a non-nil shape asks for is an error
// wrapping ErrShape. Several processes may Open the same url at once: one
// creates, the others wait for it and attach.
//
// "anon:" makes a map private to this process (for tests and in-process
// collection). opts may be nil (permissions 0600, guard pages on).
func Open(url string, shape *Shape, opts *region.Options) (*Map, error) {
	want, err := shape.normalize()
	if err != nil {
		return nil, err
	}
	a, err := region.Parse(url)
	if err != nil {
		return nil, err
	}
	if a.Kind == region.Anon {
		return create(url, want, opts)
	}
	for attempt := 0; ; attempt++ {
		m, err := Attach(url, opts)
		if err == nil {
			if shape != nil && m.shape != want {
				got := m.Shape()
				m.Close()
				return nil, &region.Error{Addr: url, Offset: -1, Err: fmt.Errorf("%w: the map has %s, the producer asks for %s", ErrShape, got, want.public()),
					Hint: "use the same shape in every producer, or remove the region to start over"}
			}
			return m, nil
		}
		if !errors.Is(err, os.ErrNotExist) || attempt == 2 {
			return nil, err
		}
		m, err = create(url, want, opts)
		if err == nil || !errors.Is(err, os.ErrExist) {
			return m, err
		}
		// Another process created it between our attempts: attach that one.
	}
}

// Create makes a new counter map of the given shape at url (nil: the
// default shape). It fails, wrapping os.ErrExist, if there is one already.
func Create(url string, shape *Shape, opts *region.Options) (*Map, error) {
	n, err := shape.normalize()
	if err != nil {
		return nil, err
	}
	return create(url, n, opts)
}

// create makes a map of the normalized shape n.
func create(url string, n Shape, opts *region.Options) (*Map, error) {
	r, err := region.Create(url, Layout, n.geometry().end-region.HeaderSize, opts)
	if err != nil {
		return nil, err
	}
	putHeader(r.Bytes(), n)
	if err := r.Publish(); err != nil {
		r.Remove()
		return nil, err
	}
	m := newMap(r, n)
	m.created = true
	return m, nil
}

// Attach attaches an existing counter map, of whatever shape it has, and
// validates its headers. This is what a collector does.
func Attach(url string, opts *region.Options) (*Map, error) {
	r, err := region.Open(url, Layout, opts)
	if err != nil {
		return nil, err
	}
	n, err := readHeader(r)
	if err != nil {
		r.Detach()
		return nil, err
	}
	return newMap(r, n), nil
}

func newMap(r *region.Region, n Shape) *Map {
	g := n.geometry()
	b := r.Bytes()
	base := unsafe.Pointer(unsafe.SliceData(b))
	m := &Map{
		r:        r,
		shape:    n,
		metrics:  uintptr(n.Metrics),
		stride:   uintptr(n.stride()),
		counters: unsafe.Add(base, g.counters),
		shipped:  unsafe.Add(base, g.shipped),
		cnt:      n.Rules * n.Metrics,
		overflow: (*atomic.Uint64)(unsafe.Add(base, offOverflow)),
		health:   &health{where: r.String(), fixed: r.Addr().Kind == region.Sysv || r.Addr().Kind == region.Anon},
	}
	m.names = names{
		size:    n.NameSize,
		rules:   b[g.ruleNames:g.metricNames],
		metrics: b[g.metricNames : g.metricNames+n.Metrics*n.NameSize],
	}
	return m
}

// Shape returns the map's shape, every field filled in (NameSize -1 for a
// map without names).
func (m *Map) Shape() Shape { return m.shape.public() }

// public turns a normalized shape (NameSize 0: none) back into the form
// callers use (NameSize -1: none).
func (n Shape) public() Shape {
	if n.NameSize == 0 {
		n.NameSize = -1
	}
	return n
}

// Region returns the region the map lives in.
func (m *Map) Region() *region.Region { return m.r }

// Created reports whether this Map created the region (rather than
// attaching an existing one).
func (m *Map) Created() bool { return m.created }

// Close detaches the map from this process; the counters stay in the
// region for the collector and the other producers. Counter handles must
// not be used afterwards.
func (m *Map) Close() error { return m.r.Detach() }

// Remove closes the map and removes its region: for tests and tools, never
// while a collector still has counts to ship.
func (m *Map) Remove() error { return m.r.Remove() }

func (m *Map) word(i int) *atomic.Uint64 {
	return (*atomic.Uint64)(unsafe.Add(m.counters, uintptr(i)*m.stride))
}

func (m *Map) shippedWord(i int) *atomic.Uint64 {
	return (*atomic.Uint64)(unsafe.Add(m.shipped, uintptr(i)*8))
}

// Add adds n to counter (rule, metric) with one atomic instruction. An
// address outside the shape adds nothing and is counted instead in the
// map's overflow counter, which the collector reports: a mistake in a
// producer shows up in what is shipped rather than vanishing.
//
// If the region's file was truncated by another process, touching it
// raises a memory fault: Add then returns normally, the increment is
// counted as lost (Lost), and Err reports the fault; see Err.
func (m *Map) Add(rule, metric int, n uint64) {
	if uint(rule) >= uint(m.shape.Rules) || uint(metric) >= uint(m.shape.Metrics) {
		m.health.add(m.overflow, 1)
		return
	}
	m.health.add((*atomic.Uint64)(unsafe.Add(m.counters, (uintptr(rule)*m.metrics+uintptr(metric))*m.stride)), n)
}

// Inc adds one to counter (rule, metric); see Add.
func (m *Map) Inc(rule, metric int) { m.Add(rule, metric, 1) }

// Load returns the current value of counter (rule, metric): everything ever
// added to it (it never decreases; it wraps after 2^64). 0 outside the shape.
// 0 also once the region is lost (see Err).
func (m *Map) Load(rule, metric int) (v uint64) {
	if uint(rule) >= uint(m.shape.Rules) || uint(metric) >= uint(m.shape.Metrics) || m.health.broken.Load() {
		return 0
	}
	defer m.health.guard(nil)
	defer fault.Catch()()
	return m.word(rule*m.shape.Metrics + metric).Load()
}

// Overflow returns how many Add or Inc calls addressed a counter outside
// the shape (and added nothing); 0 once the region is lost.
func (m *Map) Overflow() (v uint64) {
	if m.health.broken.Load() {
		return 0
	}
	defer m.health.guard(nil)
	defer fault.Catch()()
	return m.overflow.Load()
}

// Err returns nil while the map's region is sound. Once touching it raised
// a memory fault in this process (its file truncated by another process,
// or a page that could not be read), it returns that error, wrapping
// fault.ErrFault: from then on this process's increments go nowhere and
// are counted by Lost, and the collector's collections fail with the same
// fault. Producers never crash on it. Check Err where the program can act,
// say in a health check, and reopen the map once the region is restored.
func (m *Map) Err() error {
	if p := m.health.err.Load(); p != nil {
		return *p
	}
	return nil
}

// Lost returns the increments (the sum of the n of each Add) this process
// made after its region was lost (see Err): counted, never shipped.
func (m *Map) Lost() uint64 { return m.health.lost.Load() }

// Counter is a handle on one counter of a Map: Inc and Add on it are a
// single atomic instruction, with no bounds check and no allocation. The
// zero Counter is not usable; get one from Map.Counter.
type Counter struct {
	v     *atomic.Uint64
	h     *health
	fixed bool // h.fixed, here to spare Inc a load
}

// Counter returns the handle of counter (rule, metric), or an error if the
// address is outside the map's shape.
func (m *Map) Counter(rule, metric int) (Counter, error) {
	if uint(rule) >= uint(m.shape.Rules) || uint(metric) >= uint(m.shape.Metrics) {
		return Counter{}, fmt.Errorf("counter: (rule %d, metric %d) is outside the map's shape %s", rule, metric, m.shape)
	}
	return Counter{m.word(rule*m.shape.Metrics + metric), m.health, m.health.fixed}, nil
}

// Inc adds one. A memory fault on the region is handled as by Map.Add.
// (It repeats Add's body rather than calling it: as c.Add(1) it sits at the
// inliner's budget and was not inlined into callers' loops.)
func (c Counter) Inc() {
	if c.fixed {
		c.v.Add(1)
		return
	}
	c.h.addGuarded(c.v, 1)
}

// Add adds n. A memory fault on the region is handled as by Map.Add.
func (c Counter) Add(n uint64) {
	if c.fixed {
		c.v.Add(n)
		return
	}
	c.h.addGuarded(c.v, n)
}

// Load returns the counter's value (0 once the region is lost).
func (c Counter) Load() (v uint64) {
	if c.h.broken.Load() {
		return 0
	}
	defer c.h.guard(nil)
	defer fault.Catch()()
	return c.v.Load()
}

// String formats a shape as RULESxMETRICS, with ",padded" if padded.
func (s Shape) String() string {
	p := ""
	if s.Padded {
		p = ",padded"
	}
	if s.NameSize > 0 {
		p += fmt.Sprintf(",names %d", s.NameSize)
	}
	return fmt.Sprintf("%dx%d%s", s.Rules, s.Metrics, p)
}
