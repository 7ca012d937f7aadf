package mmaplog

import (
	"github.com/mmaplog/mmaplog/counter"
	"github.com/mmaplog/mmaplog/region"
)

// Counters is a map of 64-bit counters in shared memory, addressed by
// (rule, metric): Add and Inc are one atomic instruction, and mmaptail
// counters collects and ships the deltas from another process without
// losing an increment. It is counter.Map; see package counter for the
// whole API (names and labels, Counter handles, collection).
type Counters = counter.Map

// CounterShape is the shape of a counter map: rules, metrics per rule,
// padding, name slots (counter.Shape).
type CounterShape = counter.Shape

// Counter is a handle on one counter of a map (counter.Counter).
type Counter = counter.Counter

// OpenCounters attaches the counter map at url, creating it with shape
// (nil: 1024 rules x 128 metrics) if it does not exist. url is a region
// address: "shm:NAME" (POSIX shared memory), "file:PATH" (durable),
// "sysv:KEY", or "anon:" (this process only). New regions get permissions
// 0600 (region.Options.Perm to change it; opts may be nil).
func OpenCounters(url string, shape *CounterShape, opts *region.Options) (*Counters, error) {
	return counter.Open(url, shape, opts)
}
