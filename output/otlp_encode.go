package output

import (
	"bytes"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/mmaplog/mmaplog/internal/ecs"
	"github.com/mmaplog/mmaplog/internal/jsonenc"
)

// The OTLP mapping of an event (one JSON object, as package ship makes
// them) to a LogRecord:
//
//	time_unix_nano           @timestamp (RFC 3339), the record's time; 0 (unknown) where it has none that parses
//	observed_time_unix_nano  when the shipper encoded the request
//	severity_number/_text    log.level (else a top-level "level" string): trace 1, debug 5, info 9,
//	                         warn/warning 13, error 17, fatal 21, panic 22 (any case); the text as it is;
//	                         another text gets number 0 (unspecified)
//	body                     "message" (else "msg", the key slog and zap use), a string or any JSON value;
//	                         a record that was not JSON is shipped as {"message": the record}, so its body
//	                         is the whole record; an event with neither has no body
//	attributes               every other member, flattened: nested objects' members get dotted keys
//	                         ("log.file.path", "log.offset", "http.status"); strings, booleans,
//	                         integers (int64) and other numbers (double) as themselves, arrays as
//	                         array values (objects inside arrays as key-value lists), null as an
//	                         empty value, an empty object as an empty key-value list
//
// Resource (one ResourceLogs per distinct pair in a request):
//
//	host.name     the event's host.name
//	service.name  OTLPOptions.ServiceName, else the event's service.name, else the base name of its
//	              log.file.path (the log's directory), else "unknown_service:mmaptail"
//
// Scope: name "mmaptail", version this build's. The members mapped to a
// field of their own (the @timestamp that parsed, the body's, the level's,
// and the resource's host.name and service.name when taken from the event)
// are not repeated as attributes.

// otlpScopeName is the instrumentation scope of every record.
const otlpScopeName = "mmaptail"

// otlpMaxDepth bounds the nesting the encoder follows; deeper values are
// sent as their JSON text.
const otlpMaxDepth = 64

// Protobuf field numbers of the OTLP messages used.
const (
	pbRequestResourceLogs = 1 // ExportLogsServiceRequest.resource_logs

	pbResourceLogsResource  = 1 // ResourceLogs.resource
	pbResourceLogsScopeLogs = 2 // ResourceLogs.scope_logs
	pbResourceAttributes    = 1 // Resource.attributes

	pbScopeLogsScope   = 1 // ScopeLogs.scope
	pbScopeLogsRecords = 2 // ScopeLogs.log_records
	pbScopeName        = 1 // InstrumentationScope.name
	pbScopeVersion     = 2 // InstrumentationScope.version

	pbLogTime         = 1  // LogRecord.time_unix_nano (fixed64)
	pbLogSeverity     = 2  // LogRecord.severity_number (enum)
	pbLogSeverityText = 3  // LogRecord.severity_text
	pbLogBody         = 5  // LogRecord.body (AnyValue)
	pbLogAttributes   = 6  // LogRecord.attributes (KeyValue)
	pbLogObserved     = 11 // LogRecord.observed_time_unix_nano (fixed64)

	pbKVKey   = 1 // KeyValue.key
	pbKVValue = 2 // KeyValue.value

	pbAnyString = 1 // AnyValue.string_value
	pbAnyBool   = 2 // AnyValue.bool_value
	pbAnyInt    = 3 // AnyValue.int_value
	pbAnyDouble = 4 // AnyValue.double_value
	pbAnyArray  = 5 // AnyValue.array_value
	pbAnyKVList = 6 // AnyValue.kvlist_value
	pbListValue = 1 // ArrayValue.values, KeyValueList.values

	pbResponsePartial  = 1 // ExportLogsServiceResponse.partial_success
	pbPartialRejected  = 1 // ExportLogsPartialSuccess.rejected_log_records
	pbPartialMessage   = 2 // ExportLogsPartialSuccess.error_message
	pbStatusMessage    = 2 // google.rpc.Status.message
	pbLengthReserved   = 1 // bytes reserved for a nested message's length
	otlpUnknownService = "unknown_service:mmaptail"
)

// otlpSeverity maps level names to severity numbers.
var otlpSeverity = [...]struct {
	name string
	num  int32
}{
	{"trace", 1}, {"debug", 5}, {"info", 9}, {"warn", 13}, {"warning", 13},
	{"error", 17}, {"fatal", 21}, {"panic", 22},
}

func severityNumber(level []byte) int32 {
	for _, s := range otlpSeverity {
		if len(level) == len(s.name) && bytes.EqualFold(level, []byte(s.name)) {
			return s.num
		}
	}
	return 0
}

// otlpGroup is the records of one resource in a request being built.
type otlpGroup struct {
	host, service string
	recs          []byte // protobuf: ScopeLogs.log_records fields; JSON: the records joined by ','
	n             int
}

// otlpEncoder builds ExportLogsServiceRequests, in protobuf or JSON. It is
// not safe for concurrent use; its buffers are reused from request to
// request.
type otlpEncoder struct {
	json    bool
	service string // OTLPOptions.ServiceName
	version string // the scope's version

	serviceB []byte // service, as bytes
	unknown  []byte // otlpUnknownService, as bytes

	groups   []*otlpGroup
	ngroups  int
	key      []byte   // the flattened key being built
	str      []byte   // an unescaped string
	svc      []byte   // the event's service name
	tmp      []byte   // a resource and a scope being encoded
	skip     []string // the keys not to repeat as attributes, for the event being encoded
	observed uint64
}

func newOTLPEncoder(json bool, service string) *otlpEncoder {
	return &otlpEncoder{json: json, service: service, serviceB: []byte(service), unknown: []byte(otlpUnknownService), version: ecs.AgentVersion()}
}

// encode appends the request holding events to dst.
func (e *otlpEncoder) encode(dst []byte, events [][]byte, now time.Time) []byte {
	e.ngroups = 0
	e.observed = uint64(now.UnixNano())
	for _, ev := range events {
		e.event(ev)
	}
	if e.json {
		dst = e.jsonRequest(dst)
	} else {
		dst = e.pbRequest(dst)
	}
	for _, g := range e.groups[:e.ngroups] {
		g.recs = g.recs[:0]
		g.n = 0
		if cap(g.recs) > 16<<20 {
			g.recs = nil
		}
	}
	return dst
}

// group returns the group of a resource, made on first use.
func (e *otlpEncoder) group(host, service []byte) *otlpGroup {
	for _, g := range e.groups[:e.ngroups] {
		if g.host == string(host) && g.service == string(service) {
			return g
		}
	}
	if e.ngroups < len(e.groups) {
		g := e.groups[e.ngroups]
		if g.host != string(host) || g.service != string(service) {
			g.host, g.service = string(host), string(service)
		}
		e.ngroups++
		return g
	}
	g := &otlpGroup{host: string(host), service: string(service)}
	e.groups = append(e.groups, g)
	e.ngroups++
	return g
}

// text returns the decoded content of a raw JSON string value (v with its
// quotes), in e.str where it has escapes; nil if v is not a string.
func (e *otlpEncoder) text(v []byte) []byte {
	if len(v) < 2 || v[0] != '"' {
		return nil
	}
	inner := v[1 : len(v)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return inner
	}
	e.str = jsonenc.AppendUnquoted(e.str[:0], inner)
	return e.str
}

// memberString returns the raw value of obj's member name, if obj is an
// object and the value a string.
func memberString(obj []byte, name string) []byte {
	if obj == nil || !jsonenc.IsObject(obj) {
		return nil
	}
	v, ok := jsonenc.Lookup(obj, name)
	if !ok || len(v) < 2 || v[0] != '"' {
		return nil
	}
	return v
}

// eventFields are the members of an event that map to fields of their own.
type eventFields struct {
	time                  uint64
	body                  []byte // raw value
	level                 []byte // raw string
	host, service, dir    []byte // decoded
	hostRaw, serviceRaw   []byte
	bodyKey, levelKey     string
	serviceFromEv, timeOK bool
}

// fields reads the members of ev that are not attributes.
func (e *otlpEncoder) fields(ev []byte) (f eventFields) {
	var ts, message, msg, level, logv, hostv, servicev []byte
	it := jsonenc.NewMemberIter(ev)
	for {
		name, v, ok := it.Next()
		if !ok {
			break
		}
		switch string(name) {
		case "@timestamp":
			ts = v
		case "message":
			message = v
		case "msg":
			msg = v
		case "level":
			level = v
		case "log":
			logv = v
		case "host":
			hostv = v
		case "service":
			servicev = v
		}
	}
	e.skip = e.skip[:0]
	if s := e.text(ts); s != nil {
		if t, err := time.Parse(time.RFC3339Nano, string(s)); err == nil && t.UnixNano() > 0 {
			f.time, f.timeOK = uint64(t.UnixNano()), true
			e.skip = append(e.skip, "@timestamp")
		}
	}
	switch {
	case message != nil:
		f.body = message
		e.skip = append(e.skip, "message")
	case msg != nil:
		f.body = msg
		e.skip = append(e.skip, "msg")
	}
	if l := memberString(logv, "level"); l != nil {
		f.level = l
		e.skip = append(e.skip, "log.level")
	} else if level != nil && level[0] == '"' {
		f.level = level
		e.skip = append(e.skip, "level")
	}
	if h := memberString(hostv, "name"); h != nil {
		f.hostRaw = h
		e.skip = append(e.skip, "host.name")
	}
	if e.service == "" {
		if s := memberString(servicev, "name"); s != nil {
			f.serviceRaw = s
			f.serviceFromEv = true
			e.skip = append(e.skip, "service.name")
		} else if logv != nil && jsonenc.IsObject(logv) {
			if p, ok := jsonenc.Lookup(logv, "file.path"); ok && len(p) >= 2 && p[0] == '"' {
				f.dir = p
			}
		}
	}
	return f
}

// resource returns the host and service names of an event, decoded (valid
// until the next event).
func (e *otlpEncoder) resource(f *eventFields) (host, service []byte) {
	switch {
	case e.service != "":
		service = e.serviceB
	case f.serviceRaw != nil:
		e.svc = append(e.svc[:0], e.text(f.serviceRaw)...)
		service = e.svc
	case f.dir != nil:
		if b := baseName(e.text(f.dir)); len(b) > 0 {
			e.svc = append(e.svc[:0], b...)
			service = e.svc
		}
	}
	if len(service) == 0 {
		service = e.unknown
	}
	if f.hostRaw != nil {
		host = e.text(f.hostRaw)
	}
	return host, service
}

// baseName is path.Base of a slash-separated path, without "." and "/".
func baseName(p []byte) []byte {
	for len(p) > 0 && p[len(p)-1] == '/' {
		p = p[:len(p)-1]
	}
	if i := bytes.LastIndexByte(p, '/'); i >= 0 {
		p = p[i+1:]
	}
	if string(p) == "." || string(p) == ".." {
		return nil
	}
	return p
}

// skipped reports whether key is one of the event's members mapped to a
// field of its own.
func (e *otlpEncoder) skipped(key []byte) bool {
	for _, s := range e.skip {
		if string(key) == s {
			return true
		}
	}
	return false
}

// event appends ev's LogRecord to its resource's group.
func (e *otlpEncoder) event(ev []byte) {
	f := e.fields(ev)
	host, service := e.resource(&f)
	g := e.group(host, service)
	if e.json {
		if g.n > 0 {
			g.recs = append(g.recs, ',')
		}
		g.recs = e.jsonRecord(g.recs, ev, &f)
	} else {
		g.recs = e.pbRecord(g.recs, ev, &f)
	}
	g.n++
}

// ---- protobuf ----

// pbBegin starts a nested message (field num): it appends the tag and
// reserves a byte for the length, and returns where the message starts.
func pbBegin(b []byte, num protowire.Number) ([]byte, int) {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = append(b, 0)
	return b, len(b)
}

// pbEnd writes the length of the message started at start, moving it up
// where the length takes more than the byte reserved.
func pbEnd(b []byte, start int) []byte {
	n := len(b) - start
	sz := protowire.SizeVarint(uint64(n))
	if sz == pbLengthReserved {
		b[start-1] = byte(n)
		return b
	}
	var pad [8]byte
	b = append(b, pad[:sz-pbLengthReserved]...)
	copy(b[start-1+sz:], b[start:start+n])
	protowire.AppendVarint(b[:start-1], uint64(n))
	return b
}

func pbBytes(b []byte, num protowire.Number, s []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, s)
}

// replacementChar replaces invalid UTF-8: protobuf strings must be UTF-8
// (receivers built on Go's protobuf refuse the whole request otherwise),
// and so must JSON; a record's bytes need not be.
var replacementChar = []byte("\uFFFD")

// pbText appends a string field, its invalid UTF-8 replaced.
func pbText(b []byte, num protowire.Number, s []byte) []byte {
	if !utf8.Valid(s) {
		s = bytes.ToValidUTF8(s, replacementChar)
	}
	return pbBytes(b, num, s)
}

// appendValidUTF8 appends raw JSON text, its invalid UTF-8 replaced.
func appendValidUTF8(b, raw []byte) []byte {
	if !utf8.Valid(raw) {
		raw = bytes.ToValidUTF8(raw, replacementChar)
	}
	return append(b, raw...)
}

func pbString(b []byte, num protowire.Number, s string) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func pbFixed64(b []byte, num protowire.Number, v uint64) []byte {
	b = protowire.AppendTag(b, num, protowire.Fixed64Type)
	return protowire.AppendFixed64(b, v)
}

// pbKeyValue appends a KeyValue (field num) of key and a string value.
func pbKeyValue(b []byte, num protowire.Number, key string, value []byte) []byte {
	b, kv := pbBegin(b, num)
	b = pbString(b, pbKVKey, key)
	b, av := pbBegin(b, pbKVValue)
	b = pbText(b, pbAnyString, value)
	b = pbEnd(b, av)
	return pbEnd(b, kv)
}

// pbRecord appends ev's LogRecord as a ScopeLogs.log_records field.
func (e *otlpEncoder) pbRecord(b, ev []byte, f *eventFields) []byte {
	var rec int
	b, rec = pbBegin(b, pbScopeLogsRecords)
	if f.timeOK {
		b = pbFixed64(b, pbLogTime, f.time)
	}
	if f.level != nil {
		lv := e.text(f.level)
		if n := severityNumber(lv); n != 0 {
			b = protowire.AppendTag(b, pbLogSeverity, protowire.VarintType)
			b = protowire.AppendVarint(b, uint64(n))
		}
		b = pbText(b, pbLogSeverityText, lv)
	}
	if f.body != nil {
		var body int
		b, body = pbBegin(b, pbLogBody)
		b = e.pbAny(b, f.body, 0)
		b = pbEnd(b, body)
	}
	b = e.pbAttributes(b, ev)
	b = pbFixed64(b, pbLogObserved, e.observed)
	return pbEnd(b, rec)
}

// pbAttributes appends the flattened members of ev as LogRecord.attributes.
func (e *otlpEncoder) pbAttributes(b, ev []byte) []byte {
	e.key = e.key[:0]
	return e.pbFlatten(b, ev, 0)
}

func (e *otlpEncoder) pbFlatten(b, obj []byte, depth int) []byte {
	it := jsonenc.NewMemberIter(obj)
	for {
		name, v, ok := it.Next()
		if !ok {
			return b
		}
		mark := len(e.key)
		if mark > 0 {
			e.key = append(e.key, '.')
		}
		if bytes.IndexByte(name, '\\') >= 0 {
			e.key = jsonenc.AppendUnquoted(e.key, name)
		} else {
			e.key = append(e.key, name...)
		}
		switch {
		case e.skipped(e.key):
		case len(v) > 0 && v[0] == '{' && depth < otlpMaxDepth && !emptyObject(v):
			b = e.pbFlatten(b, v, depth+1)
		default:
			var kv, av int
			b, kv = pbBegin(b, pbLogAttributes)
			b = pbText(b, pbKVKey, e.key)
			b, av = pbBegin(b, pbKVValue)
			b = e.pbAny(b, v, depth+1)
			b = pbEnd(b, av)
			b = pbEnd(b, kv)
		}
		e.key = e.key[:mark]
	}
}

// emptyObject reports whether the raw object v has no member.
func emptyObject(v []byte) bool {
	it := jsonenc.NewMemberIter(v)
	_, _, ok := it.Next()
	return !ok
}

// pbAny appends the fields of the AnyValue of the raw JSON value v.
func (e *otlpEncoder) pbAny(b, v []byte, depth int) []byte {
	if len(v) == 0 {
		return b
	}
	switch v[0] {
	case '"':
		return pbText(b, pbAnyString, e.text(v))
	case 't', 'f':
		b = protowire.AppendTag(b, pbAnyBool, protowire.VarintType)
		return protowire.AppendVarint(b, protowire.EncodeBool(v[0] == 't'))
	case 'n':
		return b // null: an empty AnyValue
	case '[', '{':
		if depth >= otlpMaxDepth {
			return pbText(b, pbAnyString, v)
		}
		if v[0] == '{' {
			b, list := pbBegin(b, pbAnyKVList)
			it := jsonenc.NewMemberIter(v)
			for {
				name, mv, ok := it.Next()
				if !ok {
					break
				}
				var kv, av int
				b, kv = pbBegin(b, pbListValue)
				if bytes.IndexByte(name, '\\') >= 0 {
					e.str = jsonenc.AppendUnquoted(e.str[:0], name)
					b = pbText(b, pbKVKey, e.str)
				} else {
					b = pbText(b, pbKVKey, name)
				}
				b, av = pbBegin(b, pbKVValue)
				b = e.pbAny(b, mv, depth+1)
				b = pbEnd(b, av)
				b = pbEnd(b, kv)
			}
			return pbEnd(b, list)
		}
		b, arr := pbBegin(b, pbAnyArray)
		jsonArray(v, func(ev []byte) {
			var av int
			b, av = pbBegin(b, pbListValue)
			b = e.pbAny(b, ev, depth+1)
			b = pbEnd(b, av)
		})
		return pbEnd(b, arr)
	}
	if i, ok := jsonInt(v); ok {
		b = protowire.AppendTag(b, pbAnyInt, protowire.VarintType)
		return protowire.AppendVarint(b, uint64(i))
	}
	fv, err := strconv.ParseFloat(string(v), 64)
	if err != nil {
		return pbText(b, pbAnyString, v)
	}
	b = protowire.AppendTag(b, pbAnyDouble, protowire.Fixed64Type)
	return protowire.AppendFixed64(b, math.Float64bits(fv))
}

// jsonInt parses a JSON number that is an integer within int64.
func jsonInt(v []byte) (int64, bool) {
	if bytes.ContainsAny(v, ".eE") {
		return 0, false
	}
	i, err := strconv.ParseInt(string(v), 10, 64)
	return i, err == nil
}

// jsonArray calls fn with each element of the valid JSON array v.
func jsonArray(v []byte, fn func(elem []byte)) {
	i := jsonWS(v, 1)
	if i < len(v) && v[i] == ']' {
		return
	}
	for i < len(v) {
		i = jsonWS(v, i)
		end := jsonenc.SkipValue(v, i)
		if end < 0 {
			return
		}
		fn(v[i:end])
		i = jsonWS(v, end)
		if i >= len(v) || v[i] != ',' {
			return
		}
		i++
	}
}

// jsonWS returns the offset of the first byte at or after i in v that is
// not JSON white space.
func jsonWS(v []byte, i int) int {
	for i < len(v) && (v[i] == ' ' || v[i] == '\t' || v[i] == '\n' || v[i] == '\r') {
		i++
	}
	return i
}

// pbRequest appends the ExportLogsServiceRequest of the groups. The
// records are large: the lengths around them are worked out first, so
// that they are copied once.
func (e *otlpEncoder) pbRequest(b []byte) []byte {
	for _, g := range e.groups[:e.ngroups] {
		var res, sc int
		t := e.tmp[:0]
		t, res = pbBegin(t, pbResourceLogsResource)
		if g.host != "" {
			t = pbKeyValue(t, pbResourceAttributes, "host.name", []byte(g.host))
		}
		t = pbKeyValue(t, pbResourceAttributes, "service.name", []byte(g.service))
		t = pbEnd(t, res)
		resEnd := len(t)
		t, sc = pbBegin(t, pbScopeLogsScope)
		t = pbString(t, pbScopeName, otlpScopeName)
		t = pbString(t, pbScopeVersion, e.version)
		t = pbEnd(t, sc)
		e.tmp = t
		slLen := len(t) - resEnd + len(g.recs)
		rlLen := resEnd + protowire.SizeTag(pbResourceLogsScopeLogs) + protowire.SizeVarint(uint64(slLen)) + slLen
		b = protowire.AppendTag(b, pbRequestResourceLogs, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(rlLen))
		b = append(b, t[:resEnd]...)
		b = protowire.AppendTag(b, pbResourceLogsScopeLogs, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(slLen))
		b = append(b, t[resEnd:]...)
		b = append(b, g.recs...)
	}
	return b
}

// ---- JSON ----

// jsonRecord appends ev's LogRecord in OTLP/JSON.
func (e *otlpEncoder) jsonRecord(b, ev []byte, f *eventFields) []byte {
	b = append(b, '{')
	if f.timeOK {
		b = append(b, `"timeUnixNano":"`...)
		b = strconv.AppendUint(b, f.time, 10)
		b = append(b, `",`...)
	}
	b = append(b, `"observedTimeUnixNano":"`...)
	b = strconv.AppendUint(b, e.observed, 10)
	b = append(b, '"')
	if f.level != nil {
		if n := severityNumber(e.text(f.level)); n != 0 {
			b = append(b, `,"severityNumber":`...)
			b = strconv.AppendInt(b, int64(n), 10)
		}
		b = append(b, `,"severityText":`...)
		b = appendValidUTF8(b, f.level)
	}
	if f.body != nil {
		b = append(b, `,"body":`...)
		b = e.jsonAny(b, f.body, 0)
	}
	b = append(b, `,"attributes":[`...)
	e.key = e.key[:0]
	b, _ = e.jsonFlatten(b, ev, 0, true)
	return append(b, "]}"...)
}

// jsonFlatten appends the flattened members of obj as KeyValues, each
// preceded by a comma unless first; it returns whether none was written
// (first, still).
func (e *otlpEncoder) jsonFlatten(b, obj []byte, depth int, first bool) ([]byte, bool) {
	it := jsonenc.NewMemberIter(obj)
	for {
		name, v, ok := it.Next()
		if !ok {
			return b, first
		}
		mark := len(e.key)
		if mark > 0 {
			e.key = append(e.key, '.')
		}
		e.key = append(e.key, name...) // raw: the key is written as JSON text
		switch {
		case e.skipped(e.key):
		case len(v) > 0 && v[0] == '{' && depth < otlpMaxDepth && !emptyObject(v):
			b, first = e.jsonFlatten(b, v, depth+1, first)
		default:
			if !first {
				b = append(b, ',')
			}
			first = false
			b = append(b, `{"key":"`...)
			b = appendValidUTF8(b, e.key)
			b = append(b, `","value":`...)
			b = e.jsonAny(b, v, depth+1)
			b = append(b, '}')
		}
		e.key = e.key[:mark]
	}
}

// jsonAny appends the OTLP/JSON AnyValue of the raw JSON value v.
func (e *otlpEncoder) jsonAny(b, v []byte, depth int) []byte {
	if len(v) == 0 {
		return append(b, "{}"...)
	}
	switch v[0] {
	case '"':
		b = append(b, `{"stringValue":`...)
		b = appendValidUTF8(b, v)
		return append(b, '}')
	case 't', 'f':
		b = append(b, `{"boolValue":`...)
		b = append(b, v...)
		return append(b, '}')
	case 'n':
		return append(b, "{}"...)
	case '[', '{':
		if depth >= otlpMaxDepth {
			b = append(b, `{"stringValue":`...)
			b = jsonenc.AppendBytes(b, v)
			return append(b, '}')
		}
		if v[0] == '{' {
			b = append(b, `{"kvlistValue":{"values":[`...)
			n := 0
			jsonenc.Members(v, func(name, mv []byte) bool {
				if n > 0 {
					b = append(b, ',')
				}
				n++
				b = append(b, `{"key":"`...)
				b = appendValidUTF8(b, name)
				b = append(b, `","value":`...)
				b = e.jsonAny(b, mv, depth+1)
				b = append(b, '}')
				return true
			})
			return append(b, "]}}"...)
		}
		b = append(b, `{"arrayValue":{"values":[`...)
		n := 0
		jsonArray(v, func(ev []byte) {
			if n > 0 {
				b = append(b, ',')
			}
			n++
			b = e.jsonAny(b, ev, depth+1)
		})
		return append(b, "]}}"...)
	}
	if _, ok := jsonInt(v); ok {
		b = append(b, `{"intValue":"`...)
		b = append(b, v...)
		return append(b, `"}`...)
	}
	if _, err := strconv.ParseFloat(string(v), 64); err != nil {
		b = append(b, `{"stringValue":`...)
		b = jsonenc.AppendBytes(b, v)
		return append(b, '}')
	}
	b = append(b, `{"doubleValue":`...)
	b = append(b, v...)
	return append(b, '}')
}

// jsonRequest appends the ExportLogsServiceRequest of the groups.
func (e *otlpEncoder) jsonRequest(b []byte) []byte {
	b = append(b, `{"resourceLogs":[`...)
	for i, g := range e.groups[:e.ngroups] {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"resource":{"attributes":[`...)
		if g.host != "" {
			b = append(b, `{"key":"host.name","value":{"stringValue":`...)
			b = jsonenc.AppendString(b, g.host)
			b = append(b, `}},`...)
		}
		b = append(b, `{"key":"service.name","value":{"stringValue":`...)
		b = jsonenc.AppendString(b, g.service)
		b = append(b, `}}]},"scopeLogs":[{"scope":{"name":"`+otlpScopeName+`","version":`...)
		b = jsonenc.AppendString(b, e.version)
		b = append(b, `},"logRecords":[`...)
		b = append(b, g.recs...)
		b = append(b, "]}]}"...)
	}
	return append(b, "]}"...)
}
