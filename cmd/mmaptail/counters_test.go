//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	lumber "github.com/elastic/go-lumber/server/v2"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sys/unix"

	"github.com/mmaplog/mmaplog/counter"
	"github.com/mmaplog/mmaplog/counter/vcs"
	"github.com/mmaplog/mmaplog/internal/shmtest"
)

func runCLI(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, strings.NewReader(""), &o, &e)
	return code, o.String(), e.String()
}

func testMap(t *testing.T) (*counter.Map, string) {
	url := "shm:" + shmtest.ShmName(t)
	m, err := counter.Create(url, &counter.Shape{Rules: 16, Metrics: 4}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Remove() })
	m.Describe(3, "http_requests", "route", "/api")
	m.NameMetric(1, "status_5xx")
	m.Add(3, 1, 7)
	m.Inc(0, 0)
	m.Inc(99, 0) // outside: counted as overflow
	return m, url
}

func TestCountersUsage(t *testing.T) {
	for _, args := range [][]string{
		{"counters"},
		{"counters", "--region", "shm:x"},
		{"counters", "--region", "shm:x", "--once", "--to", "stdout"},
		{"counters", "--region", "shm:x", "--to", "stdout", "--interval", "0s"},
		{"counters", "--bogus"},
	} {
		code, _, stderr := runCLI(args...)
		if code != 2 || !strings.HasPrefix(stderr, "mmaptail counters: ") || !strings.HasSuffix(stderr, "; run 'mmaptail counters --help'\n") {
			t.Errorf("%v: exit %d, stderr %q", args, code, stderr)
		}
	}
	code, stdout, stderr := runCLI("counters", "--help")
	if code != 0 || stderr != "" || !strings.Contains(stdout, "--region") || !strings.Contains(stdout, "vcs:KEY") {
		t.Errorf("--help: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	// A missing region: one line, exit 1.
	code, _, stderr = runCLI("counters", "--region", "shm:"+shmtest.ShmName(t), "--once")
	if code != 1 || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "no such region") {
		t.Errorf("missing region: exit %d, %q", code, stderr)
	}
	code, _, stderr = runCLI("counters", "--region", "shm:"+shmtest.ShmName(t), "--to", "kafka://x")
	if code != 1 {
		t.Errorf("unsupported output: exit %d, %q", code, stderr)
	}
}

func TestCountersOnce(t *testing.T) {
	_, url := testMap(t)
	code, stdout, stderr := runCLI("counters", "--region", url, "--once")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"RULE", `http_requests{route="/api"} status_5xx`, "(adds outside the shape)", "3 non-zero counter(s), 9 not yet shipped"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("table lacks %q:\n%s", want, stdout)
		}
	}
}

func TestCountersToStdout(t *testing.T) {
	m, url := testMap(t)
	code, stdout, stderr := runCLI("counters", "--region", url, "--to", "stdout", "--interval", "5ms", "--count", "2", "--host", "h1")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 3 {
		t.Fatalf("want 3 events, got:\n%s", stdout)
	}
	var ev map[string]any
	found := false
	for _, l := range lines {
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		if ev["rule_name"] == "http_requests" && ev["value"] == 7.0 && hostName(ev) == "h1" && ev["metric_name"] == "status_5xx" {
			found = true
		}
	}
	if !found {
		t.Errorf("no labelled event for (3,1):\n%s", stdout)
	}
	// Everything is committed: a second run ships only what was added since.
	m.Add(3, 1, 5)
	_, stdout, _ = runCLI("counters", "--region", url, "--to", "stdout", "--interval", "5ms", "--count", "1")
	if strings.Count(stdout, "\n") != 1 || !strings.Contains(stdout, `"value":5,"total":12`) {
		t.Errorf("second run shipped:\n%s", stdout)
	}
}

func scrape(t *testing.T, addr string) string {
	var last error
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			last = err
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return string(b)
	}
	t.Fatalf("scrape %s: %v", addr, last)
	return ""
}

func TestCountersMetrics(t *testing.T) {
	_, url := testMap(t)
	// --to stdout until SIGTERM: the scrape happens while it runs, however
	// long this machine takes to get there.
	cmd, _, stderr := startMmaptail(t, "counters", "--region", url, "--metrics", "127.0.0.1:0", "--to", "stdout", "--interval", "300ms")
	const serving = "serving Prometheus metrics on http://"
	waitStderr(t, stderr, "/metrics\n")
	addr, _, _ := strings.Cut(stderr.String()[strings.Index(stderr.String(), serving)+len(serving):], "/metrics")
	body := scrape(t, addr)
	for _, want := range []string{
		`http_requests_total{metric="status_5xx",route="/api",rule="3"} 7`,
		`mmaplog_counter_total{metric="0",rule="0"} 1`,
		`mmaplog_counter_overflow_total 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
	cmd.Process.Signal(unix.SIGTERM)
	if code := waitExit(t, cmd); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
}

func TestCountersVCS(t *testing.T) {
	key := shmtest.Key(t)
	seg, err := vcs.Create(fmt.Sprintf("sysv:%d", key), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer seg.Remove()
	seg.Add(70000, 5, 3)
	seg.Add(1, 127, 4)
	url := fmt.Sprintf("vcs:%#x", key)
	code, stdout, stderr := runCLI("counters", "--region", url, "--once")
	if code != 0 || !strings.Contains(stdout, "70000") || !strings.Contains(stdout, "2 non-zero counter(s), 7 not yet shipped") {
		t.Fatalf("--once: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = runCLI("counters", "--region", url, "--to", "stdout", "--interval", "5ms", "--grace", "1ms", "--count", "1")
	if code != 0 || strings.Count(stdout, "\n") != 2 || !strings.Contains(stdout, `"rule":70000,"metric":5,"value":3`) {
		t.Fatalf("collect: exit %d\n%s%s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "2 counter(s) changed") {
		t.Errorf("no scan report on stderr: %q", stderr)
	}
	// Collected: the segment is empty now.
	_, stdout, _ = runCLI("counters", "--region", url, "--once")
	if !strings.Contains(stdout, "0 non-zero counter(s)") {
		t.Errorf("after collection:\n%s", stdout)
	}
	// Not a VCS segment.
	code, _, stderr = runCLI("counters", "--region", fmt.Sprintf("vcs:%d", shmtest.Key(t)), "--once")
	if code != 1 || !strings.Contains(stderr, "no such region") {
		t.Errorf("missing segment: exit %d %q", code, stderr)
	}
}

// TestCountersToBeats ships counter deltas through the Beats output to
// go-lumber's own server: the values arrive, labelled, and a second run
// ships only what was added since (the counts were committed on the ACK).
func TestCountersToBeats(t *testing.T) {
	m, url := testMap(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := lumber.NewWithListener(l)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	events := make(chan map[string]any, 100)
	go func() {
		for b := range srv.ReceiveChan() {
			for _, e := range b.Events {
				if ev, ok := e.(map[string]any); ok {
					events <- ev
				}
			}
			b.ACK()
		}
	}()
	to := "beats://" + l.Addr().String()
	code, _, stderr := runCLI("counters", "--region", url, "--to", to, "--interval", "5ms", "--count", "2", "--host", "h1")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	got := drainEvents(events)
	found := false
	for _, ev := range got {
		if ev["rule_name"] == "http_requests" && ev["metric_name"] == "status_5xx" && ev["value"] == 7.0 && hostName(ev) == "h1" {
			found = true
		}
	}
	if len(got) != 3 || !found {
		t.Fatalf("received %v", got)
	}
	m.Add(3, 1, 5)
	if code, _, stderr := runCLI("counters", "--region", url, "--to", to, "--interval", "5ms", "--count", "1"); code != 0 {
		t.Fatalf("second run: exit %d: %s", code, stderr)
	}
	got = drainEvents(events)
	if len(got) != 1 || got[0]["value"] != 5.0 || got[0]["total"] != 12.0 {
		t.Fatalf("second run shipped %v", got)
	}
}

// drainEvents returns the events the receiver has put on ch. A command
// that returned has had every batch it sent acknowledged, and the receiver
// puts a batch's events on ch before it acknowledges it: they are all
// there, and what is not there was not sent.
func drainEvents(ch chan map[string]any) []map[string]any {
	var out []map[string]any
	for {
		select {
		case ev := <-ch:
			out = append(out, ev)
		default:
			return out
		}
	}
}

// hostName is an event's host.name.
func hostName(ev map[string]any) any {
	h, _ := ev["host"].(map[string]any)
	return h["name"]
}

// TestCountersToKafka: counter events go to a Kafka topic (franz-go's
// kfake cluster) like log events, in the same ECS shape.
func TestCountersToKafka(t *testing.T) {
	_, url := testMap(t)
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(3, "counters"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	to := "kafka://" + strings.Join(c.ListenAddrs(), ",") + "/counters"
	cmd, _, stderr := startMmaptail(t, "counters", "--region", url, "--to", to, "--interval", "5ms", "--count", "2", "--host", "h1", "--kafka-key", "rule_name")
	if code := waitExit(t, cmd); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics("counters"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var got []map[string]any
	for len(got) < 3 && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			var ev map[string]any
			if err := json.Unmarshal(r.Value, &ev); err != nil {
				t.Fatalf("%q: %v", r.Value, err)
			}
			if name, _ := ev["rule_name"].(string); name != string(r.Key) {
				t.Errorf("key %q, rule_name %q", r.Key, name)
			}
			got = append(got, ev)
		})
	}
	found := false
	for _, ev := range got {
		agent, _ := ev["agent"].(map[string]any)
		if ev["rule_name"] == "http_requests" && ev["value"] == 7.0 && hostName(ev) == "h1" && agent["type"] == "mmaptail" {
			found = true
		}
	}
	if len(got) != 3 || !found {
		t.Fatalf("consumed %v", got)
	}
}
