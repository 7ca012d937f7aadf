package mmaplog_test

import (
	"fmt"
	"log"

	"github.com/mmaplog/mmaplog/mmaplog"
)

// Counters in shared memory next to the log: Inc costs a few nanoseconds,
// and "mmaptail counters --region shm:myapp-counters --to stdout" ships the
// changes from another process.
func ExampleOpenCounters() {
	c, err := mmaplog.OpenCounters("anon:", &mmaplog.CounterShape{Rules: 8, Metrics: 2}, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	c.Describe(1, "logins")
	c.NameMetric(0, "failed")
	failed, _ := c.Counter(1, 0)
	failed.Inc()
	failed.Inc()
	fmt.Println(c.Load(1, 0))
	// Output: 2
}
