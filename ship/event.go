package ship

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mmaplog/mmaplog/internal/jsonenc"

	"github.com/mmaplog/mmaplog/mmaplog"
	"github.com/mmaplog/mmaplog/tail"
)

// Encoder turns records into events, in the shape Filebeat gives its events
// and with the Elastic Common Schema names it uses:
//
//   - a record that is a JSON object is shipped as that object, with the
//     metadata members added;
//   - any other record as {"message": "<the record as a string>"} with the
//     metadata.
//
// The metadata:
//
//	"@timestamp":  the record's time (RFC 3339, UTC, microseconds), unless the object has one
//	"log":         {"offset": sequence number, "file": {"path": the log directory}, "level": the record's level, if any}
//	"host":        {"name": host name}
//	"agent":       {"type": "mmaptail"}
//
// plus the extra fields (Fields), whose dotted keys become nested objects
// ("service.name=checkout" gives {"service":{"name":"checkout"}}).
//
// Where the object already has a member the metadata adds ("log", "host",
// "agent", or a top level key of the extra fields), the two are merged, the
// metadata's values winning; @timestamp is the one the object's own value
// wins. Nothing of the record is dropped: a value the metadata displaces
// (an application's "host":"web-1" where ECS wants host.name) moves to the
// ECS labels object, its path joined with underscores ("labels":
// {"host":"web-1"}). Such events take a slower path (they are decoded and
// encoded again with encoding/json). The log.file.path and log.offset pair identifies an event: a
// receiver can drop the duplicates that at-least-once delivery brings with
// it by using the pair as the document id.
type Encoder struct {
	logPath []byte            // JSON string of log.file.path
	logMore []byte            // extra members of "log" (from fields), each starting with ','
	rest    []byte            // the other members, each starting with ','
	keys    map[string]bool   // top-level member names the metadata adds
	first   [256]bool         // first bytes of those names
	tsSec   int64             // the second tsText holds, or -1
	tsText  []byte            // "2006-01-02T15:04:05." of tsSec
	tree    map[string]any    // metadata less the per-record parts, for merging
	fields  map[string]string // as given
}

// NewEncoder returns an Encoder for the log in dir (log.file.path), this
// host's name (host.name) and the extra fields. A field whose key is empty,
// or collides with a string and an object at once ("a=1", "a.b=2"), is an
// error.
func NewEncoder(dir, host string, fields map[string]string) (*Encoder, error) {
	tree := map[string]any{
		"host":  map[string]any{"name": host},
		"agent": map[string]any{"type": "mmaptail"},
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	logTree := map[string]any{}
	for _, k := range keys {
		parts := strings.Split(k, ".")
		for _, p := range parts {
			if p == "" {
				return nil, fmt.Errorf("field %q: empty key component", k)
			}
		}
		if k == "@timestamp" || k == "log.offset" || k == "log.file.path" || k == "log.level" {
			return nil, fmt.Errorf("field %q: set by mmaptail itself", k)
		}
		m := tree
		if parts[0] == "log" {
			m, parts = logTree, parts[1:]
		}
		for i, p := range parts {
			if i == len(parts)-1 {
				if _, ok := m[p].(map[string]any); ok {
					return nil, fmt.Errorf("field %q: %q is an object already", k, strings.Join(parts[:i+1], "."))
				}
				m[p] = fields[k]
				break
			}
			next, ok := m[p].(map[string]any)
			if !ok {
				if _, isStr := m[p]; isStr {
					return nil, fmt.Errorf("field %q: %q is a string already", k, strings.Join(parts[:i+1], "."))
				}
				next = map[string]any{}
				m[p] = next
			}
			m = next
		}
	}
	e := &Encoder{keys: map[string]bool{"log": true}, fields: fields, tsSec: -1}
	path, _ := json.Marshal(dir)
	e.logPath = path
	for _, k := range sortedKeys(logTree) {
		e.logMore = append(e.logMore, ',')
		e.logMore = appendMember(e.logMore, k, logTree[k])
	}
	for _, k := range sortedKeys(tree) {
		e.keys[k] = true
		e.rest = append(e.rest, ',')
		e.rest = appendMember(e.rest, k, tree[k])
	}
	tree["log"] = logTree
	e.tree = tree
	for k := range e.keys {
		e.first[k[0]] = true
	}
	return e, nil
}

func sortedKeys(m map[string]any) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func appendMember(dst []byte, k string, v any) []byte {
	dst = jsonenc.AppendString(dst, k)
	dst = append(dst, ':')
	switch v := v.(type) {
	case string:
		return jsonenc.AppendString(dst, v)
	case map[string]any:
		dst = append(dst, '{')
		for i, k := range sortedKeys(v) {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendMember(dst, k, v[k])
		}
		return append(dst, '}')
	}
	panic(fmt.Sprintf("ship: metadata value %T", v))
}

// Append appends the event for rec to dst.
func (e *Encoder) Append(dst []byte, rec tail.Record) []byte {
	p := rec.Payload
	hasTS, collide := false, false
	closing, members, ok := -1, false, false
	if len(p) > 0 && (p[0] == '{' || p[0] == ' ' || p[0] == '\t' || p[0] == '\n' || p[0] == '\r') {
		closing, members, ok = scanObject(p, func(name []byte) {
			if len(name) == 10 && string(name) == "@timestamp" {
				hasTS = true
			} else if len(name) > 0 && e.first[name[0]] && e.keys[string(name)] || bytes.IndexByte(name, '\\') >= 0 {
				collide = true
			}
		})
	}
	start := len(dst)
	if ok {
		dst = append(dst, p[:closing]...)
		// Drop white space before the closing brace.
		for len(dst) > start && isSpace(dst[len(dst)-1]) {
			dst = dst[:len(dst)-1]
		}
		if members {
			dst = append(dst, ',')
		}
	} else {
		dst = append(dst, `{"message":`...)
		dst = jsonenc.AppendBytes(dst, p)
		dst = append(dst, ',')
	}
	if !hasTS {
		dst = append(dst, `"@timestamp":"`...)
		dst = e.appendTime(dst, rec.Time)
		dst = append(dst, `",`...)
	}
	dst = append(dst, `"log":{"offset":`...)
	dst = strconv.AppendUint(dst, rec.Seq, 10)
	dst = append(dst, `,"file":{"path":`...)
	dst = append(dst, e.logPath...)
	dst = append(dst, '}')
	if lv := mmaplog.Level(rec.Type); rec.Type != 0 && int(rec.Type) < 8 {
		dst = append(dst, `,"level":"`...)
		dst = append(dst, lv.String()...)
		dst = append(dst, '"')
	}
	dst = append(dst, e.logMore...)
	dst = append(dst, '}')
	dst = append(dst, e.rest...)
	dst = append(dst, '}')
	if ok && collide {
		return e.merge(dst[:start], dst[start:], p)
	}
	return dst
}

// appendTime appends t (Unix ns) as RFC 3339 in UTC with microseconds,
// formatting the date and time of day once per second.
func (e *Encoder) appendTime(dst []byte, t int64) []byte {
	sec, ns := t/1e9, t%1e9
	if ns < 0 {
		sec, ns = sec-1, ns+1e9
	}
	if sec != e.tsSec {
		e.tsSec = sec
		e.tsText = time.Unix(sec, 0).UTC().AppendFormat(e.tsText[:0], "2006-01-02T15:04:05.")
	}
	dst = append(dst, e.tsText...)
	us := ns / 1000
	var d [6]byte
	for i := 5; i >= 0; i-- {
		d[i] = byte('0' + us%10)
		us /= 10
	}
	dst = append(dst, d[:]...)
	return append(dst, 'Z')
}

// merge rebuilds an event whose record has members the metadata adds too:
// both are decoded and merged, the metadata winning except for @timestamp.
func (e *Encoder) merge(dst, fast, rec []byte) []byte {
	var ev, meta map[string]any
	d := json.NewDecoder(bytes.NewReader(rec))
	d.UseNumber()
	if d.Decode(&ev) != nil {
		return append(dst, fast...)
	}
	d = json.NewDecoder(bytes.NewReader(fast))
	d.UseNumber()
	if d.Decode(&meta) != nil {
		return append(dst, fast...)
	}
	displaced := map[string]any{}
	for k := range e.keys {
		if v, ok := meta[k]; ok {
			ev[k] = mergeValue(ev[k], v, k, displaced)
		}
	}
	if len(displaced) > 0 {
		labels, _ := ev["labels"].(map[string]any)
		if labels == nil {
			labels = map[string]any{}
			if old, ok := ev["labels"]; ok {
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
		ev["@timestamp"] = meta["@timestamp"]
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if enc.Encode(ev) != nil {
		return append(dst, fast...)
	}
	return append(dst, bytes.TrimRight(buf.Bytes(), "\n")...)
}

// mergeValue merges the metadata value meta into the record's value old at
// path: objects are merged member by member; otherwise meta wins and old, if
// there was one, goes into displaced under path (dots as underscores).
func mergeValue(old, meta any, path string, displaced map[string]any) any {
	mo, ok1 := old.(map[string]any)
	mm, ok2 := meta.(map[string]any)
	if !ok1 || !ok2 {
		if old != nil && !equalJSON(old, meta) {
			displaced[path] = old
		}
		return meta
	}
	for k, v := range mm {
		if prev, ok := mo[k]; ok {
			mo[k] = mergeValue(prev, v, path+"_"+k, displaced)
		} else {
			mo[k] = v
		}
	}
	return mo
}

// equalJSON reports whether two decoded scalar values are the same, so that
// a record that already says what the metadata says displaces nothing.
func equalJSON(a, b any) bool {
	switch a := a.(type) {
	case string, bool, json.Number:
		return a == b
	}
	return false
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
