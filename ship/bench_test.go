package ship_test

import (
	"context"
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	lumber "github.com/elastic/go-lumber/server/v2"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/mmaplog/mmaplog/mmaplog"
	"github.com/mmaplog/mmaplog/output"
	"github.com/mmaplog/mmaplog/ship"
)

// BenchmarkShipBeats ships b.N records of 200 bytes of JSON, written
// beforehand, to go-lumber's server on a loopback port, and reports events
// per second from the shipper's start to the last acknowledgement. The
// receiver keeps each event's bytes without decoding them (decode=raw), as
// a Logstash would on cores of its own, or decodes them with
// encoding/json (decode=json), the server's default.
func BenchmarkShipBeats(b *testing.B) {
	for _, dec := range []string{"raw", "json"} {
		for _, level := range []int{0, 3} {
			b.Run("decode="+dec+"/zlib="+string(rune('0'+level)), func(b *testing.B) {
				benchShip(b, dec, level)
			})
		}
	}
}

func benchShip(b *testing.B, dec string, level int) {
	dir := filepath.Join(b.TempDir(), "log")
	w, err := mmaplog.Open(dir, &mmaplog.Options{MaxBackups: -1})
	if err != nil {
		b.Fatal(err)
	}
	p := []byte(`{"level":"info","time":"2026-11-23T12:00:00Z","service":"checkout","user":"u-1042","amount":42.5,"order":1234567,"message":"order placed, padded so that the record is exactly 200 bytes long ........"}`)
	if len(p) != 200 {
		b.Fatalf("record of %d bytes", len(p))
	}
	for i := 0; i < b.N; i++ {
		if _, err := w.Append(mmaplog.LevelInfo, p); err != nil {
			b.Fatal(err)
		}
	}
	w.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	opts := []lumber.Option{}
	if dec == "raw" {
		opts = append(opts, lumber.JSONDecoder(func(data []byte, v interface{}) error {
			*(v.(*interface{})) = json.RawMessage(append([]byte(nil), data...))
			return nil
		}))
	}
	srv, err := lumber.NewWithListener(l, opts...)
	if err != nil {
		b.Fatal(err)
	}
	go func() {
		for batch := range srv.ReceiveChan() {
			batch.ACK()
		}
	}()
	defer srv.Close()
	out, err := output.Open("beats://"+l.Addr().String(), &output.Options{Window: ship.OutputWindow, CompressionLevel: level})
	if err != nil {
		b.Fatal(err)
	}
	s, err := ship.New(ship.Config{Dir: dir, Output: out, CursorName: "bench", Host: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	b.ResetTimer()
	start := time.Now()
	go func() { done <- s.Run(ctx) }()
	for s.Stats().AckedSeq < uint64(b.N) {
		time.Sleep(time.Millisecond)
	}
	el := time.Since(start)
	b.StopTimer()
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/el.Seconds(), "events/s")
	b.SetBytes(200)
}

// BenchmarkShipKafka ships b.N records of 200 bytes of JSON, written
// beforehand, to franz-go's kfake cluster (3 brokers) in this process, as
// the bench harness's Kafka rows do; with -cpuprofile it shows where the
// time goes between the shipper, franz-go's producer and kfake.
func BenchmarkShipKafka(b *testing.B) {
	for _, comp := range []output.KafkaCompression{output.KafkaNoCompression, output.KafkaLZ4} {
		b.Run("compression="+comp.String(), func(b *testing.B) {
			dir := filepath.Join(b.TempDir(), "log")
			w, err := mmaplog.Open(dir, &mmaplog.Options{MaxBackups: -1})
			if err != nil {
				b.Fatal(err)
			}
			p := []byte(`{"level":"info","time":"2026-11-23T12:00:00Z","service":"checkout","user":"u-1042","amount":42.5,"order":1234567,"message":"order placed, padded so that the record is exactly 200 bytes long ........"}`)
			for i := 0; i < b.N; i++ {
				if _, err := w.Append(mmaplog.LevelInfo, p); err != nil {
					b.Fatal(err)
				}
			}
			w.Close()
			c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(3, "logs"))
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			out, err := output.Open("kafka://"+strings.Join(c.ListenAddrs(), ",")+"/logs", &output.Options{Window: ship.OutputWindow, Kafka: output.KafkaOptions{Compression: comp}})
			if err != nil {
				b.Fatal(err)
			}
			s, err := ship.New(ship.Config{Dir: dir, Output: out, CursorName: "bench", Host: "bench"})
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			b.ResetTimer()
			start := time.Now()
			go func() { done <- s.Run(ctx) }()
			for s.Stats().AckedSeq < uint64(b.N) {
				time.Sleep(time.Millisecond)
			}
			el := time.Since(start)
			b.StopTimer()
			cancel()
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/el.Seconds(), "events/s")
			b.SetBytes(200)
		})
	}
}
