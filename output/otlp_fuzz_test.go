package output

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

var fuzzEvents = []string{
	`{"@timestamp":"2026-01-02T03:04:05.123456Z","message":"hello","log":{"offset":7,"file":{"path":"/var/log/a"},"level":"info"},"host":{"name":"h"}}`,
	`{"msg":{"a":[1,2.5,true,null,{"b":"c"}]},"level":"WARN","service":{"name":"s"},"x":{"y":{"z":-12}},"e":{},"big":123456789012345678901234567890}`,
	`{"k\u00e9y":"v\n\"q\"","a.b":1,"a":{"b":2},"arr":[],"deep":[[[["x"]]]],"f":1e308,"neg":-0}`,
	`{}`,
}

// The messages of an ExportLogsServiceRequest, for pbCheck.
type pbKind int

const (
	kRequest pbKind = iota
	kResourceLogs
	kResource
	kScopeLogs
	kScope
	kLogRecord
	kKeyValue
	kAnyValue
	kArray
	kKVList
	kString // a string field (UTF-8)
	kScalar // a varint or fixed64 field
)

type pbFieldSpec struct {
	kind pbKind
	typ  protowire.Type
}

var pbSchema = map[pbKind]map[protowire.Number]pbFieldSpec{
	kRequest:      {1: {kResourceLogs, protowire.BytesType}},
	kResourceLogs: {1: {kResource, protowire.BytesType}, 2: {kScopeLogs, protowire.BytesType}},
	kResource:     {1: {kKeyValue, protowire.BytesType}},
	kScopeLogs:    {1: {kScope, protowire.BytesType}, 2: {kLogRecord, protowire.BytesType}},
	kScope:        {1: {kString, protowire.BytesType}, 2: {kString, protowire.BytesType}},
	kLogRecord: {1: {kScalar, protowire.Fixed64Type}, 2: {kScalar, protowire.VarintType}, 3: {kString, protowire.BytesType},
		5: {kAnyValue, protowire.BytesType}, 6: {kKeyValue, protowire.BytesType}, 11: {kScalar, protowire.Fixed64Type}},
	kKeyValue: {1: {kString, protowire.BytesType}, 2: {kAnyValue, protowire.BytesType}},
	kAnyValue: {1: {kString, protowire.BytesType}, 2: {kScalar, protowire.VarintType}, 3: {kScalar, protowire.VarintType},
		4: {kScalar, protowire.Fixed64Type}, 5: {kArray, protowire.BytesType}, 6: {kKVList, protowire.BytesType}},
	kArray:  {1: {kAnyValue, protowire.BytesType}},
	kKVList: {1: {kKeyValue, protowire.BytesType}},
}

// pbCheck checks that b is a well-formed message of kind k, every field
// known, of its wire type, strings valid UTF-8, an AnyValue with one value
// at most; it returns the number of LogRecords in it.
func pbCheck(t *testing.T, b []byte, k pbKind) (records int) {
	t.Helper()
	values := 0
	for len(b) > 0 {
		num, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			t.Fatalf("kind %d: bad tag: % x", k, b)
		}
		b = b[l:]
		spec, ok := pbSchema[k][num]
		if !ok || spec.typ != typ {
			t.Fatalf("kind %d: field %d of wire type %d is not in the schema", k, num, typ)
		}
		vl := protowire.ConsumeFieldValue(num, typ, b)
		if vl < 0 {
			t.Fatalf("kind %d: bad value of field %d", k, num)
		}
		if k == kAnyValue {
			if values++; values > 1 {
				t.Fatalf("an AnyValue with two values")
			}
		}
		if typ == protowire.BytesType {
			v, _ := protowire.ConsumeBytes(b)
			switch spec.kind {
			case kString:
				if !utf8.Valid(v) {
					t.Fatalf("kind %d field %d: not UTF-8: %q", k, num, v)
				}
			case kLogRecord:
				records++
				pbCheck(t, v, spec.kind)
			default:
				records += pbCheck(t, v, spec.kind)
			}
		}
		b = b[vl:]
	}
	return records
}

// FuzzOTLPEncode encodes any JSON object as an event: the protobuf request
// is well formed with one LogRecord, and the JSON one is valid JSON with
// one record too.
func FuzzOTLPEncode(f *testing.F) {
	for _, ev := range fuzzEvents {
		f.Add([]byte(ev))
	}
	f.Fuzz(func(t *testing.T, ev []byte) {
		var m map[string]any
		if json.Unmarshal(ev, &m) != nil || !bytes.HasPrefix(bytes.TrimSpace(ev), []byte("{")) {
			return
		}
		pb := newOTLPEncoder(false, "")
		req := pb.encode(nil, [][]byte{ev, ev}, time.Unix(1, 0))
		if n := pbCheck(t, req, kRequest); n != 2 {
			t.Fatalf("%d log records in the request of 2 events", n)
		}
		js := newOTLPEncoder(true, "svc")
		jreq := js.encode(nil, [][]byte{ev}, time.Unix(1, 0))
		var r struct {
			ResourceLogs []struct {
				ScopeLogs []struct{ LogRecords []json.RawMessage }
			}
		}
		if err := json.Unmarshal(jreq, &r); err != nil {
			t.Fatalf("OTLP/JSON of %s is not JSON: %v\n%s", ev, err, jreq)
		}
		if len(r.ResourceLogs) != 1 || len(r.ResourceLogs[0].ScopeLogs) != 1 || len(r.ResourceLogs[0].ScopeLogs[0].LogRecords) != 1 {
			t.Fatalf("OTLP/JSON of %s: %s", ev, jreq)
		}
	})
}

// FuzzESItem: any JSON object becomes an action line and a document line,
// both JSON objects.
func FuzzESItem(f *testing.F) {
	for _, ev := range fuzzEvents {
		f.Add([]byte(ev))
	}
	f.Add([]byte(`{"data_stream":{"x":1}, "log":{"offset":"a","file":"notobject"}}  `))
	fm := &esFormat{action: []byte(`{"create":{"_index":"logs-a-b"`), dataStream: []byte(`"data_stream":{"type":"logs"}`), ids: true}
	f.Fuzz(func(t *testing.T, ev []byte) {
		var m map[string]any
		if json.Unmarshal(ev, &m) != nil || !bytes.HasPrefix(bytes.TrimSpace(ev), []byte("{")) {
			return
		}
		out := fm.appendItem(nil, ev)
		lines := bytes.Split(bytes.TrimSuffix(out, []byte("\n")), []byte("\n"))
		if len(lines) < 2 {
			t.Fatalf("item %q", out)
		}
		var a, d map[string]any
		if json.Unmarshal(lines[0], &a) != nil || json.Unmarshal(bytes.Join(lines[1:], []byte("\n")), &d) != nil {
			t.Fatalf("item of %s is not two JSON objects: %s", ev, out)
		}
		if _, ok := d["data_stream"]; !ok {
			t.Fatalf("document without data_stream: %s", out)
		}
	})
}

// FuzzESBulkResponse: any response body is read without a panic, and the
// items returned are as many as asked.
func FuzzESBulkResponse(f *testing.F) {
	f.Add([]byte(`{"took":1,"errors":false,"items":[{"create":{"status":201}}]}`), uint8(1))
	f.Add([]byte(`{"errors":true,"items":[{"create":{"status":429,"error":{"type":"x"}}},{"index":{"status":201}}]}`), uint8(2))
	f.Add([]byte(`<html>`), uint8(0))
	f.Fuzz(func(t *testing.T, body []byte, n uint8) {
		items, err := parseBulk(body, int(n))
		if err == nil && items != nil && len(items) != int(n) {
			t.Fatalf("%d items for %d", len(items), n)
		}
	})
}

// FuzzOTLPResponse: any response body, protobuf or JSON, is read without a
// panic.
func FuzzOTLPResponse(f *testing.F) {
	f.Add([]byte{0x0a, 0x05, 0x08, 0x03, 0x12, 0x01, 'x'}, false)
	f.Add([]byte(`{"partialSuccess":{"rejectedLogRecords":"3"}}`), true)
	f.Add([]byte(`{"code":3,"message":"m"}`), true)
	f.Fuzz(func(t *testing.T, body []byte, isJSON bool) {
		ct := otlpProtobuf
		if isJSON {
			ct = otlpJSON
		}
		r := httpResult{status: 200, header: http.Header{"Content-Type": {ct}}, body: body}
		if n, _, err := otlpPartialSuccess(r); err == nil && n < 0 && isJSON {
			t.Logf("negative count %d", n)
		}
		otlpStatusMessage(r)
	})
}

// TestOTLPInvalidUTF8: a record's invalid UTF-8 is replaced, in protobuf
// and in JSON.
func TestOTLPInvalidUTF8(t *testing.T) {
	ev := []byte("{\"message\":\"bad \xff byte\",\"k\xfe\":\"v\xc3\",\"level\":\"in\xfffo\"}")
	req := newOTLPEncoder(false, "").encode(nil, [][]byte{ev}, time.Unix(1, 0))
	if n := pbCheck(t, req, kRequest); n != 1 {
		t.Fatalf("%d records", n)
	}
	jreq := newOTLPEncoder(true, "").encode(nil, [][]byte{ev}, time.Unix(1, 0))
	if !utf8.Valid(jreq) || !json.Valid(jreq) || !bytes.Contains(jreq, []byte("bad \uFFFD byte")) {
		t.Fatalf("JSON request %q", jreq)
	}
}
