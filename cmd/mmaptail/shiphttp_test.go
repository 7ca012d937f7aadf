package main

import (
	"bufio"
	"bytes"
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

	"golang.org/x/sys/unix"

	"github.com/mmaplog/mmaplog/internal/peers"
)

// TestShipToVictoriaLogs runs `mmaptail ship --to elasticsearch://` as a
// process against a real VictoriaLogs (its Elasticsearch _bulk API), with
// --es-dataset and --es-namespace: every record arrives once, in the data
// stream's fields, and the cursor is caught up after SIGTERM.
func TestShipToVictoriaLogs(t *testing.T) {
	v := peers.StartVictoriaLogs(t, peers.VictoriaLogsOptions{})
	dir := filepath.Join(t.TempDir(), "log")
	writeLog(t, dir, 0, 2000)
	to := "elasticsearch://" + v.Addr + peers.BulkPath + "?" + peers.BulkQuery
	cmd, _, stderr := startMmaptail(t, "ship", "--log", dir, "--to", to, "--es-dataset", "checkout", "--es-namespace", "prod", "--host", "h1")
	rows, err := v.WaitRows(nil, "* | fields log.offset, data_stream.dataset, data_stream.namespace, host.name", 2000)
	if err != nil {
		t.Fatalf("%v; stderr: %s", err, stderr)
	}
	cmd.Process.Signal(unix.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("ship exited with %v: %s", err, stderr)
	}
	seen := map[string]int{}
	for _, r := range rows {
		seen[r["log.offset"]]++
		if r["data_stream.dataset"] != "checkout" || r["data_stream.namespace"] != "prod" || r["host.name"] != "h1" {
			t.Fatalf("row %v", r)
		}
	}
	for seq := 1; seq <= 2000; seq++ {
		if seen[strconv.Itoa(seq)] != 1 {
			t.Fatalf("record %d stored %d times", seq, seen[strconv.Itoa(seq)])
		}
	}
	if code, so, se := runCLI("stat", dir); code != 0 || !strings.Contains(so, "lag 0 record(s)") {
		t.Fatalf("stat: %d %s %s", code, so, se)
	}
}

// TestShipDeadLetter runs `mmaptail ship --to elasticsearch://` against a
// small server of this test's own (VictoriaLogs never refuses an item),
// which checks the API key and refuses every record with an odd sequence
// number as a mapping error: those are in the --es-dead-letter file with
// their sequence numbers, reported on standard error, and the cursor moves
// past them.
func TestShipDeadLetter(t *testing.T) {
	var mu sync.Mutex
	created := map[int]int{}
	var auth string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auth = r.Header.Get("Authorization")
		mu.Unlock()
		if r.Method == http.MethodGet {
			return
		}
		b, _ := io.ReadAll(r.Body)
		var st []string
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			sc.Scan()
			var doc struct{ Log struct{ Offset int } }
			json.Unmarshal(sc.Bytes(), &doc)
			if doc.Log.Offset%2 == 1 {
				st = append(st, `{"create":{"status":400,"error":{"type":"mapper_parsing_exception","reason":"odd"}}}`)
				continue
			}
			mu.Lock()
			created[doc.Log.Offset]++
			mu.Unlock()
			st = append(st, `{"create":{"status":201}}`)
		}
		fmt.Fprintf(w, `{"errors":true,"items":[%s]}`, strings.Join(st, ","))
	}))
	defer srv.Close()
	dir := filepath.Join(t.TempDir(), "log")
	writeLog(t, dir, 0, 300)
	dlq := filepath.Join(t.TempDir(), "dead.ndjson")
	cmd, _, stderr := startMmaptail(t, "ship", "--log", dir, "--to", "elasticsearch://"+strings.TrimPrefix(srv.URL, "http://"),
		"--es-dead-letter", dlq, "--es-api-key", "k1:secret", "--compression", "0")
	waitLines(t, dlq, 150)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		code, so, _ := runCLI("stat", dir)
		if code == 0 && strings.Contains(so, "lag 0 record(s)") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cursor did not catch up: %s; stderr: %s", so, stderr)
		}
	}
	cmd.Process.Signal(unix.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("ship exited with %v: %s", err, stderr)
	}
	if want := "ApiKey " + base64.StdEncoding.EncodeToString([]byte("k1:secret")); auth != want {
		t.Fatalf("Authorization %q, want %q", auth, want)
	}
	for seq := 2; seq <= 300; seq += 2 {
		if created[seq] != 1 {
			t.Fatalf("record %d created %d times", seq, created[seq])
		}
	}
	b, err := os.ReadFile(dlq)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var d struct {
			Status int
			Log    struct {
				Offset int
				File   struct{ Path string }
			}
		}
		if err := json.Unmarshal([]byte(l), &d); err != nil || d.Status != 400 || d.Log.Offset != 2*i+1 || d.Log.File.Path != dir {
			t.Fatalf("dead letter %d: %s", i, l)
		}
	}
	if want := fmt.Sprintf("dropped the event of record 299 of %s: refused by Elasticsearch: HTTP 400: mapper_parsing_exception: odd; kept in the dead-letter file %s", dir, dlq); !strings.Contains(stderr.String(), want) {
		t.Fatalf("stderr lacks %q:\n%s", want, stderr)
	}
}

// TestShipToOTLPCollector runs `mmaptail ship --to otlp://` as a process
// against the OpenTelemetry Collector's receiver, in JSON, with
// --otlp-service: every record arrives once, with its severity.
func TestShipToOTLPCollector(t *testing.T) {
	r := peers.StartOTLPReceiver(t)
	dir := filepath.Join(t.TempDir(), "log")
	writeLog(t, dir, 0, 1000)
	cmd, _, stderr := startMmaptail(t, "ship", "--log", dir, "--to", "otlp://"+r.Addr, "--otlp-encoding", "json", "--otlp-service", "shop",
		"--otlp-headers", "X-Tenant=t1", "--host", "h1")
	recs, err := r.WaitRecords(1000)
	if err != nil {
		t.Fatalf("%v; stderr: %s", err, stderr)
	}
	cmd.Process.Signal(unix.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("ship exited with %v: %s", err, stderr)
	}
	seen := map[string]int{}
	for _, rec := range recs {
		seen[fmt.Sprint(rec.Attributes["log.offset"])]++
		if rec.Resource["service.name"] != "shop" || rec.Resource["host.name"] != "h1" || rec.Time == 0 {
			t.Fatalf("record %+v", rec)
		}
	}
	for seq := 1; seq <= 1000; seq++ {
		if seen[strconv.Itoa(seq)] != 1 {
			t.Fatalf("record %d arrived %d times", seq, seen[strconv.Itoa(seq)])
		}
	}
}

// TestShipHTTPOutputFlagErrors: bad values of the new flags are one-line
// usage errors.
func TestShipHTTPOutputFlagErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--es-doc-id", "random"}, 2, "--es-doc-id"},
		{[]string{"--otlp-encoding", "xml"}, 2, "--otlp-encoding"},
		{[]string{"--otlp-headers", "novalue"}, 2, "--otlp-headers"},
		{[]string{"--to", "elasticsearch://h:9200", "--es-dataset", "Bad-Name"}, 1, "lower case"},
		{[]string{"--to", "elasticsearch://u:p@h:9200", "--es-api-key", "a:b"}, 1, "give one of them"},
	} {
		args := append([]string{"ship", "--log", "/x", "--to", "stdout"}, c.args...)
		code, _, stderr := runCLI(args...)
		if code != c.code || !strings.Contains(stderr, c.want) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%v: exit %d, stderr %q; want %d and one line with %q", c.args, code, stderr, c.code, c.want)
		}
	}
}
