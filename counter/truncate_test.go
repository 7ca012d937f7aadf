//go:build linux && !race

// Not under the race detector: its sync/atomic operations run in C on the
// system stack, where a fault on memory truncated between its early probe of
// the address and the operation itself cannot become a panic, so the
// process dies. scripts/test runs this package a second time without -race.

package counter_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mmaplog/mmaplog/counter"
	"github.com/mmaplog/mmaplog/internal/fault"
)

// TestProducersSurviveTruncation: the region's file is truncated by
// "another process" (os.Truncate on its path) while goroutines add through
// Counter handles and Map.Add. None crashes; every increment is either in
// the region (before the truncation) or counted by Lost; Err wraps
// fault.ErrFault and names the region; the slow paths fail cleanly too.
func TestProducersSurviveTruncation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c")
	url := "file:" + path
	m, err := counter.Create(url, &counter.Shape{Rules: 256, Metrics: 16}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Describe(200, "before"); err != nil {
		t.Fatal(err)
	}
	const gs = 4
	var added [gs]atomic.Uint64
	var wg sync.WaitGroup
	for g := 0; g < gs; g++ {
		c, err := m.Counter(200+g, 3)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			// Add until the fault is seen, then 1000 more: they must be
			// cheap no-ops that are counted, not faults or crashes.
			more := -1
			for i := 0; more != 0; i++ {
				if i%2 == 0 {
					c.Inc()
				} else {
					m.Add(200+g, 3, 1)
				}
				added[g].Add(1)
				if more > 0 {
					more--
				} else if more < 0 && m.Err() != nil {
					more = 1000
				}
			}
		}(g)
	}
	// Let every goroutine add a little first, then truncate under them.
	for g := 0; g < gs; g++ {
		for added[g].Load() < 100 {
		}
	}
	if err := os.Truncate(path, 4096); err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	err = m.Err()
	if !errors.Is(err, fault.ErrFault) || !strings.Contains(err.Error(), url) {
		t.Fatalf("Err after truncation: %v; want fault.ErrFault naming %s", err, url)
	}
	var total uint64
	for g := range added {
		total += added[g].Load()
	}
	if lost := m.Lost(); lost < gs*1000 || lost > total {
		t.Errorf("Lost %d of %d increments; want at least the %d made after the fault was seen", lost, total, gs*1000)
	}
	// The other paths on the lost region: no crash, a clear answer.
	if err := m.Describe(201, "after"); !errors.Is(err, fault.ErrFault) {
		t.Errorf("Describe on the lost region: %v", err)
	}
	if name, _ := m.RuleName(200); name != "" {
		t.Errorf("RuleName on the lost region: %q", name)
	}
	if v := m.Load(200, 3); v != 0 {
		t.Errorf("Load on the lost region: %d", v)
	}
	c, _ := m.Counter(1, 1)
	if v := c.Load(); v != 0 {
		t.Errorf("Counter.Load on the lost region: %d", v)
	}
	m.Inc(9999, 0) // outside the shape: the overflow word is in the region too
}

// TestProducerProcessSurvivesTruncation: a separate producer process adds
// to a file: region that this process truncates; the producer sees Err,
// keeps running, and exits 0 reporting what it lost.
func TestProducerProcessSurvivesTruncation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c")
	url := "file:" + path
	m, err := counter.Create(url, &counter.Shape{Rules: 64, Metrics: 8}, nil)
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	c := startChild(t, "truncated", url)
	if line := c.firstLine(t); line != "adding" {
		t.Fatalf("child: %q", line)
	}
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	out := c.wait(t)
	var adds, lost uint64
	var msg string
	if _, err := fmt.Sscanf(out, "adds %d lost %d", &adds, &lost); err != nil {
		t.Fatalf("child printed %q: %v", out, err)
	}
	if i := strings.Index(out, "\n"); i >= 0 {
		msg = out[i+1:]
	}
	if lost < 1000 || lost > adds || !strings.Contains(msg, "memory fault") {
		t.Fatalf("child: %d adds, %d lost, %q", adds, lost, msg)
	}
}

// truncatedChild: URL. Adds until the map reports the fault, then 1000
// more, and prints "adds N lost M" and the error.
func truncatedChild() {
	a := childArgs()
	m, err := counter.Attach(a[0], nil)
	if err != nil {
		die("%v", err)
	}
	defer m.Close()
	c, err := m.Counter(5, 5)
	if err != nil {
		die("%v", err)
	}
	fmt.Println("adding")
	var adds uint64
	for m.Err() == nil {
		c.Inc()
		adds++
	}
	for i := 0; i < 1000; i++ {
		c.Inc()
		adds++
	}
	fmt.Println("adds", strconv.FormatUint(adds, 10), "lost", m.Lost())
	fmt.Println(m.Err())
}
