package ship

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/mmaplog/mmaplog/mmaplog"
	"github.com/mmaplog/mmaplog/tail"
)

func TestEncoder(t *testing.T) {
	e, err := NewEncoder("/var/log/app", "web-1", map[string]string{"service.name": "checkout", "env": "prod", "log.source": "mmap"})
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2026, 3, 4, 5, 6, 7, 891234567, time.UTC).UnixNano()
	for _, c := range []struct {
		name    string
		payload string
		typ     uint8
		check   map[string]any // dotted path -> value
		absent  []string
	}{
		{name: "zerolog object", payload: `{"level":"info","time":"2026-01-01T00:00:00Z","message":"order placed","order":42}`, typ: uint8(mmaplog.LevelInfo),
			check: map[string]any{"message": "order placed", "order": 42.0, "level": "info", "@timestamp": "2026-03-04T05:06:07.891234Z",
				"log.offset": 17.0, "log.file.path": "/var/log/app", "log.level": "info", "log.source": "mmap", "host.name": "web-1",
				"agent.type": "mmaptail", "service.name": "checkout", "env": "prod"}},
		{name: "plain text", payload: "GET /index.html 200 \"quoted\"\ttab",
			check:  map[string]any{"message": "GET /index.html 200 \"quoted\"\ttab", "log.offset": 17.0, "@timestamp": "2026-03-04T05:06:07.891234Z"},
			absent: []string{"log.level"}},
		{name: "empty record", payload: "", check: map[string]any{"message": ""}},
		{name: "object keeps its @timestamp", payload: `{"@timestamp":"2020-01-01T00:00:00Z","a":1}`, check: map[string]any{"@timestamp": "2020-01-01T00:00:00Z", "a": 1.0}},
		{name: "empty object", payload: ` {} `, check: map[string]any{"log.offset": 17.0}, absent: []string{"message"}},
		{name: "invalid JSON becomes a message", payload: `{"a":1,}`, check: map[string]any{"message": `{"a":1,}`}},
		{name: "a JSON array is a message", payload: `[1,2]`, check: map[string]any{"message": "[1,2]"}},
		{name: "invalid UTF-8", payload: "bad \xff byte", check: map[string]any{"message": "bad \ufffd byte"}},
		{name: "collision merges", payload: `{"log":{"logger":"db"},"host":"oldstyle","service":{"version":"1.2"},"n":5}`,
			check: map[string]any{"log.logger": "db", "log.offset": 17.0, "host.name": "web-1", "service.version": "1.2", "service.name": "checkout", "n": 5.0,
				"labels.host": "oldstyle"}},
		{name: "displaced values are kept in labels", payload: `{"log":{"offset":"app's own","level":"info"},"agent":{"type":"custom"},"labels":{"host":"taken"},"host":{"name":"appbox","ip":"10.0.0.1"}}`,
			check: map[string]any{"log.offset": 17.0, "agent.type": "mmaptail", "host.name": "web-1", "host.ip": "10.0.0.1",
				"labels.log_offset": "app's own", "labels.agent_type": "custom", "labels.host": "taken", "labels.host_name": "appbox"},
			absent: []string{"labels.log_level"}},
		{name: "escaped key is checked", payload: `{"lo\u0067":{"x":1}}`, check: map[string]any{"log.x": 1.0, "log.offset": 17.0}},
		{name: "HTML characters stay", payload: `<b>&</b>`, check: map[string]any{"message": "<b>&</b>"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := e.Append([]byte("prefix"), tail.Record{Seq: 17, Time: ts, Type: c.typ, Payload: []byte(c.payload)})
			if !strings.HasPrefix(string(out), "prefix") {
				t.Fatalf("Append lost what dst held: %q", out)
			}
			ev := out[len("prefix"):]
			var m map[string]any
			if err := json.Unmarshal(ev, &m); err != nil {
				t.Fatalf("not JSON: %v: %s", err, ev)
			}
			for path, want := range c.check {
				if got := lookup(m, path); got != want {
					t.Errorf("%s = %#v, want %#v in %s", path, got, want, ev)
				}
			}
			for _, path := range c.absent {
				if got := lookup(m, path); got != nil {
					t.Errorf("%s = %#v, want none in %s", path, got, ev)
				}
			}
			if strings.Contains(string(ev), "\\u003c") {
				t.Errorf("HTML escaped: %s", ev)
			}
		})
	}
	for _, bad := range []map[string]string{{"a..b": "x"}, {"a": "1", "a.b": "2"}, {"log.offset": "1"}, {"@timestamp": "x"}} {
		if _, err := NewEncoder("/d", "h", bad); err == nil {
			t.Errorf("fields %v accepted", bad)
		}
	}
}

func lookup(m map[string]any, path string) any {
	var v any = m
	for _, p := range strings.Split(path, ".") {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[p]
	}
	return v
}

func FuzzScanObject(f *testing.F) {
	for _, s := range []string{`{}`, ` {"a":1} `, `{"a":[1,2,{"b":null}],"c":"\u00e9\n"}`, `{"a":1,}`, `{"a"}`, `{"a":01}`, `{"a":-0.5e+3}`, `{"a":"\x01"}`, "{\"a\":\"\xff\"}", `[]`, `{"a":tru}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		_, _, ok := scanObject(p, nil)
		trimmed := strings.TrimLeft(string(p), " \t\r\n")
		want := json.Valid(p) && utf8.Valid(p) && strings.HasPrefix(trimmed, "{")
		if ok != want {
			t.Fatalf("scanObject(%q) = %v, json.Valid and UTF-8 say %v", p, ok, want)
		}
		if ok {
			var m map[string]any
			if err := json.Unmarshal(p, &m); err != nil {
				t.Fatalf("accepted %q, which does not decode as an object: %v", p, err)
			}
		}
	})
}

func BenchmarkEncode(b *testing.B) {
	e, _ := NewEncoder("/var/log/app", "web-1", nil)
	rec := tail.Record{Seq: 123456, Time: time.Now().UnixNano(), Type: 3,
		Payload: []byte(`{"level":"info","service":"checkout","order":12345,"user":"u-1042","amount":42.5,"time":"2026-11-23T12:00:00Z","message":"order placed with some extra text to make it about 200 bytes"}`)}
	buf := make([]byte, 0, 1024)
	b.SetBytes(int64(len(rec.Payload)))
	for i := 0; i < b.N; i++ {
		buf = e.Append(buf[:0], rec)
	}
}
