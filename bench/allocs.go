package main

import (
	"fmt"
	"os"
	"runtime"
)

// writePathAllocs measures the allocations of mmaplog's Write itself: a
// fresh writer per flush policy, a segment large enough that no rotation
// happens, n Writes of the JSON stream in five batches, and the process's
// Mallocs counted around each batch. The table's allocs/op also counts background work (the
// retention pass at each rotation lists the directory); this isolates what
// the Write path costs, as testing.AllocsPerRun would.
func writePathAllocs(dir string, sinks []*Sink) (map[string]float64, error) {
	stream, err := streamFor(SizeJSON)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, s := range sinks {
		if s.Policy == "" {
			continue // not an mmaplog sink
		}
		n := 20000
		if s.Slow {
			n = 200 // an msync per Write
		}
		d, err := os.MkdirTemp(dir, "mmaplog-bench-allocs-")
		if err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
		allocs, err := countWriteAllocs(s, d, stream, n)
		os.RemoveAll(d)
		if err != nil {
			return nil, err
		}
		out[s.ID] = allocs
	}
	return out, nil
}

func countWriteAllocs(s *Sink, dir string, stream *Stream, n int) (float64, error) {
	t, err := s.Open(dir, SegmentDefault)
	if err != nil {
		return 0, fmt.Errorf("bench: open %s: %w", s.ID, err)
	}
	defer t.Close()
	for i := 0; i < 100; i++ { // first touches of lazily made things
		if _, err := t.Write(stream.Record(i)); err != nil {
			return 0, err
		}
	}
	// Five batches, the least allocating one counts: an allocation in
	// Write shows in every batch, the preparer finishing the next segment
	// in the background in one or two.
	best := -1.0
	for b, per := 0, n/5; b < 5; b++ {
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		for i := 0; i < per; i++ {
			if _, err := t.Write(stream.Record(i)); err != nil {
				return 0, fmt.Errorf("bench: %s: %w", s.ID, err)
			}
		}
		runtime.ReadMemStats(&m1)
		if a := float64(m1.Mallocs-m0.Mallocs) / float64(per); best < 0 || a < best {
			best = a
		}
	}
	return best, nil
}
