//go:build linux

package vcs

import (
	"math/rand/v2"
	"testing"

	"github.com/mmaplog/mmaplog/counter"
)

// fill puts a non-zero value into 1% of map m's entries, at random places.
func fill(s *Segment, m int, rng *rand.Rand) int {
	n := Rules * Metrics / 100
	for i := 0; i < n; i++ {
		e := rng.IntN(Rules * Metrics)
		s.entry(m, e/Metrics, e%Metrics).Add(uint32(1 + rng.IntN(100)))
	}
	return n
}

func benchSegment(b *testing.B) *Segment {
	s, err := Create("anon:", nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Remove() })
	return s
}

// BenchmarkTake: one collection's scan of a 64 MiB map with 1% of its
// entries non-zero, emptying them (what Collect does after the grace
// period). The map is refilled, untimed, before each scan.
func BenchmarkTake(b *testing.B) {
	benchScan(b, func(s *Segment, fn func(int, int, uint32)) { s.Take(0, fn) })
}

// BenchmarkTakeNaive: the same with one atomic load per entry and no block
// skipping, to show what the skip buys.
func BenchmarkTakeNaive(b *testing.B) {
	benchScan(b, func(s *Segment, fn func(int, int, uint32)) { s.scanNaive(0, fn) })
}

func benchScan(b *testing.B, scan func(*Segment, func(int, int, uint32))) {
	s := benchSegment(b)
	rng := rand.New(rand.NewPCG(1, 2))
	found := 0
	b.SetBytes(MapBytes)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		fill(s, 0, rng)
		b.StartTimer()
		found = 0
		scan(s, func(int, int, uint32) { found++ })
	}
	b.ReportMetric(float64(found), "entries/op")
}

// BenchmarkCollectFull: a final collection of the whole 128 MiB segment
// (both maps, 1% non-zero each) through the Source, deltas built.
func BenchmarkCollectFull(b *testing.B) {
	s := benchSegment(b)
	src := NewSource(s, 1)
	rng := rand.New(rand.NewPCG(1, 2))
	var n int
	b.SetBytes(2 * MapBytes)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		fill(s, 0, rng)
		fill(s, 1, rng)
		b.StartTimer()
		bt, err := src.Collect(true)
		if err != nil {
			b.Fatal(err)
		}
		src.Commit()
		n = len(bt.Deltas)
	}
	b.ReportMetric(float64(n), "deltas/op")
}

// BenchmarkCollectAndEncode: one collection of a 64 MiB map at 1% plus the
// JSON events for it (what an interval of mmaptail counters costs).
func BenchmarkCollectAndEncode(b *testing.B) {
	s := benchSegment(b)
	src := NewSource(s, 1)
	rng := rand.New(rand.NewPCG(1, 2))
	meta := counter.EventMeta{Host: "bench", Region: "vcs:0x3eeff00"}
	var buf []byte
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		fill(s, s.Index(), rng)
		b.StartTimer()
		bt, err := src.Collect(false)
		if err != nil {
			b.Fatal(err)
		}
		buf = buf[:0]
		for _, d := range bt.Deltas {
			buf = counter.AppendEvent(buf, d, meta)
		}
		src.Commit()
	}
}

// BenchmarkTakeEmpty and BenchmarkTakeEmptyNaive: the scan of an all-zero
// 64 MiB map (an idle interval), with and without the block skip.
func BenchmarkTakeEmpty(b *testing.B) {
	s := benchSegment(b)
	b.SetBytes(MapBytes)
	for i := 0; i < b.N; i++ {
		s.Take(0, func(int, int, uint32) {})
	}
}

func BenchmarkTakeEmptyNaive(b *testing.B) {
	s := benchSegment(b)
	b.SetBytes(MapBytes)
	for i := 0; i < b.N; i++ {
		s.scanNaive(0, func(int, int, uint32) {})
	}
}
