// Package ship follows an mmaplog log and ships its records to an output
// (package output) at least once: what `mmaptail ship` runs.
//
// A Shipper reads records with a following tail.Reader, turns each into an
// event (Encoder: the record's own JSON object, or {"message": ...}, plus
// Elastic Common Schema metadata as Filebeat writes it), gathers events into
// batches and publishes them. A batch is sent when it is full or as soon as
// the reader has caught up with the writer, so that a quiet log is shipped
// within microseconds and a busy one in large batches.
//
// # At least once, with bounded duplicates
//
// The cursor moves only when the output has acknowledged a batch, and a
// batch holds its share of the window (Config.Window events,
// Config.WindowBytes bytes) until both its acknowledgement has come and a
// cursor covering it has been saved. So after the shipper is killed, the
// restarted one resends at most one window of events; and since the window
// also bounds what the shipper reads ahead of its receiver, its memory stays
// bounded whatever the backlog and however slow the receiver.
//
// Saves coalesce: while one is being written (a temporary file, fsync,
// rename, fsync of the directory) the acknowledgements that arrive are
// gathered into the next, so a slow disk costs throughput only when it is
// slower than the receiver.
//
// # Metrics
//
// NewMetrics registers Prometheus metrics for a Shipper (events and bytes
// shipped, acknowledged sequence, lag in records and seconds, records lost,
// connections and errors of the output, batch latency, cursor saves).
package ship
