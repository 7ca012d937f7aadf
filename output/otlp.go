package output

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// OTLPOptions configure otlp:// outputs. The zero value is the defaults.
type OTLPOptions struct {
	// Encoding of the requests: "protobuf" (default) or "json".
	Encoding string
	// ServiceName is the resource's service.name of every record. Default:
	// the event's service.name, else the base name of its log.file.path
	// (the log's directory).
	ServiceName string
	// Headers are sent with every request (an Authorization a vendor's
	// endpoint wants, a tenant's header).
	Headers map[string]string
}

// OTLPEncodings are the values of OTLPOptions.Encoding, for help texts.
const OTLPEncodings = "protobuf|json"

// otlpLogsPath is where OTLP/HTTP takes logs.
const otlpLogsPath = "/v1/logs"

// Content types of OTLP/HTTP.
const (
	otlpProtobuf = "application/x-protobuf"
	otlpJSON     = "application/json"
)

// ErrRejected is wrapped by the error Options.OnError gets when a receiver
// accepted a request but rejected some of its records (OTLP's partial
// success): they are counted in Stats.Dropped and not sent again.
var ErrRejected = errors.New("records rejected by the receiver")

// newOTLP returns the otlp:// output: OTLP/HTTP, each window one
// ExportLogsServiceRequest POSTed to PATH (default /v1/logs), the events
// mapped to LogRecords as otlp_encode.go says.
//
// The protobuf is written here with protowire rather than through the
// generated types of go.opentelemetry.io/proto/otlp: building those
// would allocate a message per record, attribute and value, only to
// marshal them at once, where the events can be walked and written in one
// pass into a buffer that is reused; and the module's collector package
// (ExportLogsServiceRequest) would bring gRPC and the gRPC gateway into
// this module's dependencies for one message of one repeated field. The
// OpenTelemetry Collector's own receiver decodes what is written here in
// the tests.
//
// A response 2xx acknowledges the window; its partial success, if any, is
// counted (Stats.Dropped) and reported (OnError, wrapping ErrRejected).
// 429, 502, 503 and 504 are retried after the receiver's Retry-After, or
// the backoff where it gave none: on this host when it is the only one,
// otherwise the window goes to the next. 400 (the receiver cannot take the
// data, OTLP says not to retry it) drops the window's events, each
// counted and reported through OnDrop; 413 sends the halves of the window
// instead (a single record too large is dropped so). Any other answer
// (401, 403, 404, 500...) fails the window, which is retried with the
// backoff, nothing dropped.
func newOTLP(u *url.URL, name string, hosts []string, secure bool, opts Options) (Output, error) {
	oo := opts.OTLP
	asJSON := false
	switch oo.Encoding {
	case "", "protobuf":
	case "json":
		asJSON = true
	default:
		return nil, fmt.Errorf("output %s: encoding %q: want protobuf or json", name, oo.Encoding)
	}
	if opts.CompressionLevel < 0 || opts.CompressionLevel > 9 {
		return nil, fmt.Errorf("output %s: compression level %d: want 0 to 9", name, opts.CompressionLevel)
	}
	p := u.Path
	if p == "" || p == "/" {
		p = otlpLogsPath
	}
	t := newHTTPTarget(u, secure, p, &opts)
	for k, v := range oo.Headers {
		if k == "" || strings.ContainsAny(k, " :\r\n") || strings.ContainsAny(v, "\r\n") {
			return nil, fmt.Errorf("output %s: header %q: want a name without spaces or colons, and a value on one line", name, k)
		}
		t.header.Set(k, v)
	}
	ctype := otlpProtobuf
	if asJSON {
		ctype = otlpJSON
	}
	var e *engine
	e = newEngine(name, opts, hosts, opts.Workers, func(ctx context.Context, addr string) (session, error) {
		hs := t.newSession(ctx, addr, e.hostCountersOf(addr))
		s := &otlpSession{httpSession: hs, name: name, ctype: ctype, gz: opts.CompressionLevel > 0,
			sendEnc: newOTLPEncoder(asJSON, oo.ServiceName), retryEnc: newOTLPEncoder(asJSON, oo.ServiceName),
			dropped: &e.dropped, onDrop: opts.OnDrop, onError: opts.OnError}
		if err := s.probe(); err != nil {
			hs.close()
			return nil, err
		}
		return s, nil
	})
	return e, nil
}

type otlpSession struct {
	*httpSession
	name     string
	ctype    string
	gz       bool
	sendEnc  *otlpEncoder
	retryEnc *otlpEncoder
	plain    []byte // send's uncompressed request
	rplain   []byte // await's
	dropped  *atomic.Uint64
	onDrop   func([]byte, error)
	onError  func(error)
}

// probe sends an empty request: the receiver is there, takes OTLP at the
// path, and does not refuse the credentials.
func (s *otlpSession) probe() error {
	body := []byte{}
	if s.ctype == otlpJSON {
		body = []byte("{}")
	}
	r := s.do(body, s.ctype, false)
	switch {
	case r.err != nil:
		return r.err
	case r.status/100 == 2, r.status == 429, r.status >= 500:
		return nil // there, if busy
	}
	return fmt.Errorf("POST %s: HTTP %d: %s", s.t.path, r.status, otlpStatusMessage(r))
}

// request encodes events into *dst with enc.
func (s *otlpSession) request(dst *[]byte, plain *[]byte, zw **gzipWriter, enc *otlpEncoder, events [][]byte) error {
	if !s.gz {
		*dst = enc.encode((*dst)[:0], events, timeNow())
		return nil
	}
	*plain = enc.encode((*plain)[:0], events, timeNow())
	out, err := s.compress(zw, (*dst)[:0], *plain)
	*dst = out
	if cap(*plain) > 16<<20 {
		*plain = nil
	}
	return err
}

type otlpCall struct {
	events [][]byte
	call   *httpCall
}

func (s *otlpSession) send(w *window) error {
	evs := make([][]byte, 0, w.events)
	w.each(func(ev []byte) { evs = append(evs, ev) })
	buf := s.getBuf()
	if err := s.request(buf, &s.plain, &s.gzSend, s.sendEnc, evs); err != nil {
		s.putBuf(buf)
		return err
	}
	w.state = &otlpCall{events: evs, call: s.start(buf, s.ctype, s.gz)}
	return nil
}

func (s *otlpSession) post(events [][]byte) httpResult {
	buf := s.getBuf()
	defer s.putBuf(buf)
	if err := s.request(buf, &s.rplain, &s.gzRetry, s.retryEnc, events); err != nil {
		return httpResult{err: err}
	}
	s.hc.sent.Add(uint64(len(events)))
	return s.do(*buf, s.ctype, s.gz)
}

// await waits for the window's response, then sees its records through
// (httpSession.settle): records the receiver rejected in a partial success
// are counted and reported; a request it refused as bad (400), or a record
// too large for it alone (413), is dropped, counted and reported.
func (s *otlpSession) await(w *window) error {
	c := w.state.(*otlpCall)
	w.state = nil
	<-c.call.done
	return s.settle(c.call.res, c.events, exchange{name: s.name, unit: "records",
		post: s.post, answered: s.answered, text: otlpStatusMessage, onError: s.onError})
}

// answered handles an answer to the request of chunk that settle leaves
// to the output: a success (rejections counted), a 400 or a 413 to one
// record (dropped), another status (the window fails).
func (s *otlpSession) answered(chunk [][]byte, res httpResult, backoff *time.Duration) ([][]byte, error) {
	switch st := res.status; {
	case st/100 == 2:
		rejected, msg, err := otlpPartialSuccess(res)
		if err != nil {
			return nil, err
		}
		*backoff = 0
		if rejected > 0 {
			s.dropped.Add(uint64(rejected))
			if s.onError != nil {
				s.onError(fmt.Errorf("output %s: %s: %w: %d of %d: %s", s.name, s.addr, ErrRejected, rejected, len(chunk), msg))
			}
		}
	case st == 400 || st == 413:
		why := fmt.Errorf("%w: HTTP %d: %s", ErrRejected, st, otlpStatusMessage(res))
		s.hc.fail(fmt.Errorf("output %s: %s: %d events dropped: %w", s.name, s.addr, len(chunk), why), nil)
		for _, ev := range chunk {
			s.dropped.Add(1)
			if s.onDrop != nil {
				s.onDrop(ev, why)
			}
		}
	default:
		return nil, fmt.Errorf("HTTP %d: %s", st, otlpStatusMessage(res))
	}
	return nil, nil
}

// isJSON reports whether a response is OTLP/JSON (else protobuf).
func isJSON(r httpResult) bool {
	return strings.HasPrefix(r.header.Get("Content-Type"), "application/json")
}

// otlpPartialSuccess reads an ExportLogsServiceResponse.
func otlpPartialSuccess(r httpResult) (rejected int64, msg string, err error) {
	if len(r.body) == 0 {
		return 0, "", nil
	}
	if isJSON(r) {
		var resp struct {
			PartialSuccess struct {
				Rejected json.RawMessage `json:"rejectedLogRecords"`
				Message  string          `json:"errorMessage"`
			} `json:"partialSuccess"`
		}
		if err := json.Unmarshal(r.body, &resp); err != nil {
			return 0, "", fmt.Errorf("response: %w: %s", err, snippet(r.body))
		}
		if n := strings.Trim(string(resp.PartialSuccess.Rejected), `"`); n != "" {
			if rejected, err = strconv.ParseInt(n, 10, 64); err != nil {
				return 0, "", fmt.Errorf("response: rejectedLogRecords %s is not a number", n)
			}
		}
		return rejected, resp.PartialSuccess.Message, nil
	}
	partial, ok := pbField(r.body, pbResponsePartial, protowire.BytesType)
	if !ok {
		return 0, "", nil
	}
	if v, ok := pbField(partial, pbPartialRejected, protowire.VarintType); ok {
		n, _ := protowire.ConsumeVarint(v)
		rejected = int64(n)
	}
	if v, ok := pbField(partial, pbPartialMessage, protowire.BytesType); ok {
		msg = string(v)
	}
	return rejected, msg, nil
}

// otlpStatusMessage returns the message of an error response (a
// google.rpc.Status, in JSON or protobuf), else the start of its body.
func otlpStatusMessage(r httpResult) string {
	if isJSON(r) {
		var st struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(r.body, &st) == nil && st.Message != "" {
			return st.Message
		}
	} else if strings.HasPrefix(r.header.Get("Content-Type"), otlpProtobuf) {
		if v, ok := pbField(r.body, pbStatusMessage, protowire.BytesType); ok {
			return string(v)
		}
	}
	if len(r.body) == 0 {
		return "(no body)"
	}
	return snippet(r.body)
}

// pbField returns the last occurrence of field num (of type typ) in the
// protobuf message b: a varint's bytes, or a length-delimited field's
// content.
func pbField(b []byte, num protowire.Number, typ protowire.Type) ([]byte, bool) {
	var out []byte
	found := false
	for len(b) > 0 {
		n, t, l := protowire.ConsumeTag(b)
		if l < 0 {
			return out, found
		}
		b = b[l:]
		vl := protowire.ConsumeFieldValue(n, t, b)
		if vl < 0 {
			return out, found
		}
		if n == num && t == typ {
			switch t {
			case protowire.BytesType:
				v, _ := protowire.ConsumeBytes(b)
				out, found = v, true
			default:
				out, found = b[:vl], true
			}
		}
		b = b[vl:]
	}
	return out, found
}
