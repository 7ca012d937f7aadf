package counter_test

import (
	"fmt"
	"log"

	"github.com/mmaplog/mmaplog/counter"
)

// A producer opens (or creates) a counter map, names what it counts, and
// adds; a collector, normally another process (mmaptail counters), ships
// what changed since the last collection and commits it.
func Example() {
	// "shm:myapp-counters" or "file:/var/lib/myapp/counters" to share it
	// between processes; "anon:" keeps it in this process.
	m, err := counter.Open("anon:", &counter.Shape{Rules: 16, Metrics: 4}, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	m.Describe(2, "http_requests", "route", "/orders")
	m.NameMetric(0, "ok")
	m.NameMetric(1, "error")

	ok, _ := m.Counter(2, 0) // a handle: one atomic add per Inc
	for i := 0; i < 41; i++ {
		ok.Inc()
	}
	m.Add(2, 1, 3)

	src, err := counter.NewMapSource(m)
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close()
	batch, _ := src.Collect(false)
	for _, d := range batch.Deltas {
		fmt.Printf("%s%v %s +%d\n", d.RuleName, d.Labels, d.MetricName, d.Value)
	}
	src.Commit() // shipped: the next collection starts from here

	m.Inc(2, 1)
	batch, _ = src.Collect(false)
	fmt.Println(len(batch.Deltas), "changed since:", batch.Deltas[0].MetricName, "+", batch.Deltas[0].Value, "total", batch.Deltas[0].Total)
	// Output:
	// http_requests[{route /orders}] ok +41
	// http_requests[{route /orders}] error +3
	// 1 changed since: error + 1 total 4
}
