// Package counter is mmaplog's second region type: a map of 64-bit counters
// in shared memory that applications add to in nanoseconds and that a
// separate process collects and ships without losing a single increment.
//
// # Producing
//
// A Map lives in a region (package region: a file, a POSIX shared-memory
// object, a SysV segment, or anonymous memory) and holds Rules x Metrics
// counters, addressed by (rule, metric). Any number of processes Open the
// same address; the first creates the map. Add and Inc are one atomic add on
// shared memory: no lock, no system call, no allocation. A Counter handle
// skips even the bounds check. With Shape.Padded each counter has a cache
// line of its own, for counters that goroutines on different CPUs hit hard.
//
// Producers can Describe a rule (a name and labels) and name each metric
// index; the names are stored in the region, so a collector in another
// process labels what it ships without sharing any configuration.
//
// # Collecting without loss
//
// Counters only grow. Beside each counter the map keeps the value last
// shipped, written by the collector alone. A collection (MapSource.Collect)
// reads each counter once, atomically, and reports "now minus shipped";
// once the events are delivered, Commit stores "now" as shipped. Nothing is
// ever zeroed, so an increment that lands during a collection is simply in
// the next one; a failed delivery is not committed, so its counts come
// again, grown, in the next collection; and a collector that restarts
// carries on from the shipped values in the region. Only one collector per
// map commits (a lease word holds its pid; a dead holder's lease is taken
// over). Adds outside the shape are counted in an overflow word and shipped
// as a "counter_overflow" event, never dropped silently.
//
// Delivery is at least once: a collector killed after delivering and before
// committing delivers those counts again when it restarts.
//
// # Shipping
//
// A Collector runs a Source (a MapSource, or a VCS segment from package
// counter/vcs) on an interval and hands each collection to an Emitter as a
// batch of JSON events, one per counter that changed (AppendEvent shows the
// fields). mmaptail counters is the command-line front end; it also serves
// the counters to Prometheus.
//
// The layout is described in docs/COUNTERS.md.
package counter
