// Command otlpreceiver is a test peer: the OpenTelemetry Collector's own
// OTLP receiver (go.opentelemetry.io/collector/receiver/otlpreceiver), HTTP
// only, writing every log record it receives as one JSON line. The tests
// and benchmarks of mmaplog's otlp:// output run it as their receiver, so
// that what the output sends is decoded by the code a real Collector runs.
//
//	otlpreceiver -endpoint 127.0.0.1:4318 -out records.ndjson
//
// Each line:
//
//	{"resource":{...},"scope":{"name":...,"version":...},
//	 "time_unix_nano":N,"observed_time_unix_nano":N,
//	 "severity_number":N,"severity_text":"...",
//	 "body":V,"body_type":"Str",
//	 "attributes":{...},"attribute_types":{"key":"Int",...}}
//
// (the types as pdata names them: Str, Int, Double, Bool, Map, Slice,
// Bytes, Empty). With -discard it only counts the records, and prints the
// count on standard output when it stops (SIGINT or SIGTERM). -throttle N
// answers the first N requests with 429 and Retry-After: 1 (a consumer
// error with RetryInfo, which the receiver turns into both); -unavailable N
// the first N with 503 (a retryable consumer error). -tls-cert and
// -tls-key serve HTTPS. It prints "ready" on standard output once it
// listens. It lives in a module of its own so that the Collector's
// dependencies stay out of mmaplog's go.mod.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configgrpc"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configtls"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

func main() {
	endpoint := flag.String("endpoint", "127.0.0.1:4318", "HOST:PORT to serve OTLP/HTTP on")
	out := flag.String("out", "", "file to append the records to, one JSON line each (default: standard output)")
	discard := flag.Bool("discard", false, "count the records only; print the count when stopped")
	throttle := flag.Int("throttle", 0, "answer the first N requests with 429 and Retry-After: 1")
	unavailable := flag.Int("unavailable", 0, "answer the first N requests with 503")
	cert := flag.String("tls-cert", "", "PEM server certificate: serve HTTPS")
	key := flag.String("tls-key", "", "PEM key of -tls-cert")
	flag.Parse()
	if err := run(*endpoint, *out, *discard, *throttle, *unavailable, *cert, *key); err != nil {
		fmt.Fprintln(os.Stderr, "otlpreceiver:", err)
		os.Exit(1)
	}
}

func run(endpoint, out string, discard bool, throttle, unavailable int, cert, key string) error {
	w := os.Stdout
	if out != "" {
		f, err := os.OpenFile(out, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	s := &sink{w: bufio.NewWriterSize(w, 1<<20), discard: discard}
	s.throttle.Store(int64(throttle))
	s.unavailable.Store(int64(unavailable))

	factory := otlpreceiver.NewFactory()
	cfg := factory.CreateDefaultConfig().(*otlpreceiver.Config)
	cfg.Protocols.GRPC = configoptional.None[configgrpc.ServerConfig]()
	http := cfg.Protocols.HTTP.GetOrInsertDefault()
	http.ServerConfig.NetAddr.Endpoint = endpoint
	http.ServerConfig.MaxRequestBodySize = 256 << 20
	if cert != "" {
		tls := configtls.NewDefaultServerConfig()
		tls.CertFile, tls.KeyFile = cert, key
		http.ServerConfig.TLS = configoptional.Some(tls)
	}
	cfg.Protocols.HTTP = configoptional.Some(*http)
	lc, err := consumer.NewLogs(s.consume)
	if err != nil {
		return err
	}
	ctx := context.Background()
	rcv, err := factory.CreateLogs(ctx, receivertest.NewNopSettings(factory.Type()), cfg, lc)
	if err != nil {
		return err
	}
	if err := rcv.Start(ctx, componenttest.NewNopHost()); err != nil {
		return err
	}
	fmt.Println("ready")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	err = rcv.Shutdown(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	if ferr := s.w.Flush(); err == nil {
		err = ferr
	}
	if discard {
		fmt.Println(s.count.Load())
	}
	return err
}

type sink struct {
	mu                    sync.Mutex
	w                     *bufio.Writer
	discard               bool
	count                 atomic.Int64
	throttle, unavailable atomic.Int64
}

// record is one line of the output.
type record struct {
	Resource       map[string]any    `json:"resource"`
	Scope          scope             `json:"scope"`
	Time           uint64            `json:"time_unix_nano"`
	ObservedTime   uint64            `json:"observed_time_unix_nano"`
	SeverityNumber int32             `json:"severity_number"`
	SeverityText   string            `json:"severity_text"`
	Body           any               `json:"body"`
	BodyType       string            `json:"body_type"`
	Attributes     map[string]any    `json:"attributes"`
	AttributeTypes map[string]string `json:"attribute_types"`
}

type scope struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

func (s *sink) consume(_ context.Context, ld plog.Logs) error {
	if s.throttle.Add(-1) >= 0 {
		st, err := status.New(codes.ResourceExhausted, "throttled by -throttle").
			WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(time.Second)})
		if err != nil {
			return err
		}
		return st.Err()
	}
	if s.unavailable.Add(-1) >= 0 {
		return fmt.Errorf("unavailable by -unavailable")
	}
	if s.discard {
		s.count.Add(int64(ld.LogRecordCount()))
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	enc := json.NewEncoder(s.w)
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		res := rl.Resource().Attributes().AsRaw()
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			sl := sls.At(j)
			sc := scope{Name: sl.Scope().Name(), Version: sl.Scope().Version()}
			lrs := sl.LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				lr := lrs.At(k)
				r := record{Resource: res, Scope: sc, Time: uint64(lr.Timestamp()), ObservedTime: uint64(lr.ObservedTimestamp()),
					SeverityNumber: int32(lr.SeverityNumber()), SeverityText: lr.SeverityText(),
					Body: lr.Body().AsRaw(), BodyType: lr.Body().Type().String(),
					Attributes: lr.Attributes().AsRaw(), AttributeTypes: map[string]string{}}
				lr.Attributes().Range(func(k string, v pcommon.Value) bool {
					r.AttributeTypes[k] = v.Type().String()
					return true
				})
				if err := enc.Encode(&r); err != nil {
					return err
				}
				s.count.Add(1)
			}
		}
	}
	return s.w.Flush()
}
