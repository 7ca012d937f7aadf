// Package ship follows mmaplog logs and ships their records to an output
// (package output) at least once: what `mmaptail ship` runs.
//
// A Shipper follows every log Config.Logs names: directories, or shell
// patterns of directories, looked at again every ScanInterval so that a
// log created later is picked up, and a plain path that does not exist yet
// is followed once it does. For each log it runs a following tail.Reader,
// turns each record into an event (Encoder: the record's own JSON object,
// or {"message": ...}, plus Elastic Common Schema metadata as Filebeat
// writes it), gathers events into batches and publishes them through a
// source of its own on the one output. A batch is sent when it is full or
// as soon as the reader has caught up with the writer, so that a quiet log
// is shipped within moments and a busy one in large batches; the output
// takes the logs' batches in turn, so that the quiet one does not wait for
// the busy one's backlog.
//
// Config.Inputs group logs with settings of their own (fields, cursors,
// From), and SetInputs replaces the inputs while Run runs (`mmaptail ship`
// does on SIGHUP): logs of new inputs start, logs no input names any more
// stop after their cursor is saved, logs whose input changed start again
// with its new settings, the others go on untouched.
//
// # Logs that go
//
// A log whose directory is removed (or replaced by a new directory of the
// same name) is read to the end of what is still readable (the segment
// being read stays readable after its file is unlinked; later segments go
// with the directory), what was read is shipped and acknowledged, and then
// everything the log held is let go: mappings, files, goroutines, its
// cursor's lock, its place in the output and in the shipper's lists. A
// cursor under the directory goes with it and is never saved again; a
// cursor kept elsewhere (Config.CursorDir, CursorPath) is removed once
// everything read was acknowledged, so that a new log made at the same
// path starts afresh instead of being refused for the old log's cursor
// (if the shipper stops before, the cursor stays, saying how far the old
// log got). A shipper following a directory per job or per deployment
// thus holds only what is there.
//
// # At least once, with bounded duplicates
//
// Each log has its own cursor, locked by the shipper that uses it (a second
// shipper of the same log to the same place stops, naming the first one's
// pid). The cursor moves only when the output has acknowledged a batch,
// and only over batches acknowledged in the log's order. A batch holds its
// share of the log's window (Config.Window events, Config.WindowBytes
// bytes) until both its acknowledgement has come and a cursor covering it
// has been saved. So after the shipper is killed, the restarted one resends
// at most one window of events per log.
//
// Saves coalesce: while one is being written (a temporary file, fsync,
// rename, fsync of the directory) the acknowledgements that arrive are
// gathered into the next, and a log's cursor is saved at most every
// SaveInterval unless half its window waits for a save, so that a shipper
// of a hundred logs does not spend itself in fsync.
//
// A writer that keeps records until they are shipped (the mmaplog option
// KeepUnshipped) waits for the cursors under the log's DIR/cursors; a
// cursor kept elsewhere is registered there: a copy saved after it,
// DIR/cursors/NAME@HASH, that names it.
//
// # Memory
//
// The events in flight of all logs together live in 64 KiB chunks taken
// from one budget (Config.BufferBytes) before an event is encoded into
// them, where the output reads it from, and given back when the output
// acknowledged them; logs wait for it in the order they asked. So the shipper's memory for events is bounded whatever
// the number of logs, the backlog and the receivers' speed, and a busy log
// cannot keep a quiet one waiting for more than the next acknowledgement.
//
// # Metrics
//
// NewMetrics registers Prometheus metrics for a Shipper: per log (label
// log) events and bytes shipped, acknowledged sequence, lag in records and
// seconds, records lost, damage, cursor saves and whether the cursor is
// beyond the end of its log; per host of the output (label host)
// connections, errors, events sent and acknowledged; batch latency.
package ship
