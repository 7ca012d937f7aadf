package ship

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mmaplog/mmaplog/internal/ecs"
	"github.com/mmaplog/mmaplog/internal/jsonenc"
	"github.com/mmaplog/mmaplog/ring"
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
//	"log":         {"offset": sequence number, "file": {"path": the log directory's absolute path}, "level": the record's level, if any}
//	"agent":       {"name": host name, "type": "mmaptail", "version": this build's version}
//	"ecs":         {"version": the ECS version}
//	"host":        {"name": host name}
//
// plus the extra fields (Fields), whose dotted keys become nested objects
// ("service.name=checkout" gives {"service":{"name":"checkout"}}).
// Counter events (package counter) carry the same agent, ecs and host
// members, so that both kinds of events fit one index.
//
// Where the object already has a member the metadata adds ("log", "host",
// "agent", "ecs", or a top level key of the extra fields), the two are
// merged, object by object, the metadata's values winning; @timestamp is the
// one the object's own value wins. Nothing of the record is dropped: a value
// the metadata displaces (an application's "host":"web-1" where ECS wants
// host.name) moves to the ECS labels object, its path joined with
// underscores ("labels": {"host":"web-1"}), or where that name is taken
// (a record's own label, or a member the record repeats) the path and the
// first free number from 2 ("host_2"). The work is in proportion to the
// record's size, whatever it repeats. The merge works on the JSON
// text, copying the record's other members as they are, without decoding
// them. The log.file.path and log.offset pair identifies an event: a
// receiver can drop the duplicates that at-least-once delivery brings with
// it by using the pair as the document id.
//
// An Encoder is not safe for concurrent use.
type Encoder struct {
	logPath []byte          // JSON string of log.file.path
	logMore []byte          // extra members of "log" (from fields), each starting with ','
	rest    []byte          // the other members, each starting with ','
	keys    map[string]bool // top-level member names the metadata adds
	first   [256]bool       // first bytes of those names
	tsSec   int64           // the second tsText holds, or -1
	tsText  []byte          // "2006-01-02T15:04:05." of tsSec

	static []metaMember // the members of rest, for merging

	// The record's top-level members, as the validating scan met them.
	members []rawMember

	// Scratch of the merging path, reused from record to record.
	tsVal, logVal []byte
	arena         []byte // decoded names, displaced paths
	displaced     []displacedValue
	levels        [][]metaMember // the metadata's members, per nesting level
	labelSet      labelSet       // label names written
}

type displacedValue struct {
	name  span // its label name, in arena
	value []byte
}

type span struct{ off, n int }

type rawMember struct{ name, value []byte }

var (
	nameTimestamp = []byte("@timestamp")
	nameLog       = []byte("log")
	nameLabels    = []byte("labels")
)

type metaMember struct {
	name, value []byte
	used        bool
}

// NewEncoder returns an Encoder for the log in dir (log.file.path: dir made
// absolute, whatever the caller gave, so that events of one log carry one
// path however the shipper was started), this host's name (host.name, agent.name) and the extra fields. A field whose
// key is empty, collides with a string and an object at once ("a=1",
// "a.b=2"), or names what the encoder sets per record (@timestamp,
// log.offset, log.file.path, log.level), is an error.
func NewEncoder(dir, host string, fields map[string]string) (*Encoder, error) {
	tree := map[string]any{
		"host":  map[string]any{"name": host},
		"agent": map[string]any{"name": host, "type": ecs.AgentType, "version": ecs.AgentVersion()},
		"ecs":   map[string]any{"version": ecs.Version},
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
	if _, ok := logTree["file"]; ok {
		return nil, fmt.Errorf("field log.file: set by mmaptail itself (log.file.path)")
	}
	e := &Encoder{keys: map[string]bool{"log": true}, tsSec: -1}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
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
	for k := range e.keys {
		e.first[k[0]] = true
	}
	jsonenc.Members(append([]byte{'{'}, e.rest[1:]...), func(name, value []byte) bool {
		e.static = append(e.static, metaMember{name: name, value: value})
		return true
	})
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

// slack returns the most bytes Append adds to a record that is a JSON
// object without members the metadata has too: the metadata, commas and
// braces (a record of text takes its escaping besides).
func (e *Encoder) slack() int {
	const fixed = len(`{"message":"",`) + len(`"@timestamp":"2006-01-02T15:04:05.000000Z",`) +
		len(`"log":{"offset":18446744073709551615,"file":{"path":},"level":"warning"}`) + len(`}`)
	return fixed + len(e.logPath) + len(e.logMore) + len(e.rest)
}

// Append appends the event for rec to dst.
func (e *Encoder) Append(dst []byte, rec tail.Record) []byte {
	p := rec.Payload
	hasTS, collide := false, false
	closing, members, ok := -1, false, false
	if len(p) > 0 && (p[0] == '{' || p[0] == ' ' || p[0] == '\t' || p[0] == '\n' || p[0] == '\r') {
		e.members = e.members[:0]
		closing, members, ok = jsonenc.ScanObject(p, func(name, value []byte) {
			e.members = append(e.members, rawMember{name, value})
			if len(name) == 10 && string(name) == "@timestamp" {
				hasTS = true
			} else if len(name) > 0 && e.first[name[0]] && e.keys[string(name)] || bytes.IndexByte(name, '\\') >= 0 {
				collide = true
			}
		})
	}
	if ok && collide {
		return e.merge(dst, rec)
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
	dst = e.appendMeta(dst, rec, !hasTS)
	return append(dst, '}')
}

// appendMeta appends the metadata members of rec, separated by commas,
// @timestamp first if ts is set.
func (e *Encoder) appendMeta(dst []byte, rec tail.Record, ts bool) []byte {
	if ts {
		dst = append(dst, `"@timestamp":"`...)
		dst = e.appendTime(dst, rec.Time)
		dst = append(dst, `",`...)
	}
	dst = append(dst, `"log":`...)
	dst = e.appendLog(dst, rec)
	return append(dst, e.rest...)
}

// appendLog appends the value of the log member.
func (e *Encoder) appendLog(dst []byte, rec tail.Record) []byte {
	dst = append(dst, `{"offset":`...)
	dst = strconv.AppendUint(dst, rec.Seq, 10)
	dst = append(dst, `,"file":{"path":`...)
	dst = append(dst, e.logPath...)
	dst = append(dst, '}')
	if lv := ring.Level(rec.Type); lv.Known() {
		dst = append(dst, `,"level":"`...)
		dst = append(dst, lv.String()...)
		dst = append(dst, '"')
	}
	dst = append(dst, e.logMore...)
	return append(dst, '}')
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

// merge appends the event of a record (a valid JSON object) that has
// members the metadata adds too.
func (e *Encoder) merge(dst []byte, rec tail.Record) []byte {
	e.arena = e.arena[:0]
	e.displaced = e.displaced[:0]
	e.labelSet.reset()
	e.tsVal = append(e.tsVal[:0], '"')
	e.tsVal = e.appendTime(e.tsVal, rec.Time)
	e.tsVal = append(e.tsVal, '"')
	e.logVal = e.appendLog(e.logVal[:0], rec)
	if len(e.levels) == 0 {
		e.levels = append(e.levels, nil)
	}
	ms := append(e.levels[0][:0], metaMember{name: nameTimestamp, value: e.tsVal}, metaMember{name: nameLog, value: e.logVal})
	e.levels[0] = append(ms, e.static...)
	return e.mergeObject(dst, rec.Payload, nil, span{}, 0)
}

// mergeObject appends the merge of the record's object rec and the
// metadata's object meta at nesting depth (at the top, the members Append
// and merge listed instead): the record's members in their
// order, a member the metadata has too replaced by the metadata's value
// (objects merged member by member), then the metadata's other members. A
// record's value that the metadata replaces is kept (displace) unless it
// equals it. path is the label path of rec (in arena; empty at the top).
// At the top, the record's own @timestamp wins, and labels come last,
// gathering what was displaced.
func (e *Encoder) mergeObject(dst, rec, meta []byte, path span, depth int) []byte {
	m := objectMerge{e: e, ms: e.metaMembers(meta, depth), path: path, depth: depth, top: depth == 0}
	m.dst = append(dst, '{')
	it := jsonenc.NewMemberIter(rec)
	for k := 0; ; k++ {
		var name, value []byte
		if m.top {
			if k == len(e.members) {
				break
			}
			name, value = e.members[k].name, e.members[k].value
		} else {
			var ok bool
			if name, value, ok = it.Next(); !ok {
				break
			}
		}
		m.member(name, value)
	}
	m.rest()
	return append(m.dst, '}')
}

// objectMerge is one object mergeObject merges.
type objectMerge struct {
	e         *Encoder
	dst       []byte
	n         int          // members appended
	ms        []metaMember // the metadata's members at this depth
	path      span
	depth     int
	top       bool
	recLabels []byte // the record's labels (at the top)
	recTS     bool   // the record has its own @timestamp (at the top)
}

// metaMembers returns the metadata's members at depth, those of its
// object meta (at the top, those merge listed).
func (e *Encoder) metaMembers(meta []byte, depth int) []metaMember {
	for len(e.levels) <= depth {
		e.levels = append(e.levels, nil)
	}
	if depth == 0 {
		return e.levels[0]
	}
	ms := e.levels[depth][:0]
	it := jsonenc.NewMemberIter(meta)
	for {
		name, value, ok := it.Next()
		if !ok {
			break
		}
		ms = append(ms, metaMember{name: name, value: value})
	}
	e.levels[depth] = ms
	return ms
}

func (m *objectMerge) comma() {
	if m.n > 0 {
		m.dst = append(m.dst, ',')
	}
	m.n++
}

// member appends the record's member name (as between its quotes) and
// value, or the metadata's member of that name in its place.
func (m *objectMerge) member(name, value []byte) {
	e := m.e
	key := name
	if bytes.IndexByte(name, '\\') >= 0 {
		off := len(e.arena)
		e.arena = jsonenc.AppendUnquoted(e.arena, name)
		key = e.arena[off:]
	}
	if m.top && string(key) == "@timestamp" && !m.recTS {
		m.recTS = true
		m.comma()
		m.dst = appendRawMember(m.dst, name, value)
		return
	}
	if m.top && string(key) == "labels" {
		if m.recLabels == nil {
			m.recLabels = value
		} else {
			e.displace(m.path, key, value)
		}
		return
	}
	j := findMember(m.ms, key)
	if j < 0 {
		m.comma()
		m.dst = appendRawMember(m.dst, name, value)
		return
	}
	meta := &m.ms[j]
	if meta.used {
		e.displace(m.path, key, value) // a second member of the same name
		return
	}
	meta.used = true
	m.comma()
	m.dst = appendRawMember(m.dst, meta.name, nil)
	if jsonenc.IsObject(value) && jsonenc.IsObject(meta.value) {
		m.dst = e.mergeObject(m.dst, value, meta.value, e.join(m.path, key), m.depth+1)
		m.ms = e.levels[m.depth] // the slice may have been grown by a deeper level's use
		return
	}
	m.dst = append(m.dst, meta.value...)
	if !sameScalar(value, meta.value) {
		e.displace(m.path, key, value)
	}
}

// rest appends the metadata's members the record did not have, and at the
// top the labels.
func (m *objectMerge) rest() {
	var metaLabels []byte
	for i := range m.ms {
		meta := &m.ms[i]
		if meta.used || m.top && m.recTS && string(meta.name) == "@timestamp" {
			continue
		}
		if m.top && string(meta.name) == "labels" {
			metaLabels = meta.value
			continue
		}
		m.comma()
		m.dst = appendRawMember(m.dst, meta.name, meta.value)
	}
	switch {
	case !m.top:
	case metaLabels == nil && len(m.e.displaced) == 0 && m.recLabels != nil:
		m.comma()
		m.dst = appendRawMember(m.dst, nameLabels, m.recLabels) // nothing to add
	case metaLabels != nil || len(m.e.displaced) > 0:
		m.comma()
		m.dst = m.e.appendLabels(m.dst, m.recLabels, metaLabels)
	}
}

// appendLabels appends the labels member: the metadata's labels (from the
// extra fields), the record's own labels object, then every displaced
// value, each under its path, or where that is taken the path and the
// first number from 2 that makes it free ("host_2").
func (e *Encoder) appendLabels(dst, recLabels, metaLabels []byte) []byte {
	dst = append(dst, `"labels":{`...)
	n := 0
	add := func(name, value []byte) {
		if n > 0 {
			dst = append(dst, ',')
		}
		n++
		dst = jsonenc.AppendBytes(dst, name)
		dst = append(dst, ':')
		dst = append(dst, value...)
	}
	labelsPath := span{}
	if metaLabels != nil {
		it := jsonenc.NewMemberIter(metaLabels)
		for {
			name, value, ok := it.Next()
			if !ok {
				break
			}
			key := e.claim(e.decoded(name))
			add(e.bytes(key), value)
		}
	}
	if recLabels != nil && !jsonenc.IsObject(recLabels) {
		e.displace(labelsPath, nameLabels, recLabels)
	} else if recLabels != nil {
		labelsPath = e.join(span{}, nameLabels)
		it := jsonenc.NewMemberIter(recLabels)
		for {
			name, value, ok := it.Next()
			if !ok {
				break
			}
			key := e.decoded(name)
			if e.labelSet.find(e.arena, e.bytes(key)) >= 0 {
				e.displace(labelsPath, e.bytes(key), value)
				continue
			}
			e.labelSet.add(e.arena, key)
			add(e.bytes(key), value)
		}
	}
	for i := 0; i < len(e.displaced); i++ {
		d := e.displaced[i]
		add(e.bytes(e.claim(d.name)), d.value)
	}
	return append(dst, '}')
}

// displace keeps a record's value that the metadata replaced at path.key
// (null values are not kept: there is nothing to lose).
func (e *Encoder) displace(path span, key, value []byte) {
	if string(value) == "null" {
		return
	}
	e.displaced = append(e.displaced, displacedValue{name: e.join(path, key), value: value})
}

// join returns path_key in the arena (key alone if path is empty).
func (e *Encoder) join(path span, key []byte) span {
	off := len(e.arena)
	if path.n > 0 {
		e.arena = append(e.arena, e.arena[path.off:path.off+path.n]...)
		e.arena = append(e.arena, '_')
	}
	e.arena = append(e.arena, key...)
	return span{off, len(e.arena) - off}
}

func (e *Encoder) decoded(name []byte) span {
	off := len(e.arena)
	e.arena = jsonenc.AppendUnquoted(e.arena, name)
	return span{off, len(e.arena) - off}
}

func (e *Encoder) bytes(s span) []byte { return e.arena[s.off : s.off+s.n] }

func findMember(ms []metaMember, key []byte) int {
	for i := range ms {
		if bytes.Equal(ms[i].name, key) {
			return i
		}
	}
	return -1
}

// appendRawMember appends "name":value with name as it is between quotes.
func appendRawMember(dst, name, value []byte) []byte {
	dst = append(dst, '"')
	dst = append(dst, name...)
	dst = append(dst, '"', ':')
	return append(dst, value...)
}

// sameScalar reports whether a record's value says what the metadata's
// does, so that it displaces nothing: equal strings, numbers or booleans,
// as written.
func sameScalar(rec, meta []byte) bool {
	if len(rec) == 0 || rec[0] == '{' || rec[0] == '[' {
		return false
	}
	return bytes.Equal(rec, meta)
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
