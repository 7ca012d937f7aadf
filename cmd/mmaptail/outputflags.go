package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/mmaplog/mmaplog/internal/jsonenc"
	"github.com/mmaplog/mmaplog/output"
)

// outputFlags are the flags of a command that ships through package output:
// several hosts, TLS, the compression level, the Kafka producer's,
// Elasticsearch's and OTLP's settings. ship and counters share them.
type outputFlags struct {
	useTLS                    *bool
	ca, cert, key, serverName *string
	compression               *int
	loadbalance               *bool
	workers                   *int
	timeout                   *time.Duration
	backoffInit, backoffMax   *time.Duration

	kafkaKey, kafkaPartitioner, kafkaAcks, kafkaCompression, kafkaSASL *string
	kafkaMaxMessageBytes                                               *int

	esDataset, esNamespace, esAPIKey, esDeadLetter, esDocID *string
	otlpEncoding, otlpService, otlpHeaders                  *string

	names []string // the flags' names
}

// Limits of the output flags.
const (
	maxTimeout = time.Hour
	maxBackoff = time.Hour
	// maxKafkaMessageBytes is Kafka's own ceiling on a message (1 GiB).
	maxKafkaMessageBytes = 1 << 30
)

// addOutputFlags defines the output flags on fs. Their names (names) are
// what the output section of ship's configuration file takes: a flag added
// here has its config key with no more code.
func addOutputFlags(fs *flag.FlagSet) *outputFlags {
	before := map[string]bool{}
	fs.VisitAll(func(f *flag.Flag) { before[f.Name] = true })
	f := &outputFlags{
		useTLS:      fs.Bool("tls", false, "connect with TLS (implied by --tls-ca and --tls-cert)"),
		ca:          fs.String("tls-ca", "", "PEM file of the CA certificates to verify the receiver with (default: the system's)"),
		cert:        fs.String("tls-cert", "", "PEM client certificate, for receivers that verify clients"),
		key:         fs.String("tls-key", "", "PEM key of --tls-cert"),
		serverName:  fs.String("tls-server-name", "", "name to verify the receiver's certificate against (default: the host in --to)"),
		compression: fs.Int("compression", 3, "zlib compression level of beats batches, gzip level of elasticsearch and otlp requests, 0 (none) to 9"),
		loadbalance: fs.Bool("loadbalance", false, "spread batches over every host of --to (default: failover, one host at a time, the first picked at random)"),
		workers:     fs.Int("workers", output.DefaultWorkers, fmt.Sprintf("connections per host, 1 to %d", output.MaxWorkers)),
		timeout: fs.Duration("timeout", output.DefaultTimeout, fmt.Sprintf("a host that sends nothing for this long is dead, and one that only sends keepalives for this long is stalled: "+
			"its batches go to another host (Kafka: the produce request timeout); at most %v", maxTimeout)),
		backoffInit: fs.Duration("backoff-init", output.DefaultBackoffMin, "wait before reconnecting to a host after a failure; doubles after each failure in a row"),
		backoffMax:  fs.Duration("backoff-max", output.DefaultBackoffMax, fmt.Sprintf("longest wait between reconnections, at most %v", maxBackoff)),

		kafkaKey:             fs.String("kafka-key", "none", "kafka: the record key: none, offset (log.offset), or the dotted path of an event field (service.name)"),
		kafkaPartitioner:     fs.String("kafka-partitioner", "hash", "kafka: "+output.KafkaPartitioners+" (hash: the key's murmur2 hash, as Kafka's Java client)"),
		kafkaAcks:            fs.String("kafka-acks", "all", "kafka: "+output.KafkaAcks+" (all: every in-sync replica, with the idempotent producer)"),
		kafkaCompression:     fs.String("kafka-compression", "gzip", "kafka: "+output.KafkaCompressions),
		kafkaMaxMessageBytes: fs.Int("kafka-max-message-bytes", output.DefaultKafkaMaxMessageBytes, fmt.Sprintf("kafka: events larger than this are dropped, counted and reported; at most %d", maxKafkaMessageBytes)),
		kafkaSASL:            fs.String("kafka-sasl", "", "kafka: SASL mechanism, "+output.KafkaSASLs+", with the user and password of the URL (default plain when the URL has a user)"),

		esDataset:    fs.String("es-dataset", output.DefaultESDataset, "elasticsearch: the data stream is logs-DATASET-NAMESPACE (lower case, no '-')"),
		esNamespace:  fs.String("es-namespace", output.DefaultESNamespace, "elasticsearch: NAMESPACE of the data stream (lower case, no '-')"),
		esAPIKey:     fs.String("es-api-key", "", "elasticsearch: API key, ID:KEY or its base64 encoding (instead of a user and password in the URL)"),
		esDeadLetter: fs.String("es-dead-letter", "", "elasticsearch: file the events refused for good (mapping errors) are appended to, with the error, log and sequence number (created 0600); without it they are only reported and counted"),
		esDocID:      fs.String("es-doc-id", "fingerprint", "elasticsearch: "+output.ESDocumentIDs+" (fingerprint: _id from log.file.path and log.offset, so that events sent again are not indexed twice)"),
		otlpEncoding: fs.String("otlp-encoding", "protobuf", "otlp: "+output.OTLPEncodings),
		otlpService:  fs.String("otlp-service", "", "otlp: service.name of every record (default: the event's service.name, else the base name of its log directory)"),
		otlpHeaders:  fs.String("otlp-headers", "", "otlp: NAME=VALUE[,NAME=VALUE...] headers sent with every request"),
	}
	fs.VisitAll(func(fl *flag.Flag) {
		if !before[fl.Name] {
			f.names = append(f.names, fl.Name)
		}
	})
	return f
}

func (f *outputFlags) validate() error {
	oneOf := func(flag, v, allowed string) error {
		for _, a := range strings.Split(allowed, "|") {
			if v == a {
				return nil
			}
		}
		return usagef("--%s %q: want one of %s", flag, v, strings.ReplaceAll(allowed, "|", ", "))
	}
	switch {
	case *f.compression < 0 || *f.compression > 9:
		return usagef("--compression %d: want 0 to 9", *f.compression)
	case *f.workers < 1 || *f.workers > output.MaxWorkers:
		return usagef("--workers %d: want 1 to %d", *f.workers, output.MaxWorkers)
	case *f.timeout <= 0 || *f.timeout > maxTimeout:
		return usagef("--timeout %v: want more than 0 and at most %v", *f.timeout, maxTimeout)
	case *f.backoffInit <= 0 || *f.backoffInit > maxBackoff:
		return usagef("--backoff-init %v: want more than 0 and at most %v", *f.backoffInit, maxBackoff)
	case *f.backoffMax < *f.backoffInit || *f.backoffMax > maxBackoff:
		return usagef("--backoff-max %v: want at least --backoff-init (%v) and at most %v", *f.backoffMax, *f.backoffInit, maxBackoff)
	case *f.kafkaMaxMessageBytes < 1 || *f.kafkaMaxMessageBytes > maxKafkaMessageBytes:
		return usagef("--kafka-max-message-bytes %d: want 1 to %d", *f.kafkaMaxMessageBytes, maxKafkaMessageBytes)
	}
	if _, err := f.kafkaOptions(); err != nil {
		return err
	}
	if err := oneOf("es-doc-id", *f.esDocID, output.ESDocumentIDs); err != nil {
		return err
	}
	if err := oneOf("otlp-encoding", *f.otlpEncoding, output.OTLPEncodings); err != nil {
		return err
	}
	_, err := parseHeaders(*f.otlpHeaders)
	return err
}

// kafkaOptions are the Kafka producer's settings the flags say, their
// words read into output's types.
func (f *outputFlags) kafkaOptions() (output.KafkaOptions, error) {
	ko := output.KafkaOptions{MaxMessageBytes: *f.kafkaMaxMessageBytes}
	var err error
	if ko.Key, err = output.ParseKafkaKey(*f.kafkaKey); err != nil || *f.kafkaKey == "" {
		return ko, usagef("--kafka-key %q: want none, offset or the dotted path of an event field", *f.kafkaKey)
	}
	if ko.Partitioner, err = flagWord("kafka-partitioner", *f.kafkaPartitioner, output.KafkaPartitioners, output.ParseKafkaPartitioner); err != nil {
		return ko, err
	}
	if ko.Acks, err = flagWord("kafka-acks", *f.kafkaAcks, output.KafkaAcks, output.ParseKafkaAck); err != nil {
		return ko, err
	}
	if ko.Compression, err = flagWord("kafka-compression", *f.kafkaCompression, output.KafkaCompressions, output.ParseKafkaCompression); err != nil {
		return ko, err
	}
	if *f.kafkaSASL != "" { // none given: plain where the URL has a user
		if ko.SASL, err = flagWord("kafka-sasl", *f.kafkaSASL, output.KafkaSASLs, output.ParseKafkaSASL); err != nil {
			return ko, err
		}
	}
	return ko, nil
}

// flagWord reads the value v of --flag, one of the words of allowed (as
// "a|b|c"), with parse.
func flagWord[T any](flag, v, allowed string, parse func(string) (T, error)) (T, error) {
	t, err := parse(v)
	if err != nil || v == "" {
		return t, usagef("--%s %q: want one of %s", flag, v, strings.ReplaceAll(allowed, "|", ", "))
	}
	return t, nil
}

// parseHeaders reads --otlp-headers: NAME=VALUE pairs separated by commas.
func parseHeaders(s string) (map[string]string, error) {
	if s == "" {
		return nil, nil
	}
	h := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" || strings.ContainsAny(k, " :") {
			return nil, usagef("--otlp-headers %q: want NAME=VALUE[,NAME=VALUE...]", s)
		}
		h[k] = strings.TrimSpace(v)
	}
	return h, nil
}

// open opens the output at to, reporting its retried errors and its drops
// on stderr prefixed with the command's name. window is the number of
// batches it may have in flight, bulk the most events it sends at once.
func (f *outputFlags) open(to, cmd string, window, bulk int, stderr io.Writer) (output.Output, error) {
	oo, err := f.options(cmd, window, bulk, stderr)
	if err != nil {
		return nil, err
	}
	return output.Open(to, oo)
}

// options are the output's options the flags say.
func (f *outputFlags) options(cmd string, window, bulk int, stderr io.Writer) (*output.Options, error) {
	ko, err := f.kafkaOptions()
	if err != nil {
		return nil, err
	}
	oo := &output.Options{Window: window, BulkMaxSize: bulk, CompressionLevel: *f.compression,
		Loadbalance: *f.loadbalance, Workers: *f.workers, Timeout: *f.timeout,
		BackoffMin: *f.backoffInit, BackoffMax: *f.backoffMax,
		Kafka: ko,
		Elasticsearch: output.ESOptions{Dataset: *f.esDataset, Namespace: *f.esNamespace, APIKey: *f.esAPIKey,
			DeadLetter: *f.esDeadLetter, DocumentID: *f.esDocID},
		OTLP: output.OTLPOptions{Encoding: *f.otlpEncoding, ServiceName: *f.otlpService},
		OnError: func(err error) {
			if errors.Is(err, output.ErrRejected) {
				fmt.Fprintf(stderr, "mmaptail %s: %s (not sent again)\n", cmd, oneLine(err.Error()))
				return
			}
			fmt.Fprintf(stderr, "mmaptail %s: %s (retrying)\n", cmd, oneLine(err.Error()))
		},
		OnDrop: func(ev []byte, err error) {
			fmt.Fprintf(stderr, "mmaptail %s: dropped %s: %s\n", cmd, describeEvent(ev), oneLine(err.Error()))
		},
	}
	if oo.OTLP.Headers, err = parseHeaders(*f.otlpHeaders); err != nil {
		return nil, err
	}
	if *f.useTLS || *f.ca != "" || *f.cert != "" {
		if oo.TLS, err = output.TLSConfig(*f.ca, *f.cert, *f.key, *f.serverName); err != nil {
			return nil, err
		}
	}
	return oo, nil
}

// describeEvent names an event for a message: its log and sequence number
// (log.file.path, log.offset) when it has them, else its first bytes.
func describeEvent(ev []byte) string {
	path, okp := jsonenc.Lookup(ev, "log.file.path")
	off, oko := jsonenc.Lookup(ev, "log.offset")
	if okp && oko {
		return fmt.Sprintf("the event of record %s of %s", off, jsonenc.Text(nil, path))
	}
	if len(ev) > 80 {
		return fmt.Sprintf("an event (%d bytes) starting %s", len(ev), ev[:80])
	}
	return "the event " + string(ev)
}

// outputEmitter ships the counters' events through an output: Emit returns
// once the receiver acknowledged the batch, so the collector commits only
// delivered counts. While the receiver is down Emit waits (the output
// retries); increments meanwhile stay in the counters, nothing is lost.
type outputEmitter struct {
	ctx context.Context
	out output.Output
}

func (e *outputEmitter) Emit(batch [][]byte) error {
	done := make(chan struct{})
	if err := e.out.Publish(e.ctx, output.NewBatch(batch, func() { close(done) })); err != nil {
		return err
	}
	select {
	case <-done:
		return nil
	case <-e.ctx.Done():
		return fmt.Errorf("stopped before %s acknowledged %d event(s): they are shipped again next time: %w", e.out, len(batch), e.ctx.Err())
	}
}
