// Package output delivers events to where logs are collected: Logstash's
// beats input (beats://), its tcp input with the json_lines codec (tcp://),
// a Redis list that its redis input pops (redis://), standard output and
// files (stdout, file://). It knows nothing of mmaplog records: an event is
// one JSON object, already encoded, so the log shipper (package ship) and
// any other producer, such as a collector of the shared-memory counters,
// ship through the same outputs.
//
// # The interface
//
// An Output takes batches:
//
//	out, err := output.Open("beats://logstash:5044", &output.Options{Window: 4})
//	...
//	err = out.Publish(ctx, events, func() { /* every event of the batch is delivered */ })
//	...
//	err = out.Close(ctx) // waits for the batches in flight
//
// Publish hands over a batch and returns at once, unless Window batches are
// already in flight: then it blocks (backpressure), which keeps the memory
// of a producer bounded when the receiver is slow or down. The callback
// runs once per batch, in publishing order, when the receiver acknowledged
// it; a producer advances its own durable position (a cursor) there and
// nowhere else. Until then the output retries for ever: it reconnects with
// exponential backoff and jitter (Options.BackoffMin to BackoffMax) and
// sends every unacknowledged batch again.
//
// # Delivery, per output
//
//   - beats:// is at least once. Each batch is one lumberjack v2 window
//     (github.com/elastic/go-lumber's client), optionally zlib-compressed;
//     Logstash acknowledges it once its pipeline has taken the events. A
//     batch in flight when the connection breaks is sent again: the
//     receiver may see it twice.
//   - redis:// is at least once: each batch is one RPUSH, pipelined, and
//     Redis's reply acknowledges it. What Redis loses after acknowledging
//     depends on its own persistence settings.
//   - tcp:// has no acknowledgements. A batch counts as delivered once the
//     kernel accepted it; events still in socket buffers, or inside the
//     receiver, when the receiver dies or the connection breaks are lost,
//     and nothing tells the sender. Use beats:// where that matters.
//   - stdout and file:// count a batch as delivered once write(2)
//     returned: it survives the shipper crashing, not a power loss.
//
// The events a receiver sees twice carry the same log.file.path and
// log.offset (the record's sequence number), which identify them: a
// Logstash fingerprint filter over the two, used as the document id,
// removes the duplicates in Elasticsearch.
//
// TLS (Options.TLS, built with TLSConfig from CA, client certificate and
// key files) applies to beats://, tcp:// and redis://.
package output
