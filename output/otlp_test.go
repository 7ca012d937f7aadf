package output_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/mmaplog/mmaplog/internal/peers"
	"github.com/mmaplog/mmaplog/output"
)

var otlpLevels = []string{"trace", "debug", "info", "warn", "error", "fatal", "panic", "notice"}
var otlpSeverities = []int32{1, 5, 9, 13, 17, 21, 22, 0}

// otlpEvent is an event as package ship makes it, with members of every
// JSON type: record n of the log /var/log/apps/<app>, at time ts.
func otlpEvent(n int, app string, ts time.Time) []byte {
	lv := otlpLevels[n%len(otlpLevels)]
	msg := fmt.Sprintf(`"event %d \"quoted\" \u00e9 \n"`, n)
	if n%5 == 4 {
		msg = `{"text":"structured","id":7}`
	}
	return []byte(fmt.Sprintf(`{"@timestamp":%q,"message":%s,"n":%d,"ratio":%d.5,"ok":%v,"none":null,"tags":["a",%d,{"k":"v"}],"empty":{},`+
		`"http":{"request":{"method":"GET","bytes":%d}},"log":{"offset":%d,"file":{"path":"/var/log/apps/%s"},"level":%q},`+
		`"host":{"name":"web-1"},"agent":{"name":"web-1","type":"mmaptail"},"ecs":{"version":"8.11.0"}}`,
		ts.UTC().Format("2006-01-02T15:04:05.000000Z"), msg, n, n, n%2 == 0, n, n*10, n, app, lv))
}

// checkOTLPRecord checks what the Collector decoded of otlpEvent(n, app, ts).
func checkOTLPRecord(t *testing.T, r peers.OTLPRecord, n int, app string, ts time.Time) {
	t.Helper()
	fail := func(what string, got, want any) {
		t.Helper()
		b, _ := json.Marshal(r)
		t.Fatalf("record %d: %s %v, want %v\n%s", n, what, got, want, b)
	}
	if want := uint64(ts.Truncate(time.Microsecond).UnixNano()); r.Time != want {
		fail("time_unix_nano", r.Time, want)
	}
	if r.ObservedTime == 0 {
		fail("observed_time_unix_nano", 0, "set")
	}
	if lv := otlpLevels[n%len(otlpLevels)]; r.SeverityText != lv || r.SeverityNumber != otlpSeverities[n%len(otlpLevels)] {
		fail("severity", fmt.Sprint(r.SeverityNumber, " ", r.SeverityText), fmt.Sprint(otlpSeverities[n%len(otlpLevels)], " ", lv))
	}
	if n%5 == 4 {
		m, ok := r.Body.(map[string]any)
		if r.BodyType != "Map" || !ok || m["text"] != "structured" || fmt.Sprint(m["id"]) != "7" {
			fail("body", r.Body, "a map")
		}
	} else if want := fmt.Sprintf("event %d \"quoted\" é \n", n); r.BodyType != "Str" || r.Body != want {
		fail("body", r.Body, want)
	}
	if r.Resource["host.name"] != "web-1" || r.Resource["service.name"] != app || len(r.Resource) != 2 {
		fail("resource", r.Resource, "host.name web-1, service.name "+app)
	}
	if r.Scope.Name != "mmaptail" || r.Scope.Version == "" {
		fail("scope", r.Scope, "mmaptail")
	}
	a, ty := r.Attributes, r.AttributeTypes
	want := map[string]string{
		"n": "Int", "ratio": "Double", "ok": "Bool", "none": "Empty", "tags": "Slice", "empty": "Map",
		"http.request.method": "Str", "http.request.bytes": "Int", "log.offset": "Int", "log.file.path": "Str",
		"agent.name": "Str", "agent.type": "Str", "ecs.version": "Str",
	}
	for k, typ := range want {
		if ty[k] != typ {
			fail("type of attribute "+k, ty[k], typ)
		}
	}
	if len(a) != len(want) {
		fail("attributes", a, want)
	}
	if fmt.Sprint(a["n"]) != strconv.Itoa(n) || fmt.Sprint(a["ratio"]) != fmt.Sprintf("%d.5", n) || a["ok"] != (n%2 == 0) ||
		a["http.request.method"] != "GET" || fmt.Sprint(a["http.request.bytes"]) != strconv.Itoa(n*10) ||
		fmt.Sprint(a["log.offset"]) != strconv.Itoa(n) || a["log.file.path"] != "/var/log/apps/"+app {
		fail("attributes", a, "the event's values")
	}
	if tags, ok := a["tags"].([]any); !ok || len(tags) != 3 || tags[0] != "a" || fmt.Sprint(tags[1]) != strconv.Itoa(n) || fmt.Sprint(tags[2]) != "map[k:v]" {
		fail("tags", a["tags"], []any{"a", n, map[string]any{"k": "v"}})
	}
}

// TestOTLPCollector ships to the OpenTelemetry Collector's own OTLP
// receiver (peers/otlpreceiver), in protobuf and in JSON, gzipped or not,
// from two logs: every record arrives once, with its time, severity, body,
// attributes and resource.
func TestOTLPCollector(t *testing.T) {
	for _, c := range []struct {
		enc   string
		level int
	}{{"protobuf", 0}, {"protobuf", 3}, {"json", 0}, {"json", 1}} {
		t.Run(fmt.Sprintf("%s gzip %d", c.enc, c.level), func(t *testing.T) {
			r := peers.StartOTLPReceiver(t)
			out, err := output.Open("otlp://"+r.Addr, &output.Options{CompressionLevel: c.level, OTLP: output.OTLPOptions{Encoding: c.enc}})
			if err != nil {
				t.Fatal(err)
			}
			const count = 3000
			ts := time.Now()
			app := func(n int) string { return []string{"checkout", "billing"}[n%2] }
			publishEvents(t, out, count, 200, func(n int) []byte { return otlpEvent(n, app(n), ts.Add(time.Duration(n)*time.Microsecond)) })
			recs, err := r.WaitRecords(count)
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != count {
				t.Fatalf("%d records, want %d", len(recs), count)
			}
			seen := make([]bool, count)
			for _, rec := range recs {
				n, err := strconv.Atoi(fmt.Sprint(rec.Attributes["n"]))
				if err != nil || n < 0 || n >= count || seen[n] {
					t.Fatalf("record n=%v: unknown or seen twice", rec.Attributes["n"])
				}
				seen[n] = true
				checkOTLPRecord(t, rec, n, app(n), ts.Add(time.Duration(n)*time.Microsecond))
			}
		})
	}
}

// TestOTLPServiceAndPlainRecords: --otlp-service names every record's
// service; a record that was not JSON (shipped as {"message": ...}) has
// the whole record as its body; an event without a time that parses has
// none (0) and keeps its @timestamp as an attribute.
func TestOTLPServiceAndPlainRecords(t *testing.T) {
	r := peers.StartOTLPReceiver(t)
	out, err := output.Open("otlp://"+r.Addr+"/v1/logs", &output.Options{OTLP: output.OTLPOptions{ServiceName: "shop"}})
	if err != nil {
		t.Fatal(err)
	}
	evs := [][]byte{
		[]byte(`{"@timestamp":"2026-01-02T03:04:05.123456Z","message":"plain text line","log":{"offset":1,"file":{"path":"/var/log/x"}},"host":{"name":"h"}}`),
		[]byte(`{"@timestamp":"yesterday","msg":"slog message","level":"WARN","service":{"name":"own"}}`),
	}
	publishEvents(t, out, len(evs), 2, func(i int) []byte { return evs[i] })
	recs, err := r.WaitRecords(len(evs))
	if err != nil {
		t.Fatal(err)
	}
	if recs[0].Body != "plain text line" || recs[0].Resource["service.name"] != "shop" || recs[0].Time != uint64(time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC).UnixNano()) {
		t.Fatalf("record 0: %+v", recs[0])
	}
	if recs[1].Body != "slog message" || recs[1].SeverityNumber != 13 || recs[1].SeverityText != "WARN" || recs[1].Time != 0 ||
		recs[1].Attributes["@timestamp"] != "yesterday" || recs[1].Attributes["service.name"] != "own" || recs[1].Resource["service.name"] != "shop" {
		t.Fatalf("record 1: %+v", recs[1])
	}
	if _, ok := recs[1].Resource["host.name"]; ok {
		t.Fatalf("record 1: host.name without a host: %+v", recs[1].Resource)
	}
}

// collectErrors returns an OnError that keeps the errors.
func collectErrors() (func(error), func() []string) {
	var mu sync.Mutex
	var errs []string
	return func(err error) {
			mu.Lock()
			errs = append(errs, err.Error())
			mu.Unlock()
		}, func() []string {
			mu.Lock()
			defer mu.Unlock()
			return append([]string(nil), errs...)
		}
}

// TestOTLPCollectorThrottled: the Collector's receiver answers the first
// two requests 429 with Retry-After: 1 (its consumer refuses with
// RetryInfo), then one 503: the output waits as told (no sooner than the
// second asked for), sends again, and every record arrives once.
func TestOTLPCollectorThrottled(t *testing.T) {
	r := peers.StartOTLPReceiver(t, "-throttle", "2", "-unavailable", "1")
	onError, errs := collectErrors()
	out, err := output.Open("otlp://"+r.Addr, &output.Options{BackoffMin: time.Millisecond, BackoffMax: 10 * time.Millisecond, OnError: onError})
	if err != nil {
		t.Fatal(err)
	}
	const count = 500
	ts := time.Now()
	start := time.Now()
	publishEvents(t, out, count, 500, func(n int) []byte { return otlpEvent(n, "checkout", ts) })
	if d := time.Since(start); d < 2*time.Second {
		t.Fatalf("delivered after %v: the two Retry-After: 1 were not honored", d)
	}
	recs, err := r.WaitRecords(count)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != count {
		t.Fatalf("%d records, want %d", len(recs), count)
	}
	var n429, n503 int
	for _, e := range errs() {
		switch {
		case strings.Contains(e, "HTTP 429") && strings.Contains(e, "again in 1s"):
			n429++
		case strings.Contains(e, "HTTP 503"):
			n503++
		}
	}
	if n429 != 2 || n503 != 1 {
		t.Fatalf("errors %q: want two 429 retried in 1s and one 503", errs())
	}
}

// TestOTLPCollectorTLS: otlps:// to the receiver serving HTTPS, verified
// with the CA file.
func TestOTLPCollectorTLS(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := makeCert(t, dir, "ca", nil, nil)
	makeCert(t, dir, "server", ca, caKey)
	_ = ca
	r := peers.StartOTLPReceiver(t, "-tls-cert", filepath.Join(dir, "server.crt"), "-tls-key", filepath.Join(dir, "server.key"))
	cfg, err := output.TLSConfig(filepath.Join(dir, "ca.crt"), "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	out, err := output.Open("otlps://"+r.Addr, &output.Options{TLS: cfg, CompressionLevel: 2})
	if err != nil {
		t.Fatal(err)
	}
	const count = 1000
	ts := time.Now()
	publishEvents(t, out, count, 100, func(n int) []byte { return otlpEvent(n, "checkout", ts) })
	recs, err := r.WaitRecords(count)
	if err != nil || len(recs) != count {
		t.Fatalf("%d records, want %d: %v", len(recs), count, err)
	}

	// Without the CA the receiver's certificate is not trusted: an
	// error, nothing acknowledged.
	onError, errs := collectErrors()
	out, err = output.Open("otlps://"+r.Addr, &output.Options{BackoffMin: 10 * time.Millisecond, OnError: onError})
	if err != nil {
		t.Fatal(err)
	}
	acked := make(chan struct{})
	out.Publish(t.Context(), output.NewBatch([][]byte{otlpEvent(0, "x", ts)}, func() { close(acked) }))
	waitUntil(t, "a certificate error", func() bool { return len(errs()) > 0 })
	select {
	case <-acked:
		t.Fatal("acknowledged by an untrusted receiver")
	default:
	}
	if e := errs()[0]; !strings.Contains(e, "certificate") {
		t.Fatalf("error %q does not say certificate", e)
	}
	ctx, cancel := contextWithTimeout(50 * time.Millisecond)
	defer cancel()
	out.Close(ctx)
}

// TestOTLPCollectorWrongPath: a path the receiver does not serve is an
// error at connection time (its probe), retried, nothing acknowledged.
func TestOTLPCollectorWrongPath(t *testing.T) {
	r := peers.StartOTLPReceiver(t)
	onError, errs := collectErrors()
	out, err := output.Open("otlp://"+r.Addr+"/v1/traces-not", &output.Options{BackoffMin: 10 * time.Millisecond, OnError: onError})
	if err != nil {
		t.Fatal(err)
	}
	acked := make(chan struct{})
	out.Publish(t.Context(), output.NewBatch([][]byte{otlpEvent(0, "x", time.Now())}, func() { close(acked) }))
	waitUntil(t, "a connection error", func() bool { return len(errs()) > 0 })
	if e := errs()[0]; !strings.Contains(e, "connect") || !strings.Contains(e, "404") {
		t.Fatalf("error %q: want a connect error with 404", e)
	}
	select {
	case <-acked:
		t.Fatal("acknowledged")
	default:
	}
	ctx, cancel := contextWithTimeout(50 * time.Millisecond)
	defer cancel()
	out.Close(ctx)
}

// otlpServer is a small OTLP/HTTP server of this test's own, for what the
// Collector's receiver never answers: partial successes and 400s. It
// counts the records of each request (the LogRecords in the protobuf).
type otlpServer struct {
	*httptest.Server
	mu       sync.Mutex
	requests int
	records  int
	header   http.Header // of the last request
}

func countRecords(b []byte, depth int) int {
	// ExportLogsServiceRequest.resource_logs(1).scope_logs(2).log_records(2)
	n := 0
	for len(b) > 0 {
		num, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return n
		}
		b = b[l:]
		vl := protowire.ConsumeFieldValue(num, typ, b)
		if vl < 0 {
			return n
		}
		if typ == protowire.BytesType {
			v, _ := protowire.ConsumeBytes(b)
			switch {
			case depth == 0 && num == 1, depth == 1 && num == 2:
				n += countRecords(v, depth+1)
			case depth == 2 && num == 2:
				n++
			}
		}
		b = b[vl:]
	}
	return n
}

func startOTLPServer(t *testing.T, answer func(s *otlpServer, w http.ResponseWriter, records int)) *otlpServer {
	s := &otlpServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if len(b) == 0 {
			w.Header().Set("Content-Type", "application/x-protobuf")
			return // the probe
		}
		n := countRecords(b, 0)
		s.mu.Lock()
		s.header = r.Header.Clone()
		s.requests++
		s.records += n
		s.mu.Unlock()
		answer(s, w, n)
	}))
	t.Cleanup(s.Close)
	return s
}

// TestOTLPPartialSuccess: a server of this test's own accepts requests but
// rejects 3 records of each, in a protobuf partial success: the batches
// are acknowledged, the rejected records counted in Stats.Dropped and
// reported (ErrRejected) with the receiver's message. The requests carry
// the headers of OTLPOptions.Headers and the URL's basic authentication.
func TestOTLPPartialSuccess(t *testing.T) {
	srv := startOTLPServer(t, func(s *otlpServer, w http.ResponseWriter, records int) {
		var partial []byte
		partial = protowire.AppendTag(partial, 1, protowire.VarintType)
		partial = protowire.AppendVarint(partial, 3)
		partial = protowire.AppendTag(partial, 2, protowire.BytesType)
		partial = protowire.AppendString(partial, "bad attribute")
		var resp []byte
		resp = protowire.AppendTag(resp, 1, protowire.BytesType)
		resp = protowire.AppendBytes(resp, partial)
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(resp)
	})
	var mu sync.Mutex
	var rejected []error
	out, err := output.Open("otlp://u1:pw1@"+strings.TrimPrefix(srv.URL, "http://"), &output.Options{
		OTLP: output.OTLPOptions{Headers: map[string]string{"X-Scope-OrgID": "tenant-1"}},
		OnError: func(err error) {
			mu.Lock()
			rejected = append(rejected, err)
			mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	publishEvents(t, out, 1000, 100, func(n int) []byte { return otlpEvent(n, "x", time.Now()) })
	st := out.Stats()
	if want := uint64(3 * srv.requests); st.Dropped != want || st.Events != 1000 {
		t.Fatalf("dropped %d, acknowledged %d; want %d and 1000", st.Dropped, st.Events, want)
	}
	if len(rejected) != srv.requests || !errors.Is(rejected[0], output.ErrRejected) || !strings.Contains(rejected[0].Error(), "bad attribute") {
		t.Fatalf("reports %v", rejected)
	}
	if srv.records != 1000 {
		t.Fatalf("the server counted %d records", srv.records)
	}
	if u, p, ok := (&http.Request{Header: srv.header}).BasicAuth(); srv.header.Get("X-Scope-OrgID") != "tenant-1" || !ok || u != "u1" || p != "pw1" ||
		srv.header.Get("Content-Type") != "application/x-protobuf" {
		t.Fatalf("request headers %v", srv.header)
	}
}

// TestOTLPBadRequest: a 400 (the receiver cannot take the data, not to
// be retried) drops the records, each counted and reported through
// OnDrop; a JSON partial success is read too.
func TestOTLPBadRequest(t *testing.T) {
	srv := startOTLPServer(t, func(s *otlpServer, w http.ResponseWriter, records int) {
		if s.requests == 1 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"code":3,"message":"unparseable"}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"partialSuccess":{"rejectedLogRecords":"2","errorMessage":"two bad"}}`)
	})
	var drops []string
	var rejected []string
	out, err := output.Open("otlp://"+strings.TrimPrefix(srv.URL, "http://"), &output.Options{Window: 1,
		OnDrop:  func(ev []byte, err error) { drops = append(drops, err.Error()) },
		OnError: func(err error) { rejected = append(rejected, err.Error()) },
	})
	if err != nil {
		t.Fatal(err)
	}
	publishEvents(t, out, 20, 10, func(n int) []byte { return otlpEvent(n, "x", time.Now()) })
	if len(drops) != 10 || !strings.Contains(drops[0], "HTTP 400: unparseable") {
		t.Fatalf("drops %q", drops)
	}
	if st := out.Stats(); st.Dropped != 12 {
		t.Fatalf("dropped %d, want 12", st.Dropped)
	}
	if len(rejected) < 1 || !strings.Contains(rejected[len(rejected)-1], "2 of 10: two bad") {
		t.Fatalf("errors %q", rejected)
	}
}

// TestOTLPOptions: bad options are errors.
func TestOTLPOptions(t *testing.T) {
	for _, c := range []struct {
		url  string
		opts output.Options
		want string
	}{
		{"otlp://h:4318", output.Options{OTLP: output.OTLPOptions{Encoding: "xml"}}, "protobuf or json"},
		{"otlp://h:4318", output.Options{OTLP: output.OTLPOptions{Headers: map[string]string{"Bad Name": "x"}}}, "header"},
		{"otlp://h:4318", output.Options{CompressionLevel: 12}, "compression"},
		{"otlp://h", output.Options{}, "HOST:PORT"},
		{"otlps://", output.Options{}, "no host"},
	} {
		_, err := output.Open(c.url, &c.opts)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one saying %q", c.url, err, c.want)
		}
	}
	out, err := output.Open("otlps://u:p@h1:4318,h2:4318", nil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), ":p@") || len(out.Stats().Hosts) != 2 {
		t.Fatalf("%s: %+v", out, out.Stats())
	}
	out.Close(context.Background())
}
