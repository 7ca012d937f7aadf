package ship

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mmaplog/mmaplog/internal/ecs"
	"github.com/mmaplog/mmaplog/internal/jsonenc"
	"github.com/mmaplog/mmaplog/ring"
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
		{name: "zerolog object", payload: `{"level":"info","time":"2026-01-01T00:00:00Z","message":"order placed","order":42}`, typ: uint8(ring.LevelInfo),
			check: map[string]any{"message": "order placed", "order": 42.0, "level": "info", "@timestamp": "2026-03-04T05:06:07.891234Z",
				"log.offset": 17.0, "log.file.path": "/var/log/app", "log.level": "info", "log.source": "mmap", "host.name": "web-1",
				"agent.type": "mmaptail", "agent.name": "web-1", "agent.version": ecs.AgentVersion(), "ecs.version": ecs.Version,
				"service.name": "checkout", "env": "prod"}},
		{name: "plain text", payload: "GET /index.html 200 \"quoted\"\ttab",
			check:  map[string]any{"message": "GET /index.html 200 \"quoted\"\ttab", "log.offset": 17.0, "@timestamp": "2026-03-04T05:06:07.891234Z", "ecs.version": ecs.Version},
			absent: []string{"log.level"}},
		{name: "empty record", payload: "", check: map[string]any{"message": ""}},
		{name: "object keeps its @timestamp", payload: `{"@timestamp":"2020-01-01T00:00:00Z","a":1}`, check: map[string]any{"@timestamp": "2020-01-01T00:00:00Z", "a": 1.0}},
		{name: "empty object", payload: ` {} `, check: map[string]any{"log.offset": 17.0}, absent: []string{"message"}},
		{name: "invalid JSON becomes a message", payload: `{"a":1,}`, check: map[string]any{"message": `{"a":1,}`}},
		{name: "a JSON array is a message", payload: `[1,2]`, check: map[string]any{"message": "[1,2]"}},
		{name: "invalid UTF-8", payload: "bad \xff byte", check: map[string]any{"message": "bad \ufffd byte"}},
		{name: "collision merges", payload: `{"log":{"logger":"db"},"host":"oldstyle","service":{"version":"1.2"},"n":5}`,
			check: map[string]any{"log.logger": "db", "log.offset": 17.0, "host.name": "web-1", "service.version": "1.2", "service.name": "checkout", "n": 5.0,
				"labels.host": "oldstyle", "agent.type": "mmaptail"}},
		{name: "displaced values are kept in labels", payload: `{"log":{"offset":"app's own","level":"info"},"agent":{"type":"custom"},"labels":{"host":"taken"},"host":{"name":"appbox","ip":"10.0.0.1"}}`,
			typ: uint8(ring.LevelInfo),
			check: map[string]any{"log.offset": 17.0, "agent.type": "mmaptail", "host.name": "web-1", "host.ip": "10.0.0.1",
				"labels.log_offset": "app's own", "labels.agent_type": "custom", "labels.host": "taken", "labels.host_name": "appbox"},
			absent: []string{"labels.log_level"}},
		{name: "collision keeps the record's @timestamp", payload: `{"@timestamp":"2020-01-01T00:00:00Z","host":"h"}`,
			check: map[string]any{"@timestamp": "2020-01-01T00:00:00Z", "labels.host": "h", "host.name": "web-1"}},
		{name: "labels that are not an object", payload: `{"labels":"x","host":"h"}`,
			check: map[string]any{"labels.labels": "x", "labels.host": "h"}},
		{name: "ecs member", payload: `{"ecs":{"version":"1.0.0"}}`, check: map[string]any{"ecs.version": ecs.Version, "labels.ecs_version": "1.0.0"}},
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
			if dup := duplicateKey(ev); dup != "" {
				t.Fatalf("member %q twice in %s", dup, ev)
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
	for _, bad := range []map[string]string{{"a..b": "x"}, {"a": "1", "a.b": "2"}, {"log.offset": "1"}, {"@timestamp": "x"}, {"log.file.line": "1"}} {
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

// duplicateKey returns a member name that an object in the JSON text p has
// twice, or "".
func duplicateKey(p []byte) string {
	d := json.NewDecoder(bytes.NewReader(p))
	var walk func() string
	walk = func() string {
		tok, err := d.Token()
		if err != nil {
			return ""
		}
		switch tok {
		case json.Delim('{'):
			seen := map[string]bool{}
			for d.More() {
				k, _ := d.Token()
				ks, _ := k.(string)
				if seen[ks] {
					return ks
				}
				seen[ks] = true
				if s := walk(); s != "" {
					return s
				}
			}
			d.Token()
		case json.Delim('['):
			for d.More() {
				if s := walk(); s != "" {
					return s
				}
			}
			d.Token()
		}
		return ""
	}
	return walk()
}

// oracleMerge is the merge as encoding/json does it, decoding record and
// metadata and encoding the result again: what Encoder.merge must agree
// with (FuzzEncoder). It is the slow path the shipper once took.
func oracleMerge(e *Encoder, rec, meta []byte) map[string]any {
	var ev, m map[string]any
	d := json.NewDecoder(bytes.NewReader(rec))
	d.UseNumber()
	if d.Decode(&ev) != nil {
		return nil
	}
	d = json.NewDecoder(bytes.NewReader(meta))
	d.UseNumber()
	if d.Decode(&m) != nil {
		panic("metadata is not JSON")
	}
	displaced := map[string]any{}
	for k := range e.keys {
		if v, ok := m[k]; ok {
			ev[k] = oracleValue(ev[k], v, k, displaced)
		}
	}
	if len(displaced) > 0 {
		labels, _ := ev["labels"].(map[string]any)
		if labels == nil {
			labels = map[string]any{}
			if old, ok := ev["labels"]; ok && old != nil {
				displaced["labels"] = old
			}
		}
		for k, v := range displaced {
			for {
				if _, taken := labels[k]; !taken {
					break
				}
				k += "_"
			}
			labels[k] = v
		}
		ev["labels"] = labels
	}
	if _, ok := ev["@timestamp"]; !ok {
		ev["@timestamp"] = m["@timestamp"]
	}
	return ev
}

func oracleValue(old, meta any, path string, displaced map[string]any) any {
	mo, ok1 := old.(map[string]any)
	mm, ok2 := meta.(map[string]any)
	if !ok1 || !ok2 {
		if old != nil && !oracleEqual(old, meta) {
			displaced[path] = old
		}
		return meta
	}
	for k, v := range mm {
		if prev, ok := mo[k]; ok {
			mo[k] = oracleValue(prev, v, path+"_"+k, displaced)
		} else {
			mo[k] = v
		}
	}
	return mo
}

func oracleEqual(a, b any) bool {
	switch a := a.(type) {
	case string, bool, json.Number:
		return a == b
	}
	return false
}

// canonical returns v as JSON with sorted keys, labels left out and their
// values listed (sorted) instead: label names that displaced values get
// depend on the order in which they are met.
func canonical(v map[string]any) (string, []string) {
	var labels []string
	if l, ok := v["labels"].(map[string]any); ok {
		for _, x := range l {
			b, _ := json.Marshal(x)
			labels = append(labels, string(b))
		}
		sort.Strings(labels)
		delete(v, "labels")
	}
	b, _ := json.Marshal(v)
	return string(b), labels
}

// FuzzEncoder: every event is one valid JSON object without duplicate
// members; a record that is an object keeps all its members; a record
// whose members collide with the metadata is merged as encoding/json would
// merge it (oracleMerge), labels compared by their values.
func FuzzEncoder(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `plain`, `{"host":"x","log":{"offset":1,"file":{"line":3}},"labels":{"host":"y"}}`,
		`{"host":{"name":"a","ip":[1,2]},"agent":{"type":{"x":1}},"labels":"z"}`, `{"service":{"name":"n"},"env":"e","ecs":1}`,
		`{"lo\u0067":{"x":1},"labels":{"labels":2}}`, `{"log":{"level":"info","offset":"17"}}`, `{"host":null,"labels":null}`} {
		f.Add([]byte(s), uint8(3))
	}
	e, err := NewEncoder("/var/log/app", "web-1", map[string]string{"service.name": "checkout", "env": "prod"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, p []byte, typ uint8) {
		rec := tail.Record{Seq: 17, Time: 1e18, Type: typ, Payload: p}
		out := e.Append(nil, rec)
		var got map[string]any
		d := json.NewDecoder(bytes.NewReader(out))
		d.UseNumber()
		if err := d.Decode(&got); err != nil {
			t.Fatalf("event of %q is not a JSON object: %v: %s", p, err, out)
		}
		_, _, isObj := jsonenc.ScanObject(p, nil)
		if !isObj {
			if got["message"] == nil {
				t.Fatalf("no message for %q: %s", p, out)
			}
			return
		}
		if duplicateKey(p) != "" {
			return // encoding/json keeps the last of duplicates, the encoder the first
		}
		if dup := duplicateKey(out); dup != "" {
			t.Fatalf("member %q twice in the event of %q: %s", dup, p, out)
		}
		meta := append([]byte{'{'}, e.appendMeta(nil, rec, true)...)
		meta = append(meta, '}')
		want := oracleMerge(e, p, meta)
		g, gl := canonical(got)
		w, wl := canonical(want)
		if g != w || strings.Join(gl, "\x00") != strings.Join(wl, "\x00") {
			t.Fatalf("record %q:\n got %s labels %v\nwant %s labels %v\nevent %s", p, g, gl, w, wl, out)
		}
	})
}

func TestEncoderAllocations(t *testing.T) {
	e, _ := NewEncoder("/var/log/app", "web-1", map[string]string{"service.name": "checkout"})
	buf := make([]byte, 0, 4096)
	for _, c := range []struct {
		name string
		p    string
	}{{"plain", plainRecord}, {"colliding", collidingRecord}, {"text", "GET /cart 200"}} {
		rec := tail.Record{Seq: 123456, Time: time.Now().UnixNano(), Type: 3, Payload: []byte(c.p)}
		e.Append(buf[:0], rec)
		if n := testing.AllocsPerRun(200, func() { buf = e.Append(buf[:0], rec) }); n != 0 {
			t.Errorf("%s record: %v allocations per event", c.name, n)
		}
	}
}

const (
	plainRecord     = `{"level":"info","service":"checkout","order":12345,"user":"u-1042","amount":42.5,"time":"2026-11-23T12:00:00Z","message":"order placed with some extra text to make it about 200 bytes"}`
	collidingRecord = `{"level":"info","host":"web-7","order":12345,"user":"u-1042","amount":42.5,"time":"2026-11-23T12:00:00Z","message":"order placed with some extra text to make it about 200 bytes"}`
)

// BenchmarkEncode: the plain path, and a record with a member the metadata
// has too (merged on the JSON text), side by side.
func BenchmarkEncode(b *testing.B) {
	for _, c := range []struct{ name, p string }{{"plain", plainRecord}, {"colliding", collidingRecord}} {
		b.Run(c.name, func(b *testing.B) {
			e, _ := NewEncoder("/var/log/app", "web-1", nil)
			rec := tail.Record{Seq: 123456, Time: time.Now().UnixNano(), Type: 3, Payload: []byte(c.p)}
			buf := make([]byte, 0, 1024)
			b.SetBytes(int64(len(rec.Payload)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				buf = e.Append(buf[:0], rec)
			}
		})
	}
}

func ExampleEncoder_merge() {
	e, _ := NewEncoder("/var/log/myapp", "web-1", nil)
	ts := time.Date(2026, 1, 2, 3, 4, 5, 678901000, time.UTC).UnixNano()
	fmt.Println(string(e.Append(nil, tail.Record{Seq: 44, Time: ts, Type: 3, Payload: []byte(`{"host":"web-7","log":{"logger":"db"},"message":"slow query"}`)})))
	// Output:
	// {"host":{"name":"web-1"},"log":{"logger":"db","offset":44,"file":{"path":"/var/log/myapp"},"level":"info"},"message":"slow query","@timestamp":"2026-01-02T03:04:05.678901Z","agent":{"name":"web-1","type":"mmaptail","version":"devel"},"ecs":{"version":"8.11.0"},"labels":{"host":"web-7"}}
}
