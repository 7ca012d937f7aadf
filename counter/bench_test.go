//go:build linux

package counter_test

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/mmaplog/mmaplog/counter"
)

// BenchmarkInc: one goroutine, one counter, through a Counter handle and
// through Map.Inc (bounds-checked), both with the fault guard that keeps a
// producer alive when the region's file is truncated; "unguarded" is the
// bare atomic add they are compared with.
// BenchmarkInc: one goroutine incrementing one counter.
//   - unguarded: the atomic add alone, as the baseline;
//   - file and file-map: a Counter handle, and Map.Inc, on a file: region,
//     which another process can truncate: each increment is guarded
//     against the memory fault;
//   - anon: a Counter handle on an anon: region, which cannot shrink (nor
//     can a sysv: segment): no guard, the atomic add inlined.
func BenchmarkInc(b *testing.B) {
	fm, err := counter.Open("file:"+filepath.Join(b.TempDir(), "counters"), nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer fm.Remove()
	am := anonMap(b, nil)
	handle := func(m *counter.Map) func(b *testing.B) {
		return func(b *testing.B) {
			c, _ := m.Counter(3, 4)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				c.Inc()
			}
		}
	}
	b.Run("unguarded", func(b *testing.B) {
		c, _ := fm.Counter(3, 4)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			c.IncUnguarded()
		}
	})
	b.Run("file", handle(fm))
	b.Run("file-map", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			fm.Inc(3, 4)
		}
	})
	b.Run("anon", handle(am))
	b.Run("anon-unguarded", func(b *testing.B) {
		c, _ := am.Counter(3, 4)
		for i := 0; i < b.N; i++ {
			c.IncUnguarded()
		}
	})
}

// BenchmarkIncParallel: G goroutines each incrementing b.N/G times (ns/op
// is per increment, all goroutines together) on
//   - same: one counter for all;
//   - adjacent: one counter each, neighbours 8 bytes apart (one cache line);
//   - padded: one counter each in a Padded map (a line each);
//   - rules: one counter each in different rules (1 KiB apart).
func BenchmarkIncParallel(b *testing.B) {
	plain := anonMap(b, nil)
	padded := anonMap(b, &counter.Shape{Padded: true})
	for _, g := range []int{2, 4, 8} {
		for _, mode := range []string{"same", "adjacent", "padded", "rules"} {
			b.Run(fmt.Sprintf("%s/g=%d", mode, g), func(b *testing.B) {
				cs := make([]counter.Counter, g)
				for i := range cs {
					switch mode {
					case "same":
						cs[i], _ = plain.Counter(0, 0)
					case "adjacent":
						cs[i], _ = plain.Counter(1, i)
					case "padded":
						cs[i], _ = padded.Counter(1, i)
					case "rules":
						cs[i], _ = plain.Counter(2+i, 0)
					}
				}
				b.ReportAllocs()
				b.ResetTimer()
				var wg sync.WaitGroup
				for i := 0; i < g; i++ {
					wg.Add(1)
					go func(c counter.Counter, n int) {
						defer wg.Done()
						for j := 0; j < n; j++ {
							c.Inc()
						}
					}(cs[i], b.N/g)
				}
				wg.Wait()
			})
		}
	}
}

// BenchmarkCollect: one collection of a default map (1024 x 128) with 1% of
// its counters changed since the last.
func BenchmarkCollect(b *testing.B) {
	m := anonMap(b, nil)
	src, err := counter.NewMapSource(m)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	n := 0
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		for j := 0; j < 1024*128/100; j++ {
			m.Inc((j*7919+i)%1024, j%128)
		}
		b.StartTimer()
		bt, err := src.Collect(false)
		if err != nil {
			b.Fatal(err)
		}
		src.Commit()
		n = len(bt.Deltas)
	}
	b.ReportMetric(float64(n), "deltas/op")
}
