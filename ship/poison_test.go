package ship

import (
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/mmaplog/mmaplog/tail"
)

// repeated returns a JSON object of n copies of the member m.
func repeated(m string, n int) []byte {
	return []byte("{" + strings.TrimSuffix(strings.Repeat(m+",", n), ",") + "}")
}

// encodeCost encodes rec with a fresh encoder and returns the event and the
// bytes allocated meanwhile (the encoder's scratch grows from nothing).
func encodeCost(t *testing.T, p []byte) ([]byte, uint64) {
	t.Helper()
	e, err := NewEncoder("/var/log/app", "web-1", map[string]string{"service.name": "checkout", "labels.team": "a"})
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	out := e.Append(nil, tail.Record{Seq: 17, Time: 1e18, Type: 3, Payload: p})
	runtime.ReadMemStats(&after)
	return out, after.TotalAlloc - before.TotalAlloc
}

// TestEncoderRepeatedMember: a record repeating a member the metadata has
// ("host" 2,000 times, about 20 KB) is encoded with work in proportion to
// its size: every value kept under a label of its own, the event a few
// times the record's size and the memory allocated too (it once took
// gigabytes and minutes, and the log never got past it).
func TestEncoderRepeatedMember(t *testing.T) {
	for _, c := range []struct {
		name   string
		member string
		n      int
		labels int // values in labels
	}{
		{"host 300 times", `"host":"x"`, 300, 300},
		{"host 2000 times", `"host":"x"`, 2000, 2000},
		{"host.name 2000 times", `"host":{"name":"a"}`, 2000, 2000},
		{"labels 2000 times", `"labels":{"a":1}`, 2000, 2000},
		{"log.offset 2000 times", `"log":{"offset":1}`, 2000, 2000},
		{"labels with 5000 members", `"labels":{` + strings.TrimSuffix(strings.Repeat(`"a":1,`, 5000), ",") + `}`, 1, 5000},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := repeated(c.member, c.n)
			out, alloc := encodeCost(t, p)
			var ev map[string]any
			if err := json.Unmarshal(out, &ev); err != nil {
				t.Fatalf("not JSON: %v: %.200s", err, out)
			}
			if dup := duplicateKey(out); dup != "" {
				t.Fatalf("member %q twice in the event", dup)
			}
			labels, _ := ev["labels"].(map[string]any)
			if got := len(labels) - 1; got != c.labels { // less the team label of the fields
				t.Errorf("%d values kept in labels, want %d", got, c.labels)
			}
			if limit := 3*len(p) + 2048; len(out) > limit {
				t.Errorf("a record of %d bytes made an event of %d bytes (limit %d): label names grow with their number", len(p), len(out), limit)
			}
			if limit := uint64(64*len(p) + 1<<20); alloc > limit {
				t.Errorf("encoding a record of %d bytes allocated %d bytes (limit %d)", len(p), alloc, limit)
			}
		})
	}
}

// TestLabelNames: a displaced value takes its path as its label's name, or
// where that is taken the path and the first free number from 2.
func TestLabelNames(t *testing.T) {
	e, err := NewEncoder("/var/log/app", "web-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	out := e.Append(nil, tail.Record{Seq: 1, Payload: []byte(`{"labels":{"host":"l","host_3":"l3"},"host":"a","host":"b","host":"c","host":"d"}`)})
	var ev struct{ Labels map[string]string }
	if err := json.Unmarshal(out, &ev); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"host": "l", "host_3": "l3", "host_2": "a", "host_4": "b", "host_5": "c", "host_6": "d"}
	if fmt.Sprint(ev.Labels) != fmt.Sprint(want) {
		t.Fatalf("labels %v, want %v", ev.Labels, want)
	}
}

// FuzzEncoderRepeated: a fuzzed member repeated many times; the event is
// valid JSON (duplicates the record has among its own members stay as they
// are: FuzzEncoder checks the merge), and its size
// stays in proportion to the record's (a quadratic cost shows first as
// label names growing with their number).
func FuzzEncoderRepeated(f *testing.F) {
	for _, s := range []string{`"host":"x"`, `"labels":{"a":1,"a":1}`, `"host":{"name":{"x":1}}`, `"log":{"file":{"path":1}}`, `"agent":1,"agent_2":2`, `"lo\u0067":3`} {
		f.Add([]byte(s), uint16(500))
	}
	e, err := NewEncoder("/var/log/app", "web-1", map[string]string{"service.name": "checkout", "labels.x": "y"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, member []byte, n uint16) {
		p := repeated(string(member), int(n%4000)+1)
		out := e.Append(nil, tail.Record{Seq: 17, Time: 1e18, Type: 3, Payload: p})
		var got map[string]any
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("event of %q is not a JSON object: %v", p, err)
		}
		// A byte escaped as \u0000, or invalid UTF-8 as \ufffd, is six.
		if limit := 6*len(p) + 2048; len(out) > limit {
			t.Fatalf("a record of %d bytes made an event of %d bytes (limit %d): %.300q", len(p), len(out), limit, p)
		}
	})
}
