package output

import (
	"fmt"
	"strings"
)

// The settings of KafkaOptions are typed values, their zero values the
// defaults; the Parse functions read the words of the command line and
// the configuration file (the help strings KafkaAcks and the others list
// them), and String gives the word back.

// KafkaAck is what Kafka acknowledges a record after (KafkaOptions.Acks).
type KafkaAck int

// KafkaAck values.
const (
	// KafkaAckAll (the default): every in-sync replica wrote it; the
	// producer is idempotent, so that the client's own retries add no
	// duplicates and keep each partition in order. "all".
	KafkaAckAll KafkaAck = iota
	// KafkaAckLeader: the partition's leader wrote it. "leader".
	KafkaAckLeader
	// KafkaAckNone: no acknowledgement: a record counts as delivered once
	// written to the connection; records are lost when a broker fails.
	// "none".
	KafkaAckNone
)

// KafkaCompression is the codec of record batches
// (KafkaOptions.Compression).
type KafkaCompression int

// KafkaCompression values.
const (
	KafkaGzip          KafkaCompression = iota // the default, as Filebeat's; "gzip"
	KafkaNoCompression                         // "none"
	KafkaSnappy                                // "snappy"
	KafkaLZ4                                   // "lz4"
	KafkaZstd                                  // "zstd"
)

// KafkaPartitioner picks a record's partition (KafkaOptions.Partitioner).
type KafkaPartitioner int

// KafkaPartitioner values.
const (
	// KafkaHash (the default): the murmur2 hash of the key, as the Java
	// client does, so that a key stays on one partition; records without
	// a key stick to a partition for a batch. "hash".
	KafkaHash KafkaPartitioner = iota
	// KafkaRoundRobin: the partitions in turn. "round-robin".
	KafkaRoundRobin
	// KafkaSticky: a partition per batch, keys ignored. "sticky".
	KafkaSticky
)

// KafkaSASL is the SASL mechanism (KafkaOptions.SASL), used with the user
// and password of the URL. The zero value is KafkaSASLPlain where the URL
// has a user, and no SASL where it has none.
type KafkaSASL int

// KafkaSASL values.
const (
	KafkaSASLDefault     KafkaSASL = iota // plain with a user in the URL, else none; ""
	KafkaSASLPlain                        // "plain"
	KafkaSASLSCRAMSHA256                  // "scram-sha-256"
	KafkaSASLSCRAMSHA512                  // "scram-sha-512"
)

var (
	kafkaAckWords         = []string{KafkaAckAll: "all", KafkaAckLeader: "leader", KafkaAckNone: "none"}
	kafkaCompressionWords = []string{KafkaGzip: "gzip", KafkaNoCompression: "none", KafkaSnappy: "snappy", KafkaLZ4: "lz4", KafkaZstd: "zstd"}
	kafkaPartitionerWords = []string{KafkaHash: "hash", KafkaRoundRobin: "round-robin", KafkaSticky: "sticky"}
	kafkaSASLWords        = []string{KafkaSASLDefault: "", KafkaSASLPlain: "plain", KafkaSASLSCRAMSHA256: "scram-sha-256", KafkaSASLSCRAMSHA512: "scram-sha-512"}
)

// ParseKafkaAck reads KafkaAcks' words; "" is the default.
func ParseKafkaAck(s string) (KafkaAck, error) {
	return parseWord[KafkaAck]("acks", s, kafkaAckWords, KafkaAcks)
}

// ParseKafkaCompression reads KafkaCompressions' words; "" is the default.
func ParseKafkaCompression(s string) (KafkaCompression, error) {
	return parseWord[KafkaCompression]("compression", s, kafkaCompressionWords, KafkaCompressions)
}

// ParseKafkaPartitioner reads KafkaPartitioners' words; "" is the default.
func ParseKafkaPartitioner(s string) (KafkaPartitioner, error) {
	return parseWord[KafkaPartitioner]("partitioner", s, kafkaPartitionerWords, KafkaPartitioners)
}

// ParseKafkaSASL reads KafkaSASLs' words; "" is KafkaSASLDefault.
func ParseKafkaSASL(s string) (KafkaSASL, error) {
	return parseWord[KafkaSASL]("SASL mechanism", s, kafkaSASLWords, KafkaSASLs)
}

// String returns the word of a, as ParseKafkaAck reads it.
func (a KafkaAck) String() string { return wordOf(a, kafkaAckWords, "KafkaAck") }

// String returns the word of c, as ParseKafkaCompression reads it.
func (c KafkaCompression) String() string {
	return wordOf(c, kafkaCompressionWords, "KafkaCompression")
}

// String returns the word of p, as ParseKafkaPartitioner reads it.
func (p KafkaPartitioner) String() string {
	return wordOf(p, kafkaPartitionerWords, "KafkaPartitioner")
}

// String returns the word of m, as ParseKafkaSASL reads it ("" for
// KafkaSASLDefault).
func (m KafkaSASL) String() string { return wordOf(m, kafkaSASLWords, "KafkaSASL") }

// parseWord returns the value whose word is s ("" is the zero value).
func parseWord[T ~int](what, s string, words []string, want string) (T, error) {
	if s == "" {
		return 0, nil
	}
	for i, w := range words {
		if w == s {
			return T(i), nil
		}
	}
	return 0, fmt.Errorf("%s %q: want %s", what, s, want)
}

func wordOf[T ~int](v T, words []string, typ string) string {
	if v >= 0 && int(v) < len(words) {
		return words[v]
	}
	return fmt.Sprintf("%s(%d)", typ, int(v))
}

// KafkaKey is what a record's key is made of (KafkaOptions.Key): nothing
// (KafkaKeyNone, the zero value), the event's log.offset, the record's
// sequence number (KafkaKeyOffset), or a member of the event
// (KafkaKeyField: a string's text, any other value's JSON; no key where
// the event has none).
type KafkaKey struct {
	offset bool
	field  string // the dotted path of the member
}

// KafkaKeyNone gives records no key; KafkaKeyOffset gives each its
// event's log.offset.
var (
	KafkaKeyNone   = KafkaKey{}
	KafkaKeyOffset = KafkaKey{offset: true}
)

// KafkaKeyField keys records by the member of the event at the dotted
// path (such as "service.name").
func KafkaKeyField(path string) (KafkaKey, error) {
	if path == "" || strings.HasPrefix(path, ".") || strings.HasSuffix(path, ".") || strings.Contains(path, "..") {
		return KafkaKey{}, fmt.Errorf("key %q: want none, offset or the dotted path of an event field", path)
	}
	return KafkaKey{field: path}, nil
}

// ParseKafkaKey reads "none" (or ""), "offset" or the dotted path of a
// member of the event.
func ParseKafkaKey(s string) (KafkaKey, error) {
	switch s {
	case "", "none":
		return KafkaKeyNone, nil
	case "offset":
		return KafkaKeyOffset, nil
	}
	return KafkaKeyField(s)
}

// Field returns the dotted path of the member a KafkaKeyField keys by ("" for
// the others).
func (k KafkaKey) Field() string { return k.field }

func (k KafkaKey) String() string {
	switch {
	case k.offset:
		return "offset"
	case k.field != "":
		return k.field
	}
	return "none"
}
