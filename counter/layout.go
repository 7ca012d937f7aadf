package counter

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/mmaplog/mmaplog/region"
)

// Layout identifies a counter map inside a region (region.Layout).
var Layout = region.Layout{ID: 0x52544e43, Version: 1, Name: "counter map"} // "CNTR"

// The counter map's layout (docs/COUNTERS.md, "Counter map"). Offsets are
// from the start of the object; the region header takes bytes 0 to 63.
const (
	hdrOff = region.HeaderSize // the counter header follows the region header

	offRules       = hdrOff + 0
	offMetrics     = hdrOff + 4
	offStride      = hdrOff + 8
	offNameSize    = hdrOff + 12
	offCounters    = hdrOff + 16
	offShipped     = hdrOff + 24
	offRuleNames   = hdrOff + 32
	offMetricNames = hdrOff + 40
	offEnd         = hdrOff + 48
	offFlags       = hdrOff + 56
	offCRC         = hdrOff + 60 // CRC-32C of bytes hdrOff to offCRC
	// Mutable words, accessed atomically, outside the CRC.
	offOverflow        = hdrOff + 64 // Adds addressed outside the shape
	offOverflowShipped = hdrOff + 72 // the part of it already shipped
	offLease           = hdrOff + 80 // pid of the collector that commits; 0: none
	offCommits         = hdrOff + 88 // collections committed so far

	countersStart = 4096 // counters start on a (4 KiB) page of their own
)

// Limits of a shape.
const (
	MaxRules    = 1 << 20
	MaxMetrics  = 1 << 16
	MaxCounters = 1 << 27 // rules x metrics: 1 GiB of counters unpadded
	MinNameSize = 32
	MaxNameSize = 4096
)

// Shape is how counters are addressed: Rules x Metrics 64-bit counters,
// counter (rule, metric) at index rule*Metrics+metric. The zero value of
// each field picks its default.
type Shape struct {
	Rules   int // number of rules; default 1024
	Metrics int // counters per rule; default 128
	// Padded puts every counter on a 64-byte cache line of its own (eight
	// times the memory), so that goroutines on different CPUs incrementing
	// neighbouring counters do not contend for one line. Unpadded counters
	// are 8 bytes apart.
	Padded bool
	// NameSize is the bytes reserved for the name and labels of each rule
	// and the name of each metric index (with an 8-byte slot header).
	// 0: 64; -1: no names; otherwise 32 to 4096, a multiple of 8.
	NameSize int
}

// DefaultShape is the shape used for a nil *Shape.
var DefaultShape = Shape{Rules: 1024, Metrics: 128, NameSize: 64}

func (s *Shape) normalize() (Shape, error) {
	var n Shape
	if s != nil {
		n = *s
	}
	if n.Rules == 0 {
		n.Rules = DefaultShape.Rules
	}
	if n.Metrics == 0 {
		n.Metrics = DefaultShape.Metrics
	}
	switch n.NameSize {
	case 0:
		n.NameSize = DefaultShape.NameSize
	case -1:
		n.NameSize = 0
	}
	return n, n.check()
}

func (n Shape) check() error {
	switch {
	case n.Rules < 1 || n.Rules > MaxRules:
		return fmt.Errorf("counter: %d rules out of range (1 to %d)", n.Rules, MaxRules)
	case n.Metrics < 1 || n.Metrics > MaxMetrics:
		return fmt.Errorf("counter: %d metrics per rule out of range (1 to %d)", n.Metrics, MaxMetrics)
	case n.Rules*n.Metrics > MaxCounters:
		return fmt.Errorf("counter: %d x %d counters is more than %d", n.Rules, n.Metrics, MaxCounters)
	case n.NameSize != 0 && (n.NameSize < MinNameSize || n.NameSize > MaxNameSize || n.NameSize%8 != 0):
		return fmt.Errorf("counter: name size %d: want 0 (none) or %d to %d, a multiple of 8", n.NameSize, MinNameSize, MaxNameSize)
	}
	return nil
}

func (n Shape) stride() int {
	if n.Padded {
		return 64
	}
	return 8
}

// geometry is where each part of a map of a given shape lives.
type geometry struct {
	counters, shipped, ruleNames, metricNames, end int
}

func align(n, to int) int { return (n + to - 1) / to * to }

func (n Shape) geometry() geometry {
	var g geometry
	cnt := n.Rules * n.Metrics
	g.counters = countersStart
	g.shipped = align(g.counters+cnt*n.stride(), 4096)
	g.ruleNames = align(g.shipped+cnt*8, 64)
	g.metricNames = g.ruleNames + n.Rules*n.NameSize
	g.end = align(g.metricNames+n.Metrics*n.NameSize, 64)
	return g
}

// Size returns the size in bytes of the region holding a map of this shape.
func (s Shape) Size() (int, error) {
	n, err := s.normalize()
	if err != nil {
		return 0, err
	}
	return n.geometry().end, nil
}

// ErrShape: the map attached has another shape than the one asked for, or
// its header describes an impossible one.
var ErrShape = errors.New("counter map shape mismatch")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func putHeader(b []byte, n Shape) {
	g := n.geometry()
	le := binary.LittleEndian
	le.PutUint32(b[offRules:], uint32(n.Rules))
	le.PutUint32(b[offMetrics:], uint32(n.Metrics))
	le.PutUint32(b[offStride:], uint32(n.stride()))
	le.PutUint32(b[offNameSize:], uint32(n.NameSize))
	le.PutUint64(b[offCounters:], uint64(g.counters))
	le.PutUint64(b[offShipped:], uint64(g.shipped))
	le.PutUint64(b[offRuleNames:], uint64(g.ruleNames))
	le.PutUint64(b[offMetricNames:], uint64(g.metricNames))
	le.PutUint64(b[offEnd:], uint64(g.end))
	le.PutUint32(b[offFlags:], 0)
	le.PutUint32(b[offCRC:], crc32.Checksum(b[hdrOff:offCRC], castagnoli))
}

// readHeader validates the counter header of region r (untrusted bytes:
// any process with write access may have scribbled on it) and returns the
// shape it describes.
func readHeader(r *region.Region) (Shape, error) {
	b := r.Bytes()
	fail := func(off int, format string, a ...any) (Shape, error) {
		return Shape{}, &region.Error{Addr: r.String(), Offset: int64(off), Err: fmt.Errorf("%w: "+format, append([]any{ErrShape}, a...)...),
			Hint: "the counter header is damaged: remove the region and let the producer create it again"}
	}
	if len(b) < countersStart {
		return fail(0, "the region has %d bytes, less than a counter map's %d-byte header page", len(b), countersStart)
	}
	le := binary.LittleEndian
	if got, want := le.Uint32(b[offCRC:]), crc32.Checksum(b[hdrOff:offCRC], castagnoli); got != want {
		return Shape{}, &region.Error{Addr: r.String(), Offset: offCRC, Err: fmt.Errorf("%w: counter header (stored %#08x, computed %#08x)", region.ErrChecksum, got, want),
			Hint: "the counter header was overwritten: remove the region and let the producer create it again"}
	}
	n := Shape{
		Rules:    int(le.Uint32(b[offRules:])),
		Metrics:  int(le.Uint32(b[offMetrics:])),
		NameSize: int(le.Uint32(b[offNameSize:])),
	}
	switch st := le.Uint32(b[offStride:]); st {
	case 8:
	case 64:
		n.Padded = true
	default:
		return fail(offStride, "counter stride %d (want 8 or 64)", st)
	}
	if err := n.check(); err != nil {
		return fail(offRules, "%v", err)
	}
	g := n.geometry()
	for _, f := range []struct {
		off  int
		want int
	}{{offCounters, g.counters}, {offShipped, g.shipped}, {offRuleNames, g.ruleNames}, {offMetricNames, g.metricNames}, {offEnd, g.end}} {
		if got := le.Uint64(b[f.off:]); got != uint64(f.want) {
			return fail(f.off, "offset %d where the shape %dx%d puts %d", got, n.Rules, n.Metrics, f.want)
		}
	}
	if g.end != len(b) {
		return fail(offEnd, "the shape %dx%d needs %d bytes, the region has %d", n.Rules, n.Metrics, g.end, len(b))
	}
	return n, nil
}
