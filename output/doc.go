// Package output delivers events to where logs are collected: Logstash's
// beats input (beats://), its tcp input with the json_lines codec (tcp://),
// a Redis list that its redis input pops (redis://), a Kafka topic
// (kafka://), Elasticsearch's _bulk API (elasticsearch://), an
// OpenTelemetry OTLP/HTTP logs receiver (otlp://), standard output and
// files (stdout, file://). It knows nothing
// of mmaplog records: an event is one JSON object, already encoded, so the
// log shipper (package ship) and any other producer, such as a collector of
// the shared-memory counters, ship through the same outputs.
//
// # The interface
//
// An Output takes batches:
//
//	out, err := output.Open("beats://ls1:5044,ls2:5044", &output.Options{Window: 64})
//	...
//	err = out.Publish(ctx, batch) // a Batch: its Events, and its Ack and Nack
//	err = out.Publish(ctx, output.NewBatch(events, func() { /* every event is delivered */ }))
//	...
//	err = out.Close(ctx) // waits for the batches in flight
//
// Publish hands over a batch and returns at once, unless Window batches are
// already in flight: then it blocks (backpressure), which keeps the memory
// of a producer bounded when the receivers are slow or down. The batch's
// Ack runs once, in publishing order, when the receiver acknowledged it; a
// producer advances its own durable position (a cursor) there and nowhere
// else, and takes back the memory of the events. Until then the output
// retries for ever: it reconnects with exponential backoff and jitter
// (Options.BackoffMin to BackoffMax) and sends every unacknowledged batch
// again; only a Close that gives up waiting calls Nack instead. A producer's
// own Batch type carries what it needs to act on the outcome; one that
// keeps its events as lines (Lines) has them written where they lie by the
// newline-delimited outputs.
//
// A producer with several independent streams (a shipper following many
// logs) publishes each through a Source of its own (NewSource): each
// source's acknowledgements come in its own order, whatever happens to the
// others' batches, and the output takes the batches waiting from the
// sources in turn, so that a quiet source's batch goes out next instead of
// after a busy one's backlog.
//
// # Hosts, windows and pipelines
//
// The network outputs take a comma-separated list of hosts. Each host has
// Options.Workers connections. By default the output fails over: it uses
// one host (the first picked at random) and goes on to the next one when a
// connection to it fails; with Options.Loadbalance every host's connections
// are used at once.
//
// A connection takes a window (the batches waiting, the sources taking
// turns: in its turn a source gives its batches until the window holds
// BulkMaxSize events, splitting the batch that does not fit; while several
// sources share the output, about a millisecond of the receivers'
// measured rate, at most SharedBulkMaxSize) whenever it has fewer than
// Options.Pipelining windows unacknowledged, sends it, and waits for its
// acknowledgement on another goroutine. Because connections pull windows
// only while they have room, a slow host holds at most its own pipeline's
// windows while the other hosts ship the rest (the fault of Filebeat's
// elastic/beats#12567, where one slow Logstash held up every batch, cannot
// happen). A host that sends nothing for Options.Timeout is dead; one that
// sends only keepalives for that long while there are other hosts is
// stalled: its connection is dropped and its windows are sent again, to the
// next host under failover or to any other under load balancing.
//
// # Delivery, per output
//
//   - beats:// is at least once. Each window is one lumberjack v2 window,
//     optionally zlib-compressed, written by this package (go-lumber's
//     client would box every event into an interface); Logstash
//     acknowledges it once its pipeline has taken the events. A window in
//     flight when the connection breaks is sent again: the receiver may
//     see it twice.
//   - redis:// is at least once: each window is one RPUSH, pipelined, and
//     Redis's reply acknowledges it. What Redis loses after acknowledging
//     depends on its own persistence settings.
//   - kafka:// is at least once with KafkaOptions.Acks "all" (the default,
//     with the idempotent producer) or "leader", through franz-go's
//     producer, which finds the partitions' leaders, fails over between
//     brokers and retries on its own; a window counts as delivered once
//     Kafka acknowledged every record of it. With Acks "none" nothing is
//     acknowledged and records are lost when a broker fails. Events larger
//     than KafkaOptions.MaxMessageBytes are dropped, counted in
//     Stats.Dropped and reported through Options.OnDrop.
//   - elasticsearch:// is at least once, per event: a window is one _bulk
//     request of create actions into the data stream
//     logs-DATASET-NAMESPACE, acknowledged once every event of it was
//     created (2xx), found a duplicate (409: with ESOptions.DocumentID
//     "fingerprint" an event sent twice is refused so) or refused for good
//     (another 4xx: written to ESOptions.DeadLetter, counted in
//     Stats.Dropped, reported through Options.OnDrop). Events refused for
//     the moment (429, 5xx) are sent again alone, after a backoff.
//   - otlp:// is at least once, per request (OTLP/HTTP, protobuf or
//     JSON): a 2xx acknowledges the window; records the receiver rejects
//     (a partial success, a 400) are counted in Stats.Dropped and
//     reported, not sent again; 429, 502, 503 and 504 are retried after
//     the receiver's Retry-After.
//   - tcp:// has no acknowledgements. A window counts as delivered once the
//     kernel accepted it; events still in socket buffers, or inside the
//     receiver, when the receiver dies or the connection breaks are lost,
//     and nothing tells the sender. Use beats:// where that matters.
//   - stdout and file:// count a window as delivered once write(2)
//     returned: it survives the shipper crashing, not a power loss. A
//     window is written whole with one write; a write that fails part-way
//     (a full disk) is taken out again by truncating the file to where the
//     window began, so the file never holds a torn line, and a file found
//     ending with one (a shipper killed in the middle of a write) is cut
//     back to its last whole line when the output opens it.
//
// The events a receiver sees twice carry the same log.file.path and
// log.offset (the record's sequence number), which identify them: a
// Logstash fingerprint filter over the two, used as the document id,
// removes the duplicates in Elasticsearch.
//
// TLS (Options.TLS, built with TLSConfig from CA, client certificate and
// key files) applies to beats://, tcp://, redis://, kafka://,
// elasticsearch:// and otlp://; elasticsearchs:// and otlps:// always use
// it.
package output
