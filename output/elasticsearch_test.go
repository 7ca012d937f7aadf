package output_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mmaplog/mmaplog/internal/peers"
	"github.com/mmaplog/mmaplog/output"
)

// shipEvent is an event as package ship makes it: record n of the log
// /var/log/apps/checkout, written now.
func shipEvent(n int) []byte {
	ts := time.Now().UTC().Format("2006-01-02T15:04:05.000000Z")
	return []byte(fmt.Sprintf(`{"@timestamp":%q,"message":"event %d","n":%d,"log":{"offset":%d,"file":{"path":"/var/log/apps/checkout"},"level":"info"},"host":{"name":"web-1"},"agent":{"name":"web-1","type":"mmaptail"}}`, ts, n, n, n))
}

// publishEvents publishes events made by mk for n in [0, count), per
// batch, checks the acks come in order and waits for all of them.
func publishEvents(t *testing.T, out output.Output, count, per int, mk func(int) []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	var mu sync.Mutex
	next := 0
	for i := 0; i < count; i += per {
		var evs [][]byte
		for j := i; j < min(i+per, count); j++ {
			evs = append(evs, mk(j))
		}
		first, n := i, len(evs)
		if err := out.Publish(ctx, output.NewBatch(evs, func() {
			mu.Lock()
			defer mu.Unlock()
			if first != next {
				t.Errorf("ack of the batch from %d, expected the one from %d", first, next)
			}
			next = first + n
		})); err != nil {
			t.Fatal(err)
		}
	}
	if err := out.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if next != count {
		t.Fatalf("acknowledged up to %d of %d", next, count)
	}
}

// checkVictoriaLogs queries every event back and checks each n arrived
// exactly once.
func checkVictoriaLogs(t *testing.T, v *peers.VictoriaLogs, client *http.Client, count int) []map[string]string {
	t.Helper()
	rows, err := v.WaitRows(client, "* | fields n, _msg, log.offset, log.file.path, log.level, host.name, data_stream.dataset, data_stream.namespace, data_stream.type", count)
	if err != nil {
		t.Fatal(err)
	}
	seen := make([]int, count)
	for _, r := range rows {
		n, err := strconv.Atoi(r["n"])
		if err != nil || n < 0 || n >= count {
			t.Fatalf("row %v: bad n", r)
		}
		seen[n]++
		if r["_msg"] != "event "+r["n"] || r["log.offset"] != r["n"] || r["log.file.path"] != "/var/log/apps/checkout" || r["host.name"] != "web-1" ||
			r["data_stream.dataset"] != "generic" || r["data_stream.namespace"] != "default" || r["data_stream.type"] != "logs" {
			t.Fatalf("row %v: not the event shipped", r)
		}
	}
	for n, c := range seen {
		if c != 1 {
			t.Fatalf("event %d stored %d times in VictoriaLogs (%d rows for %d events)", n, c, len(rows), count)
		}
	}
	return rows
}

// TestElasticsearchVictoriaLogs ships to a real VictoriaLogs through its
// Elasticsearch _bulk API, uncompressed and gzipped, and queries every
// event back: each arrived once, whole.
func TestElasticsearchVictoriaLogs(t *testing.T) {
	v := peers.StartVictoriaLogs(t, peers.VictoriaLogsOptions{})
	for i, level := range []int{0, 3} {
		t.Run(fmt.Sprint("gzip level ", level), func(t *testing.T) {
			const count = 20000
			out, err := output.Open("elasticsearch://"+v.Addr+peers.BulkPath+"?"+peers.BulkQuery, &output.Options{CompressionLevel: level, Window: 8, BulkMaxSize: 1000})
			if err != nil {
				t.Fatal(err)
			}
			base := i * count
			publishEvents(t, out, count, 500, func(n int) []byte { return shipEvent(base + n) })
			if st := out.Stats(); st.Events != count || st.Dropped != 0 || st.Hosts[0].Acked != count {
				t.Fatalf("stats %+v", st)
			}
			rows, err := v.WaitRows(nil, fmt.Sprintf("n:>=%d n:<%d | fields n", base, base+count), count)
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]int{}
			for _, r := range rows {
				seen[r["n"]]++
			}
			for n := base; n < base+count; n++ {
				if c := seen[strconv.Itoa(n)]; c != 1 {
					t.Fatalf("event %d stored %d times (%d rows)", n, c, len(rows))
				}
			}
		})
	}
}

// TestElasticsearchVictoriaLogsTLSAuth: VictoriaLogs over HTTPS with basic
// authentication; the output verifies its certificate with the CA file
// (elasticsearchs://, the user and password in the URL). With a wrong
// password nothing is acknowledged and the error says why.
func TestElasticsearchVictoriaLogsTLSAuth(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := makeCert(t, dir, "ca", nil, nil)
	makeCert(t, dir, "server", ca, caKey)
	v := peers.StartVictoriaLogs(t, peers.VictoriaLogsOptions{User: "shipper", Password: "s3cret",
		Cert: filepath.Join(dir, "server.crt"), Key: filepath.Join(dir, "server.key")})
	cfg, err := output.TLSConfig(filepath.Join(dir, "ca.crt"), "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	out, err := output.Open("elasticsearchs://shipper:s3cret@"+v.Addr+peers.BulkPath+"?"+peers.BulkQuery, &output.Options{TLS: cfg, CompressionLevel: 1})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "s3cret") {
		t.Fatalf("the output's name shows the password: %s", out)
	}
	const count = 3000
	publishEvents(t, out, count, 300, shipEvent)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer client.CloseIdleConnections()
	checkVictoriaLogs(t, v, client, count)

	errs := make(chan error, 100)
	out, err = output.Open("elasticsearchs://shipper:wrong@"+v.Addr+peers.BulkPath, &output.Options{TLS: cfg, BackoffMin: 10 * time.Millisecond,
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
	out.Publish(t.Context(), output.NewBatch([][]byte{shipEvent(0)}, func() { close(acked) }))
	select {
	case err := <-errs:
		if !strings.Contains(err.Error(), "401") {
			t.Fatalf("error %q does not say 401", err)
		}
	case <-acked:
		t.Fatal("acknowledged with a wrong password")
	case <-time.After(time.Minute): // a hang only
		t.Fatal("no error with a wrong password")
	}
	ctx, cancel := contextWithTimeout(50 * time.Millisecond)
	defer cancel()
	if err := out.Close(ctx); err == nil {
		t.Fatal("Close reported every batch acknowledged")
	}
}

// bulkItem is an item of a _bulk request as a test server read it.
type bulkItem struct {
	action map[string]map[string]string
	doc    map[string]any
	raw    []byte
}

// readBulk reads a _bulk request body, gunzipping it if it says so.
func readBulk(t *testing.T, r *http.Request) []bulkItem {
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			t.Errorf("gzip: %v", err)
			return nil
		}
		body = zr
	}
	b, err := io.ReadAll(body)
	if err != nil {
		t.Errorf("reading the body: %v", err)
		return nil
	}
	if len(b) == 0 || b[len(b)-1] != '\n' {
		t.Errorf("a _bulk body must end with a newline")
	}
	var items []bulkItem
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var it bulkItem
		if err := json.Unmarshal(sc.Bytes(), &it.action); err != nil {
			t.Errorf("action line %q: %v", sc.Bytes(), err)
			return nil
		}
		if !sc.Scan() {
			t.Errorf("action without a document")
			return nil
		}
		it.raw = append([]byte(nil), sc.Bytes()...)
		if err := json.Unmarshal(it.raw, &it.doc); err != nil {
			t.Errorf("document line %q: %v", it.raw, err)
			return nil
		}
		items = append(items, it)
	}
	return items
}

// bulkResponse writes a _bulk response with these item statuses.
func bulkResponse(w http.ResponseWriter, statuses []int, errType string) {
	var b strings.Builder
	errs := false
	for _, s := range statuses {
		errs = errs || s/100 != 2
	}
	fmt.Fprintf(&b, `{"took":1,"errors":%v,"items":[`, errs)
	for i, s := range statuses {
		if i > 0 {
			b.WriteByte(',')
		}
		if s/100 == 2 {
			fmt.Fprintf(&b, `{"create":{"_index":"x","status":%d}}`, s)
		} else {
			fmt.Fprintf(&b, `{"create":{"_index":"x","status":%d,"error":{"type":"%s_%d","reason":"because %d"}}}`, s, errType, s, s)
		}
	}
	b.WriteString("]}")
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, b.String())
}

func eventN(t *testing.T, doc map[string]any) int {
	n, ok := doc["n"].(float64)
	if !ok {
		t.Errorf("document without n: %v", doc)
	}
	return int(n)
}

// TestElasticsearchItemOutcomes runs against a small server of this test's
// own (VictoriaLogs answers every item 201), which answers each item by
// its event's n: n%10 == 3 is refused 429 twice, then created; 4 gets 503
// once, then created; 5 is a duplicate (409); 7 is a mapping error (400)
// every time. Only the refused items are sent again; every batch is
// acknowledged, and only once each of its events was created, found a
// duplicate or written to the dead-letter file, which holds exactly the
// 400 items with their log path, sequence number and error, 0600.
func TestElasticsearchItemOutcomes(t *testing.T) {
	var mu sync.Mutex
	sent := map[int]int{}     // n: times received
	accepted := map[int]int{} // n: times answered 2xx or 409
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			io.WriteString(w, `{"version":{"number":"8.15.0"}}`)
			return
		}
		items := readBulk(t, r)
		mu.Lock()
		var st []int
		for _, it := range items {
			n := eventN(t, it.doc)
			sent[n]++
			s := http.StatusCreated
			switch n % 10 {
			case 3:
				if sent[n] <= 2 {
					s = 429
				}
			case 4:
				if sent[n] == 1 {
					s = 503
				}
			case 5:
				s = 409
			case 7:
				s = 400
			}
			if s/100 == 2 || s == 409 {
				accepted[n]++
			}
			st = append(st, s)
		}
		mu.Unlock()
		bulkResponse(w, st, "mapper_parsing_exception")
	}))
	defer srv.Close()
	dlq := filepath.Join(t.TempDir(), "dead.ndjson")
	var dropMu sync.Mutex
	var dropped []string
	var retryMsgs int
	out, err := output.Open("elasticsearch://"+strings.TrimPrefix(srv.URL, "http://"), &output.Options{
		BackoffMin: time.Millisecond, BackoffMax: 5 * time.Millisecond, CompressionLevel: 1,
		Elasticsearch: output.ESOptions{DeadLetter: dlq},
		OnDrop: func(ev []byte, err error) {
			dropMu.Lock()
			dropped = append(dropped, fmt.Sprintf("%s: %v", ev, err))
			dropMu.Unlock()
		},
		OnError: func(err error) {
			if strings.Contains(err.Error(), "refused for now") {
				dropMu.Lock()
				retryMsgs++
				dropMu.Unlock()
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	const count, per = 2000, 100
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	acks := 0
	for i := 0; i < count; i += per {
		var evs [][]byte
		for j := i; j < i+per; j++ {
			evs = append(evs, shipEvent(j))
		}
		first := i
		if err := out.Publish(ctx, output.NewBatch(evs, func() {
			mu.Lock()
			defer mu.Unlock()
			for n := first; n < first+per; n++ {
				if n%10 != 7 && accepted[n] != 1 {
					t.Errorf("batch from %d acknowledged while event %d was accepted %d times", first, n, accepted[n])
				}
			}
			acks++
		})); err != nil {
			t.Fatal(err)
		}
	}
	if err := out.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if acks != count/per {
		t.Fatalf("%d of %d batches acknowledged", acks, count/per)
	}
	for n := 0; n < count; n++ {
		want := 1
		switch n % 10 {
		case 3:
			want = 3
		case 4:
			want = 2
		}
		if sent[n] != want {
			t.Fatalf("event %d sent %d times, want %d (only refused items are sent again)", n, sent[n], want)
		}
	}
	st := out.Stats()
	if st.Dropped != count/10 || len(dropped) != count/10 {
		t.Fatalf("%d dropped in the stats, %d reported, want %d", st.Dropped, len(dropped), count/10)
	}
	if !strings.Contains(dropped[0], "HTTP 400") || !strings.Contains(dropped[0], "mapper_parsing_exception_400") || !strings.Contains(dropped[0], dlq) {
		t.Fatalf("drop report %q does not say what and where", dropped[0])
	}
	if retryMsgs == 0 {
		t.Fatal("the items sent again were not reported")
	}
	fi, err := os.Stat(dlq)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("dead-letter file mode %v, want 0600", fi.Mode().Perm())
	}
	b, err := os.ReadFile(dlq)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != count/10 {
		t.Fatalf("%d dead letters, want %d", len(lines), count/10)
	}
	for i, l := range lines {
		var d struct {
			Status int
			Error  struct{ Type, Reason string }
			Index  string
			Log    struct {
				Offset int
				File   struct{ Path string }
			}
			Event map[string]any
		}
		if err := json.Unmarshal([]byte(l), &d); err != nil {
			t.Fatalf("dead letter %q: %v", l, err)
		}
		n := 10*i + 7
		if d.Status != 400 || d.Error.Type != "mapper_parsing_exception_400" || d.Log.Offset != n || d.Log.File.Path != "/var/log/apps/checkout" ||
			d.Index != "logs-generic-default" || int(d.Event["n"].(float64)) != n {
			t.Fatalf("dead letter %d: %s", i, l)
		}
	}
}

// TestElasticsearchRequestRetries: a server of this test's own answers
// the first request 503 (with Retry-After) and any request of more than 64
// items 413: with a single host the output waits and sends again, and
// splits what is too large, until every event is created once; a single
// event still too large goes to the dead-letter file.
func TestElasticsearchRequestRetries(t *testing.T) {
	var mu sync.Mutex
	requests := 0
	created := map[int]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			return
		}
		items := readBulk(t, r)
		mu.Lock()
		defer mu.Unlock()
		requests++
		switch {
		case requests == 1:
			w.Header().Set("Retry-After", "0")
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		case len(items) > 64:
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
			return
		}
		for _, it := range items {
			if len(it.raw) > 2000 {
				http.Error(w, "too large", http.StatusRequestEntityTooLarge)
				return
			}
		}
		st := make([]int, len(items))
		for i, it := range items {
			created[eventN(t, it.doc)]++
			st[i] = 201
		}
		bulkResponse(w, st, "")
	}))
	defer srv.Close()
	dlq := filepath.Join(t.TempDir(), "dead.ndjson")
	var drops []string
	out, err := output.Open("elasticsearch://"+strings.TrimPrefix(srv.URL, "http://"), &output.Options{
		BackoffMin: time.Millisecond, BackoffMax: 5 * time.Millisecond,
		Elasticsearch: output.ESOptions{DeadLetter: dlq},
		OnDrop:        func(ev []byte, err error) { drops = append(drops, err.Error()) },
	})
	if err != nil {
		t.Fatal(err)
	}
	const count = 1000
	big := 555
	publishEvents(t, out, count, 250, func(n int) []byte {
		if n == big {
			return []byte(fmt.Sprintf(`{"n":%d,"message":%q}`, n, strings.Repeat("x", 3000)))
		}
		return shipEvent(n)
	})
	for n := 0; n < count; n++ {
		want := 1
		if n == big {
			want = 0
		}
		if created[n] != want {
			t.Fatalf("event %d created %d times", n, created[n])
		}
	}
	if len(drops) != 1 || !strings.Contains(drops[0], "413") {
		t.Fatalf("drops %q, want the one large event's 413", drops)
	}
	if b, _ := os.ReadFile(dlq); !bytes.Contains(b, []byte(`"status":413`)) {
		t.Fatalf("dead-letter file %q", b)
	}
}

// TestElasticsearchRequest checks a request's shape at a server of this
// test's own: POST PATH/_bulk with the URL's query and filter_path, the
// API key, gzip, create actions into logs-DATASET-NAMESPACE with the
// fingerprint _id (the same for the same record, different for another),
// data_stream added to events without one, events kept as they are
// otherwise.
func TestElasticsearchRequest(t *testing.T) {
	var mu sync.Mutex
	var got []bulkItem
	var hdr http.Header
	var uri string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			return
		}
		items := readBulk(t, r)
		mu.Lock()
		got = append(got, items...)
		hdr, uri = r.Header.Clone(), r.URL.RequestURI()
		mu.Unlock()
		bulkResponse(w, make([]int, len(items)), "")
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	out, err := output.Open("elasticsearch://"+host+"/es/?pipeline=p1", &output.Options{CompressionLevel: 5,
		Elasticsearch: output.ESOptions{Dataset: "checkout", Namespace: "prod", APIKey: "id1:key1"}})
	if err != nil {
		t.Fatal(err)
	}
	evs := [][]byte{shipEvent(1), shipEvent(2), shipEvent(1), []byte(`{"message":"no log"}`), []byte(`{"data_stream":{"dataset":"own"},"n":5}`), []byte(`{}`)}
	publishEvents(t, out, len(evs), len(evs), func(i int) []byte { return evs[i] })
	if want := "ApiKey " + base64.StdEncoding.EncodeToString([]byte("id1:key1")); hdr.Get("Authorization") != want {
		t.Fatalf("Authorization %q, want %q", hdr.Get("Authorization"), want)
	}
	if hdr.Get("Content-Encoding") != "gzip" || hdr.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("headers %v", hdr)
	}
	if !strings.HasPrefix(uri, "/es/_bulk?") || !strings.Contains(uri, "pipeline=p1") || !strings.Contains(uri, "filter_path=") {
		t.Fatalf("request URI %q", uri)
	}
	if len(got) != len(evs) {
		t.Fatalf("%d items, want %d", len(got), len(evs))
	}
	ids := make([]string, len(got))
	for i, it := range got {
		c, ok := it.action["create"]
		if !ok || len(it.action) != 1 || c["_index"] != "logs-checkout-prod" {
			t.Fatalf("item %d: action %v, want create into logs-checkout-prod", i, it.action)
		}
		ids[i] = c["_id"]
	}
	if ids[0] == "" || ids[0] != ids[2] || ids[0] == ids[1] || len(ids[0]) != 32 {
		t.Fatalf("ids %q: want the same 32 hex digits for the same record, others for another", ids)
	}
	if ids[3] != "" || ids[4] != "" {
		t.Fatalf("ids %q: events without log.file.path and log.offset get none", ids)
	}
	ds := got[0].doc["data_stream"].(map[string]any)
	if ds["type"] != "logs" || ds["dataset"] != "checkout" || ds["namespace"] != "prod" {
		t.Fatalf("data_stream %v", ds)
	}
	if string(got[4].raw) != string(evs[4]) || !strings.HasPrefix(string(got[0].raw), strings.TrimSuffix(string(evs[0]), "}")) {
		t.Fatalf("events changed: %s / %s", got[0].raw, got[4].raw)
	}
	if string(got[5].raw) != `{"data_stream":{"type":"logs","dataset":"checkout","namespace":"prod"}}` {
		t.Fatalf("empty event became %s", got[5].raw)
	}
}

// TestElasticsearchOptions: bad options are errors naming the fix; a
// dead-letter path that is a symbolic link is refused.
func TestElasticsearchOptions(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	os.WriteFile(target, nil, 0o600)
	link := filepath.Join(dir, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		url  string
		opts output.ESOptions
		want string
	}{
		{"elasticsearch://h:9200", output.ESOptions{Dataset: "Bad"}, "lower case"},
		{"elasticsearch://h:9200", output.ESOptions{Namespace: "a-b"}, "without '-'"},
		{"elasticsearch://u:p@h:9200", output.ESOptions{APIKey: "a:b"}, "give one of them"},
		{"elasticsearch://h:9200", output.ESOptions{DocumentID: "random"}, "fingerprint or none"},
		{"elasticsearch://h:9200", output.ESOptions{DeadLetter: link}, "dead-letter file"},
		{"elasticsearch://h", output.ESOptions{}, "HOST:PORT"},
		{"elasticsearch://", output.ESOptions{}, "no host"},
	} {
		_, err := output.Open(c.url, &output.Options{Elasticsearch: c.opts})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %+v: error %v, want one saying %q", c.url, c.opts, err, c.want)
		}
	}
	if b, _ := os.ReadFile(target); len(b) != 0 {
		t.Fatal("written through the symbolic link")
	}
	out, err := output.Open("elasticsearch://h1:9200,h2:9200/prefix", nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(out.Stats().Hosts); n != 2 {
		t.Fatalf("%d hosts", n)
	}
	out.Close(context.Background())
}
