package output_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/mmaplog/mmaplog/output"
)

// startKafka starts franz-go's kfake cluster: 3 brokers on loopback ports,
// the topic "logs" with 3 partitions.
func startKafka(t *testing.T, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(3), kfake.SeedTopics(3, "logs")}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func kafkaURL(c *kfake.Cluster, userinfo string) string {
	return "kafka://" + userinfo + strings.Join(c.ListenAddrs(), ",") + "/logs"
}

// kafkaEvents are events as the shipper makes them: log.offset is the
// record's sequence number, 1 to n.
func publishKafka(t *testing.T, out output.Output, n, per int, size int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pad := strings.Repeat(".", max(0, size-90))
	var mu sync.Mutex
	next := 1
	for i := 1; i <= n; i += per {
		var evs [][]byte
		for j := i; j < min(i+per, n+1); j++ {
			evs = append(evs, []byte(fmt.Sprintf(`{"n":%d,"user":"u-%d","log":{"offset":%d,"file":{"path":"/var/log/a"}},"message":"%s"}`, j, j%7, j, pad)))
		}
		first, count := i, len(evs)
		if err := out.Publish(ctx, output.NewBatch(evs, func() {
			mu.Lock()
			defer mu.Unlock()
			if first != next {
				t.Errorf("ack of the batch from %d, expected the one from %d", first, next)
			}
			next = first + count
		})); err != nil {
			t.Fatal(err)
		}
	}
	if err := out.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if next != n+1 {
		t.Fatalf("acknowledged up to %d of %d", next-1, n)
	}
}

type kafkaRecord struct {
	partition int32
	key       string
	ev        struct {
		N    int
		User string
	}
}

// consumeKafka reads the whole topic with franz-go's consumer.
func consumeKafka(t *testing.T, c *kfake.Cluster, want int, opts ...kgo.Opt) []kafkaRecord {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics("logs"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []kafkaRecord
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for len(recs) < want {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records: %v", len(recs), want, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			kr := kafkaRecord{partition: r.Partition, key: string(r.Key)}
			if err := json.Unmarshal(r.Value, &kr.ev); err != nil {
				t.Errorf("record %q: %v", r.Value, err)
			}
			recs = append(recs, kr)
		})
	}
	return recs
}

// checkKafka: every event 1..n arrived once, in order within each partition.
func checkKafka(t *testing.T, recs []kafkaRecord, n int) map[int32]int {
	t.Helper()
	seen := map[int]int{}
	last := map[int32]int{}
	parts := map[int32]int{}
	for _, r := range recs {
		seen[r.ev.N]++
		if r.ev.N <= last[r.partition] {
			t.Fatalf("partition %d: event %d after %d", r.partition, r.ev.N, last[r.partition])
		}
		last[r.partition] = r.ev.N
		parts[r.partition]++
	}
	for i := 1; i <= n; i++ {
		if seen[i] != 1 {
			t.Fatalf("event %d arrived %d times", i, seen[i])
		}
	}
	return parts
}

// TestKafkaKcat ships to a kfake cluster of 3 brokers with the offset as
// the key, and reads the topic back with kcat (librdkafka, an independent
// client): every event, once, in log order within its partition, keyed
// by its offset, spread over the partitions.
func TestKafkaKcat(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatal("kcat is not installed: this test reads the topic with an independent client; apt-get install kcat (scripts/test does)")
	}
	c := startKafka(t)
	out, err := output.Open(kafkaURL(c, ""), &output.Options{Window: 16, Kafka: output.KafkaOptions{Key: output.KafkaKeyOffset}})
	if err != nil {
		t.Fatal(err)
	}
	const n = 10000
	publishKafka(t, out, n, 250, 200)
	b, err := exec.Command(kcat, "-b", strings.Join(c.ListenAddrs(), ","), "-t", "logs", "-C", "-e", "-q", "-f", `%p\t%k\t%s\n`).Output()
	if err != nil {
		t.Fatalf("kcat: %v", err)
	}
	var recs []kafkaRecord
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), "\t", 3)
		if len(f) != 3 {
			t.Fatalf("kcat line %q", sc.Text())
		}
		p, _ := strconv.Atoi(f[0])
		kr := kafkaRecord{partition: int32(p), key: f[1]}
		if err := json.Unmarshal([]byte(f[2]), &kr.ev); err != nil {
			t.Fatalf("kcat line %q: %v", sc.Text(), err)
		}
		if kr.key != strconv.Itoa(kr.ev.N) {
			t.Fatalf("event %d has the key %q, want its offset", kr.ev.N, kr.key)
		}
		recs = append(recs, kr)
	}
	parts := checkKafka(t, recs, n)
	if len(parts) != 3 {
		t.Fatalf("events in %d partitions, want all 3: %v", len(parts), parts)
	}
}

// TestKafkaOptions: the partitioners, acknowledgement levels, compression
// codecs and a field as the key; every event arrives.
func TestKafkaOptions(t *testing.T) {
	field := func(path string) output.KafkaKey {
		k, err := output.KafkaKeyField(path)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	for _, ko := range []output.KafkaOptions{
		{Partitioner: output.KafkaRoundRobin, Compression: output.KafkaNoCompression},
		{Partitioner: output.KafkaSticky, Compression: output.KafkaSnappy, Acks: output.KafkaAckLeader},
		{Key: field("user"), Compression: output.KafkaLZ4},
		{Key: field("log.file.path"), Compression: output.KafkaZstd, Acks: output.KafkaAckNone},
	} {
		t.Run(fmt.Sprintf("%+v", ko), func(t *testing.T) {
			c := startKafka(t)
			out, err := output.Open(kafkaURL(c, ""), &output.Options{Window: 8, Kafka: ko})
			if err != nil {
				t.Fatal(err)
			}
			const n = 3000
			publishKafka(t, out, n, 100, 150)
			recs := consumeKafka(t, c, n)
			parts := checkKafka(t, recs, n)
			byKey := map[string]int32{}
			for _, r := range recs {
				switch ko.Key.Field() {
				case "user":
					if r.key != r.ev.User {
						t.Fatalf("event %d: key %q, want %q", r.ev.N, r.key, r.ev.User)
					}
				case "log.file.path":
					if r.key != "/var/log/a" {
						t.Fatalf("event %d: key %q", r.ev.N, r.key)
					}
				default:
					if r.key != "" {
						t.Fatalf("event %d: key %q, want none", r.ev.N, r.key)
					}
				}
				if p, ok := byKey[r.key]; ko.Key != output.KafkaKeyNone && ok && p != r.partition {
					t.Fatalf("key %q in partitions %d and %d", r.key, p, r.partition)
				}
				byKey[r.key] = r.partition
			}
			if ko.Partitioner == output.KafkaRoundRobin && len(parts) != 3 {
				t.Fatalf("round-robin used %d partitions", len(parts))
			}
		})
	}
}

// TestKafkaDropsLargeEvents: an event over the maximum message size is
// dropped, counted and reported with the event, and the batch holding it
// is acknowledged; the others arrive.
func TestKafkaDropsLargeEvents(t *testing.T) {
	c := startKafka(t)
	var mu sync.Mutex
	var drops []string
	out, err := output.Open(kafkaURL(c, ""), &output.Options{Kafka: output.KafkaOptions{MaxMessageBytes: 1000}, OnDrop: func(ev []byte, err error) {
		mu.Lock()
		defer mu.Unlock()
		drops = append(drops, fmt.Sprintf("%.40s: %v", ev, err))
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	acked := make(chan struct{})
	evs := [][]byte{[]byte(`{"n":1}`), []byte(`{"n":2,"big":"` + strings.Repeat("x", 2000) + `"}`), []byte(`{"n":3}`)}
	if err := out.Publish(ctx, output.NewBatch(evs, func() { close(acked) })); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(ctx); err != nil {
		t.Fatal(err)
	}
	<-acked
	if st := out.Stats(); st.Dropped != 1 || st.Events != 3 {
		t.Fatalf("stats %+v", st)
	}
	if len(drops) != 1 || !strings.Contains(drops[0], `{"n":2`) || !strings.Contains(drops[0], "larger than the maximum message size") {
		t.Fatalf("drops reported: %q", drops)
	}
	recs := consumeKafka(t, c, 2)
	if len(recs) != 2 || recs[0].ev.N+recs[1].ev.N != 4 {
		t.Fatalf("records %+v", recs)
	}
}

// TestKafkaBrokerDownAtStart: no broker listens when the output starts;
// once the cluster comes up on the ports named, every event arrives.
func TestKafkaBrokerDownAtStart(t *testing.T) {
	var ports []int
	var addrs []string
	for i := 0; i < 3; i++ {
		l := listen(t, "127.0.0.1:0")
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
		addrs = append(addrs, l.Addr().String())
		l.Close()
	}
	out, err := output.Open("kafka://"+strings.Join(addrs, ",")+"/logs", &output.Options{BackoffMin: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	const n = 2000
	wait := make(chan struct{})
	go func() {
		defer close(wait)
		publishKafka(t, out, n, 100, 100)
	}()
	time.Sleep(300 * time.Millisecond) // the producer retries meanwhile
	if st := out.Stats(); st.Events != 0 {
		t.Fatalf("%d events acknowledged with no broker up", st.Events)
	}
	c := startKafka(t, kfake.Ports(ports...))
	select {
	case <-wait:
	case <-time.After(2 * time.Minute):
		t.Fatalf("events not acknowledged after the brokers came up: %+v", out.Stats())
	}
	checkKafka(t, consumeKafka(t, c, n), n)
}

// TestKafkaSASL: SASL PLAIN and SCRAM against a cluster that requires it;
// a wrong password is reported and nothing is acknowledged.
func TestKafkaSASL(t *testing.T) {
	c := startKafka(t, kfake.EnableSASL(), kfake.Superuser("PLAIN", "ship", "s3cret"), kfake.Superuser("SCRAM-SHA-256", "ship", "s3cret"), kfake.Superuser("SCRAM-SHA-512", "ship", "s3cret"))
	admin := []kgo.Opt{kgo.SASL(plainAuth("ship", "s3cret"))}
	total := 0
	for _, mech := range []output.KafkaSASL{output.KafkaSASLPlain, output.KafkaSASLSCRAMSHA256, output.KafkaSASLSCRAMSHA512} {
		out, err := output.Open(kafkaURL(c, "ship:s3cret@"), &output.Options{Kafka: output.KafkaOptions{SASL: mech}})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out.String(), "s3cret") {
			t.Fatalf("the output's name shows the password: %s", out)
		}
		publishKafka(t, out, 500, 100, 100)
		total += 500
	}
	if recs := consumeKafka(t, c, total, admin...); len(recs) != total {
		t.Fatalf("%d records, want %d", len(recs), total)
	}
	errs := make(chan error, 100)
	out, err := output.Open(kafkaURL(c, "ship:wrong@"), &output.Options{BackoffMin: 20 * time.Millisecond, BackoffMax: 100 * time.Millisecond,
		OnError: func(err error) {
			select {
			case errs <- err:
			default:
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	acked := make(chan struct{})
	out.Publish(context.Background(), output.NewBatch([][]byte{[]byte(`{"n":1}`)}, func() { close(acked) }))
	select {
	case err := <-errs:
		t.Logf("refused as expected: %v", err)
	case <-acked:
		t.Fatal("acknowledged with a wrong password")
	case <-time.After(2 * time.Minute):
		t.Fatal("no error with a wrong password")
	}
	ctx, cancel := contextWithTimeout(50 * time.Millisecond)
	defer cancel()
	out.Close(ctx)
}

// TestKafkaTLS: the brokers speak TLS with a certificate of a private CA,
// which the output verifies.
func TestKafkaTLS(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := makeCert(t, dir, "ca", nil, nil)
	makeCert(t, dir, "server", ca, caKey)
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key"))
	if err != nil {
		t.Fatal(err)
	}
	c := startKafka(t, kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert}}))
	cfg, err := output.TLSConfig(filepath.Join(dir, "ca.crt"), "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	out, err := output.Open(kafkaURL(c, ""), &output.Options{TLS: cfg})
	if err != nil {
		t.Fatal(err)
	}
	publishKafka(t, out, 1000, 100, 100)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	checkKafka(t, consumeKafka(t, c, 1000, kgo.DialTLSConfig(&tls.Config{RootCAs: pool})), 1000)
}

func plainAuth(user, pass string) sasl.Mechanism {
	return plain.Auth{User: user, Pass: pass}.AsMechanism()
}
