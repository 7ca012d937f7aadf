// Command bench measures mmaplog side by side with the writers Go programs
// log into otherwise, in one run on one machine, and prints the figures as
// markdown tables with ratios against mmaplog.
//
// Run it from this directory (it is its own module, so that the library's
// go.mod does not pull in the other loggers and the plotting library):
//
//	cd bench && go run . -json bench.json -plot ../docs/bench
//	cd bench && go run . -quick          # under a minute, rough figures
//	cd bench && go run . -list           # the sinks and scenarios
//
// # What is compared
//
// A sink is one way of writing log records: mmaplog under each flush
// policy; os.File.Write per record with O_APPEND (what zerolog.New(file)
// does); a 64 KiB bufio.Writer into a file (behind a mutex, not crash-safe);
// lumberjack and phuslu/log's FileWriter rotating at the same segment size;
// zerolog's diode writer into a file (non-blocking: it drops records when
// the file falls behind, and the table counts them); and a plain memory
// copy into an anonymous mapping, the physical limit. Sinks register
// themselves in sinks.go (registerSink).
//
// A scenario is a set of groups; a group is one table: the same
// pre-generated record stream (64-byte records, zerolog JSON events of about
// 200 bytes, or 4 KiB records), the same number of writing goroutines and
// the same segment size for every sink in it. The scenarios are record
// sizes, 1/2/4/8 goroutines, small (1 MiB) segments so that rotation
// happens thousands of times, zerolog encoding inside the loop, and the
// shipping rows (below).
// Scenarios register themselves in scenario.go (registerScenario); one that
// measures something other than Write registers groups whose cases have
// their own Run and fill the same Sample, and gets the same tables, JSON and
// ratios (against the group's own baseline row, in bold).
//
// # The shipping rows
//
// Two scenarios measure what mmaplog is for beyond Write: getting records
// out of the process.
//
//   - follow (follow.go): writer-to-reader latency across processes. This
//     binary starts itself again as a writer process (MMAPLOG_BENCH_FOLLOW_DIR
//     set) that appends the JSON stream through WriteLevel one record
//     every 1 ms, every 20 µs, or flat out, while the harness follows the
//     log with tail's follow reader (at 20 µs also with Options.Spin, the
//     reader looking on the CPU instead of sleeping). A record's latency is the reader's
//     wall clock when Next returns it minus the record's time stamp, which
//     the writer took: the p50 to max columns. The writer's counts come back
//     on its standard output, and every record written must be read.
//   - ship (ship.go): shipping throughput. A backlog of the JSON stream is
//     shipped by the real shipper (ship.New(...).Run, cursor and all)
//     through the beats:// output to go-lumber's server on a loopback port
//     in this process, uncompressed and with zlib 3: events/s and MB/s over
//     a pass bounded by time, the size of an event as JSON and on the wire.
//     There is no per-record latency in these rows.
//
// # How it measures
//
// Every case runs in a fresh directory: open the sink, warm up, a
// throughput pass, a latency pass, close, and count what reached the file
// where a sink may drop. mmaplog (but for msync per Write) is warmed up
// further, untimed, by the default retention bound (10 segments), so that
// it is measured in the steady state: rotations reuse the files retention
// removes (NoReuse: new files) instead of making a new directory's first
// segments; its rotation figures (rotations, waits, the longest wait and
// preparation, Writer.ResetMaxima) cover the measured passes only. Passes
// are bounded by time, so that mmaplog's
// msync-per-Write policy takes as long as the rest.
//
//   - Throughput pass: the goroutines write for the pass duration with no
//     clock read; records/s, MB/s (10^6 bytes given to Write) and ns/op
//     (wall time per record) follow. allocs/op is the process's
//     runtime.MemStats.Mallocs delta per record and CPU ns/op its getrusage
//     user+system time per record, background goroutines of the sink
//     included. RSS is the growth of the resident set while the sink is
//     open (mmaplog's mapped segments count: they are shared file pages).
//   - Latency pass: every Write is timed with runtime.nanotime (one vDSO
//     clock read; time.Now reads two clocks) into a per-goroutine HDR
//     histogram, merged; p50, p99, p99.9 and max come from it. Each sample
//     includes the cost of one clock read (printed with the results).
//   - Write-path allocations: mmaplog's Write is also measured alone, with
//     no rotation, so that the allocations of background work at rotations
//     (which allocs/op includes) are not taken for the Write path's.
//
// Every case runs -reps times. The cases of a group run back to back and
// their order changes on each repetition (rotated by one, reversed on odd
// repetitions), so that no sink always runs first or right after the one
// that left the most dirty pages behind. records/s is the median
// repetition; latency histograms are merged over repetitions. On a shared
// or small machine the absolute figures move from run to run: the ratios
// from one run are what to compare.
package main
