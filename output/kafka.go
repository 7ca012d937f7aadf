package output

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/mmaplog/mmaplog/internal/jsonenc"
)

// KafkaOptions configure kafka:// outputs. The zero value is the defaults.
type KafkaOptions struct {
	// Key is each record's key: none (KafkaKeyNone, the default), the
	// event's log.offset (KafkaKeyOffset), or a member of the event
	// (KafkaKeyField).
	Key KafkaKey
	// Partitioner picks the partition: KafkaHash (default), KafkaRoundRobin
	// or KafkaSticky.
	Partitioner KafkaPartitioner
	// Acks is what Kafka acknowledges a record after: KafkaAckAll
	// (default), KafkaAckLeader or KafkaAckNone.
	Acks KafkaAck
	// Compression of record batches: KafkaGzip (default, as Filebeat's),
	// KafkaNoCompression, KafkaSnappy, KafkaLZ4 or KafkaZstd.
	Compression KafkaCompression
	// MaxMessageBytes is the largest event (in bytes of JSON) shipped:
	// larger ones are dropped, counted in Stats.Dropped and reported
	// through Options.OnDrop, never silently. Default
	// DefaultKafkaMaxMessageBytes; keep it at most the topic's
	// max.message.bytes.
	MaxMessageBytes int
	// SASL is the authentication mechanism, with the user and password of
	// the URL: KafkaSASLPlain (what the default, KafkaSASLDefault, is where
	// the URL has a user), KafkaSASLSCRAMSHA256 or KafkaSASLSCRAMSHA512.
	// Use it with TLS.
	SASL KafkaSASL
	// Linger is how long the client waits for more records before it
	// sends a partition's batch. Default DefaultKafkaLinger.
	Linger time.Duration
}

// Defaults of KafkaOptions.
const (
	DefaultKafkaMaxMessageBytes = 1000000
	DefaultKafkaLinger          = time.Millisecond
)

// Kafka option words (what the Parse functions read), for help texts.
const (
	KafkaKeys         = "none|offset|FIELD"
	KafkaPartitioners = "hash|round-robin|sticky"
	KafkaAcks         = "all|leader|none"
	KafkaCompressions = "none|gzip|snappy|lz4|zstd"
	KafkaSASLs        = "plain|scram-sha-256|scram-sha-512"
)

// ErrTooLarge is wrapped by the error OnDrop gets for an event larger than
// KafkaOptions.MaxMessageBytes.
var ErrTooLarge = errors.New("event larger than the maximum message size")

// newKafka returns the kafka:// output: a franz-go producer for TOPIC on the
// cluster of the seed brokers. The client finds the partitions' leaders,
// fails over between brokers and retries on its own; the engine sees the
// cluster as one host with one connection whose windows are bursts of
// records, acknowledged once Kafka acknowledged every record of them (in
// any order across partitions; the sources' order is kept by the engine).
func newKafka(u *url.URL, name string, brokers []string, opts Options) (Output, error) {
	topic := trimSlash(u.Path)
	if topic == "" || strings.Contains(topic, "/") {
		return nil, fmt.Errorf("output %s: want kafka://BROKER:PORT[,BROKER:PORT...]/TOPIC", name)
	}
	ko := opts.Kafka
	if ko.MaxMessageBytes <= 0 {
		ko.MaxMessageBytes = DefaultKafkaMaxMessageBytes
	}
	if ko.Linger <= 0 {
		ko.Linger = DefaultKafkaLinger
	}
	kopts, err := kafkaClientOptions(u, brokers, topic, &opts, &ko)
	if err != nil {
		return nil, fmt.Errorf("output %s: %w", name, err)
	}
	key := ko.Key.of()
	opts.Pipelining *= 4
	opts.BulkMaxSize = max(opts.BulkMaxSize, 1)
	kopts = append(kopts, kgo.MaxBufferedRecords(max(50000, 2*opts.Pipelining*opts.BulkMaxSize)))
	var e *engine
	hooks := &kafkaHooks{onError: func(err error) { e.hosts[0].c.fail(fmt.Errorf("output %s: %w", name, err), opts.OnError) }}
	kopts = append(kopts, kgo.WithHooks(hooks))
	e = newEngine(name, opts, []string{strings.Join(brokers, ",")}, 1, func(ctx context.Context, _ string) (session, error) {
		cl, err := kgo.NewClient(kopts...)
		if err != nil {
			return nil, err
		}
		sctx, cancel := context.WithCancel(ctx)
		return &kafkaSession{cl: cl, ctx: sctx, cancel: cancel, key: key, max: ko.MaxMessageBytes, onDrop: opts.OnDrop, dropped: &e.dropped}, nil
	})
	e.hostConnected = func(*host) int { return int(hooks.conns.Load()) }
	return e, nil
}

// kafkaClientOptions translates the options into franz-go's.
func kafkaClientOptions(u *url.URL, brokers []string, topic string, opts *Options, ko *KafkaOptions) ([]kgo.Opt, error) {
	kopts := []kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.DefaultProduceTopic(topic),
		kgo.ProducerBatchMaxBytes(int32(min(ko.MaxMessageBytes+4096, 1<<30))),
		kgo.ProducerLinger(ko.Linger),
		kgo.ProduceRequestTimeout(opts.Timeout),
		kgo.DialTimeout(opts.DialTimeout),
		kgo.MetadataMinAge(min(opts.BackoffMax, 5*time.Second)),
		kgo.RetryBackoffFn(func(tries int) time.Duration {
			return min(opts.BackoffMin<<min(tries, 20), opts.BackoffMax)
		}),
	}
	acks, err := ko.Acks.opts()
	if err != nil {
		return nil, err
	}
	kopts = append(kopts, acks...)
	part, err := ko.Partitioner.partitioner()
	if err != nil {
		return nil, err
	}
	comp, err := ko.Compression.codec()
	if err != nil {
		return nil, err
	}
	kopts = append(kopts, kgo.RecordPartitioner(part), kgo.ProducerBatchCompression(comp))
	if opts.TLS != nil {
		kopts = append(kopts, kgo.DialTLSConfig(opts.TLS.Clone()))
	}
	if u.User != nil || ko.SASL != KafkaSASLDefault {
		m, err := ko.SASL.mechanism(u.User)
		if err != nil {
			return nil, err
		}
		kopts = append(kopts, kgo.SASL(m))
	}
	return kopts, nil
}

// of returns the function that makes a record's key of its event (nil:
// no key).
func (k KafkaKey) of() func(ev []byte) []byte {
	switch {
	case k.offset:
		return func(ev []byte) []byte { v, _ := jsonenc.Lookup(ev, "log.offset"); return v }
	case k.field != "":
		path := k.field
		return func(ev []byte) []byte {
			v, ok := jsonenc.Lookup(ev, path)
			if !ok {
				return nil
			}
			return jsonenc.Text(nil, v)
		}
	}
	return nil
}

// opts returns the client's options for a.
func (a KafkaAck) opts() ([]kgo.Opt, error) {
	switch a {
	case KafkaAckAll:
		return []kgo.Opt{kgo.RequiredAcks(kgo.AllISRAcks())}, nil
	case KafkaAckLeader:
		return []kgo.Opt{kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite()}, nil
	case KafkaAckNone:
		return []kgo.Opt{kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite()}, nil
	}
	return nil, fmt.Errorf("acks %v: want %s", a, KafkaAcks)
}

func (p KafkaPartitioner) partitioner() (kgo.Partitioner, error) {
	switch p {
	case KafkaHash:
		return kgo.StickyKeyPartitioner(nil), nil
	case KafkaRoundRobin:
		return kgo.RoundRobinPartitioner(), nil
	case KafkaSticky:
		return kgo.StickyPartitioner(), nil
	}
	return nil, fmt.Errorf("partitioner %v: want %s", p, KafkaPartitioners)
}

func (c KafkaCompression) codec() (kgo.CompressionCodec, error) {
	switch c {
	case KafkaGzip:
		return kgo.GzipCompression(), nil
	case KafkaNoCompression:
		return kgo.NoCompression(), nil
	case KafkaSnappy:
		return kgo.SnappyCompression(), nil
	case KafkaLZ4:
		return kgo.Lz4Compression(), nil
	case KafkaZstd:
		return kgo.ZstdCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("compression %v: want %s", c, KafkaCompressions)
}

// mechanism returns m with the URL's user and password.
func (m KafkaSASL) mechanism(user *url.Userinfo) (sasl.Mechanism, error) {
	name := user.Username()
	pass, _ := user.Password()
	if name == "" {
		what := m.String()
		if m == KafkaSASLDefault {
			what = KafkaSASLPlain.String()
		}
		return nil, fmt.Errorf("SASL %s needs a user and password: kafka://USER:PASSWORD@BROKER:PORT/TOPIC", what)
	}
	switch m {
	case KafkaSASLDefault, KafkaSASLPlain:
		return plain.Auth{User: name, Pass: pass}.AsMechanism(), nil
	case KafkaSASLSCRAMSHA256:
		return scram.Auth{User: name, Pass: pass}.AsSha256Mechanism(), nil
	case KafkaSASLSCRAMSHA512:
		return scram.Auth{User: name, Pass: pass}.AsSha512Mechanism(), nil
	}
	return nil, fmt.Errorf("SASL mechanism %v: want %s", m, KafkaSASLs)
}

// kafkaHooks counts the client's broker connections and reports the
// failed ones (a broker down, TLS or SASL refused): the client retries them
// on its own, and the records wait meanwhile.
type kafkaHooks struct {
	conns   atomic.Int64
	onError func(error)
}

func (h *kafkaHooks) OnBrokerConnect(meta kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	if err == nil {
		h.conns.Add(1)
		return
	}
	h.onError(fmt.Errorf("broker %s: connect: %w", net.JoinHostPort(meta.Host, fmt.Sprint(meta.Port)), err))
}

func (h *kafkaHooks) OnBrokerDisconnect(kgo.BrokerMetadata, net.Conn) { h.conns.Add(-1) }

type kafkaSession struct {
	cl      *kgo.Client
	ctx     context.Context
	cancel  context.CancelFunc
	key     func(ev []byte) []byte
	max     int
	onDrop  func([]byte, error)
	dropped *atomic.Uint64
}

// kafkaWindow is a window's records while Kafka has them.
type kafkaWindow struct {
	records []kgo.Record
	left    atomic.Int64
	done    chan struct{}
	mu      sync.Mutex
	err     error
}

func (kw *kafkaWindow) finish(err error) {
	if err != nil {
		kw.mu.Lock()
		if kw.err == nil {
			kw.err = err
		}
		kw.mu.Unlock()
	}
	if kw.left.Add(-1) == 0 {
		close(kw.done)
	}
}

func (kw *kafkaWindow) promise(_ *kgo.Record, err error) { kw.finish(err) }

// send hands the window's records to the client, which sends them in the
// background; events over the size limit are dropped and reported here.
func (s *kafkaSession) send(w *window) error {
	kw := &kafkaWindow{records: make([]kgo.Record, 0, w.events), done: make(chan struct{})}
	w.state = kw
	kw.left.Store(1) // held until every record is handed over
	w.each(func(ev []byte) {
		if len(ev) > s.max {
			s.dropped.Add(1)
			if s.onDrop != nil {
				s.onDrop(ev, fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, len(ev), s.max))
			}
			return
		}
		r := kgo.Record{Value: ev}
		if s.key != nil {
			r.Key = s.key(ev)
		}
		kw.records = append(kw.records, r)
	})
	kw.left.Add(int64(len(kw.records)))
	for i := range kw.records {
		s.cl.Produce(s.ctx, &kw.records[i], kw.promise)
	}
	kw.finish(nil)
	return nil
}

// await waits until Kafka acknowledged (or the client failed) every record
// of the window. A failed record fails the window: it is sent again whole.
func (s *kafkaSession) await(w *window) error {
	kw := w.state.(*kafkaWindow)
	<-kw.done
	w.state = nil
	kw.mu.Lock()
	defer kw.mu.Unlock()
	if kw.err != nil {
		return fmt.Errorf("kafka: %w", kw.err)
	}
	return nil
}

func (s *kafkaSession) close() error {
	s.cancel()
	s.cl.Close()
	return nil
}
