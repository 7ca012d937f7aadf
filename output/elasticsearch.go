package output

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mmaplog/mmaplog/internal/jsonenc"
)

// ESOptions configure elasticsearch:// outputs. The zero value is the
// defaults.
type ESOptions struct {
	// Dataset and Namespace name the data stream the events are created
	// in, logs-DATASET-NAMESPACE, as Filebeat and Elastic Agent name
	// theirs; each event without a data_stream member gets
	// data_stream.type, .dataset and .namespace to match. Lower case,
	// without '-', '\', '/', '*', '?', '"', '<', '>', '|', ',', '#', ':'
	// or spaces; at most 100 bytes. Defaults DefaultESDataset and
	// DefaultESNamespace.
	Dataset, Namespace string
	// APIKey authenticates with an Elasticsearch API key: "ID:KEY" (as
	// Filebeat's api_key) or its base64 encoding (the "encoded" value
	// Elasticsearch returns). A user and password in the URL authenticate
	// with HTTP basic authentication instead; giving both is an error.
	APIKey string
	// DeadLetter is the file where the events Elasticsearch refuses for
	// good (an item's status 4xx other than 409 and 429: a mapping
	// error, a document it cannot parse) are appended, one JSON line
	// each: {"@timestamp", "output", "index", "status", "error" (what
	// Elasticsearch said), "log": {"file": {"path"}, "offset"} (the
	// record's log and sequence number), "event" (the event as sent)}.
	// Created 0600, never through a symbolic link; a torn last line (a
	// crash in the middle of a write) is cut off when it is opened. With
	// or without it, such events are counted in Stats.Dropped and
	// reported through Options.OnDrop; without it the event itself is
	// kept nowhere but in its log.
	DeadLetter string
	// DocumentID is each event's _id: "fingerprint" (default: a hash of
	// its log.file.path and log.offset, so that an event sent again after
	// a failure is refused as a duplicate (409) instead of indexed twice;
	// events without both get no _id), or "none" (Elasticsearch makes
	// the ids: indexing is cheaper, resent events are indexed again).
	DocumentID string
}

// Defaults of ESOptions.
const (
	DefaultESDataset   = "generic"
	DefaultESNamespace = "default"
)

// ESDocumentIDs are the values of ESOptions.DocumentID, for help texts.
const ESDocumentIDs = "fingerprint|none"

// esFilterPath is the filter_path the _bulk requests ask for: the
// response keeps only what is read from it.
const esFilterPath = "errors,items.*.status,items.*.error"

// checkDataStreamPart checks a dataset or namespace.
func checkDataStreamPart(what, v string) error {
	if v == "" || len(v) > 100 || strings.ContainsAny(v, "-\\/*?\"<>|,#: ") || strings.ToLower(v) != v {
		return fmt.Errorf("%s %q: want lower case, at most 100 bytes, without '-', spaces or any of \\/*?\"<>|,#:", what, v)
	}
	return nil
}

// esOutput is the engine of an elasticsearch:// output and its dead-letter
// file.
type esOutput struct {
	*engine
	dlq *deadLetter
}

func (o *esOutput) Close(ctx context.Context) error {
	err := o.engine.Close(ctx)
	if o.dlq != nil {
		if cerr := o.dlq.close(); err == nil {
			err = cerr
		}
	}
	return err
}

// newElasticsearch returns the elasticsearch:// output: each window is one
// _bulk request of create actions into the data stream
// logs-DATASET-NAMESPACE. Elasticsearch answers each item on its own:
// 2xx, and 409 (a duplicate of a document already there, with
// DocumentID fingerprint), count as delivered; 429 and 5xx items are sent
// again, alone, after a backoff; any other 4xx is a refusal for good (a
// mapping error): the event goes to the dead-letter file, is counted and
// reported. The window is acknowledged once every one of its events is
// delivered or dead-lettered.
func newElasticsearch(u *url.URL, name string, hosts []string, secure bool, opts Options) (Output, error) {
	eo := opts.Elasticsearch
	if eo.Dataset == "" {
		eo.Dataset = DefaultESDataset
	}
	if eo.Namespace == "" {
		eo.Namespace = DefaultESNamespace
	}
	if err := checkDataStreamPart("dataset", eo.Dataset); err != nil {
		return nil, fmt.Errorf("output %s: %w", name, err)
	}
	if err := checkDataStreamPart("namespace", eo.Namespace); err != nil {
		return nil, fmt.Errorf("output %s: %w", name, err)
	}
	ids := true
	switch eo.DocumentID {
	case "", "fingerprint":
	case "none":
		ids = false
	default:
		return nil, fmt.Errorf("output %s: document id %q: want fingerprint or none", name, eo.DocumentID)
	}
	if opts.CompressionLevel < 0 || opts.CompressionLevel > 9 {
		return nil, fmt.Errorf("output %s: compression level %d: want 0 to 9", name, opts.CompressionLevel)
	}
	prefix := strings.TrimSuffix(u.Path, "/")
	q := u.Query()
	if !q.Has("filter_path") {
		q.Set("filter_path", esFilterPath)
	}
	u2 := *u
	u2.RawQuery = q.Encode()
	t := newHTTPTarget(&u2, secure, prefix+"/_bulk", &opts)
	if eo.APIKey != "" {
		if u.User != nil {
			return nil, fmt.Errorf("output %s: an API key and a user in the URL: give one of them", name)
		}
		key := eo.APIKey
		if strings.Contains(key, ":") {
			key = base64.StdEncoding.EncodeToString([]byte(key))
		}
		t.header.Set("Authorization", "ApiKey "+key)
	}
	index := "logs-" + eo.Dataset + "-" + eo.Namespace
	f := &esFormat{
		action:     []byte(`{"create":{"_index":` + strconv.Quote(index)),
		dataStream: []byte(`"data_stream":{"type":"logs","dataset":` + strconv.Quote(eo.Dataset) + `,"namespace":` + strconv.Quote(eo.Namespace) + `}`),
		ids:        ids,
	}
	o := &esOutput{}
	if eo.DeadLetter != "" {
		d, err := openDeadLetter(eo.DeadLetter)
		if err != nil {
			return nil, fmt.Errorf("output %s: dead-letter file: %w", name, err)
		}
		o.dlq = d
	}
	var e *engine
	e = newEngine(name, opts, hosts, opts.Workers, func(ctx context.Context, addr string) (session, error) {
		hs := t.newSession(ctx, addr, e.hostCountersOf(addr))
		// A probe, as Filebeat's: the host answers HTTP, and does not
		// refuse the credentials. Any other answer will do (an API key
		// that may only write gets 403 here).
		r := hs.get(prefix + "/")
		switch {
		case r.err != nil:
			hs.close()
			return nil, r.err
		case r.status == 401:
			hs.close()
			return nil, fmt.Errorf("GET %s/: HTTP 401: the credentials are refused: %s", prefix, snippet(r.body))
		}
		return &esSession{httpSession: hs, f: f, index: index, name: name, dlq: o.dlq, dropped: &e.dropped, onDrop: opts.OnDrop, onError: opts.OnError}, nil
	})
	o.engine = e
	return o, nil
}

// esFormat turns events into _bulk items.
type esFormat struct {
	action     []byte // `{"create":{"_index":"logs-D-N"`
	dataStream []byte // the data_stream member added to events without one
	ids        bool
}

// esEventInfo finds what the output reads of an event: the raw values of
// log.file.path and log.offset (nil where absent), and whether it has a
// top-level data_stream member.
func esEventInfo(ev []byte) (path, offset []byte, hasDataStream bool) {
	it := jsonenc.NewMemberIter(ev)
	var logVal []byte
	for {
		name, v, ok := it.Next()
		if !ok {
			break
		}
		switch string(name) {
		case "log":
			logVal = v
		case "data_stream":
			hasDataStream = true
		}
	}
	if logVal == nil || !jsonenc.IsObject(logVal) {
		return nil, nil, hasDataStream
	}
	it = jsonenc.NewMemberIter(logVal)
	for {
		name, v, ok := it.Next()
		if !ok {
			break
		}
		switch string(name) {
		case "offset":
			offset = v
		case "file":
			if jsonenc.IsObject(v) {
				path, _ = jsonenc.Lookup(v, "path")
			}
		}
	}
	return path, offset, hasDataStream
}

// appendItem appends the action line and the document line of ev.
func (f *esFormat) appendItem(dst, ev []byte) []byte {
	path, off, hasDS := esEventInfo(ev)
	dst = append(dst, f.action...)
	if f.ids && path != nil && off != nil {
		dst = append(dst, `,"_id":"`...)
		dst = appendFingerprint(dst, path, off)
		dst = append(dst, '"')
	}
	dst = append(dst, "}}\n"...)
	end := len(ev)
	for end > 0 && (ev[end-1] == ' ' || ev[end-1] == '\n' || ev[end-1] == '\r' || ev[end-1] == '\t') {
		end--
	}
	if hasDS || end == 0 || ev[end-1] != '}' {
		dst = append(dst, ev[:end]...)
		return append(dst, '\n')
	}
	body := ev[:end-1]
	dst = append(dst, body...)
	if !emptyObjectSoFar(body) {
		dst = append(dst, ',')
	}
	dst = append(dst, f.dataStream...)
	return append(dst, "}\n"...)
}

// emptyObjectSoFar reports whether b is '{' and white space only.
func emptyObjectSoFar(b []byte) bool {
	for i := len(b) - 1; i >= 0; i-- {
		switch b[i] {
		case ' ', '\n', '\r', '\t':
		case '{':
			return true
		default:
			return false
		}
	}
	return false
}

// appendFingerprint appends the document id of the record at path and
// offset (their raw JSON): 32 hex digits of their SHA-256.
func appendFingerprint(dst, path, offset []byte) []byte {
	var buf [512]byte
	in := append(append(append(buf[:0], path...), 0), offset...)
	sum := sha256.Sum256(in)
	return hex.AppendEncode(dst, sum[:16])
}

type esSession struct {
	*httpSession
	f       *esFormat
	index   string
	name    string
	dlq     *deadLetter
	dropped *atomic.Uint64
	onDrop  func([]byte, error)
	onError func(error)

	plain []byte // send's unzipped body
	rbuf  []byte // await's unzipped body, for retries
	evs   [][]byte
}

// esCall is a window's first request in flight.
type esCall struct {
	events [][]byte
	call   *httpCall
}

const ndjson = "application/x-ndjson"

// body builds the request body of events into *dst (gzipped with zw when
// Options.CompressionLevel is set), plain being the scratch of the
// uncompressed one.
func (s *esSession) body(dst *[]byte, plain *[]byte, zw **gzipWriter, events [][]byte) error {
	gz := s.t.opts.CompressionLevel > 0
	b := *dst
	if gz {
		b = *plain
	}
	b = b[:0]
	for _, ev := range events {
		b = s.f.appendItem(b, ev)
	}
	if !gz {
		*dst = b
		return nil
	}
	*plain = b
	out, err := s.compress(zw, (*dst)[:0], b)
	*dst = out
	return err
}

func (s *esSession) send(w *window) error {
	evs := make([][]byte, 0, w.events)
	w.each(func(ev []byte) { evs = append(evs, ev) })
	buf := s.getBuf()
	if err := s.body(buf, &s.plain, &s.gzSend, evs); err != nil {
		s.putBuf(buf)
		return err
	}
	if cap(s.plain) > 16<<20 {
		s.plain = nil
	}
	w.state = &esCall{events: evs, call: s.start(buf, ndjson, s.t.opts.CompressionLevel > 0)}
	return nil
}

// post sends events and waits for the response (await's retries).
func (s *esSession) post(events [][]byte) httpResult {
	buf := s.getBuf()
	defer s.putBuf(buf)
	if err := s.body(buf, &s.rbuf, &s.gzRetry, events); err != nil {
		return httpResult{err: err}
	}
	if cap(s.rbuf) > 16<<20 {
		s.rbuf = nil
	}
	s.hc.sent.Add(uint64(len(events)))
	return s.do(*buf, ndjson, s.t.opts.CompressionLevel > 0)
}

// esItem is an item of a _bulk response.
type esItem struct {
	Status int             `json:"status"`
	Error  json.RawMessage `json:"error"`
}

// parseBulk reads a _bulk response to n items: nil items when none
// failed.
func parseBulk(body []byte, n int) ([]esItem, error) {
	if !json.Valid(body) || !jsonenc.IsObject(body) {
		return nil, fmt.Errorf("_bulk answered with what is not a JSON object: %s", snippet(body))
	}
	v, ok := jsonenc.Lookup(body, "errors")
	if !ok {
		return nil, fmt.Errorf("_bulk answered without \"errors\": %s", snippet(body))
	}
	if string(v) == "false" {
		return nil, nil
	}
	var r struct {
		Items []map[string]esItem `json:"items"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("_bulk response: %w", err)
	}
	if len(r.Items) != n {
		return nil, fmt.Errorf("_bulk answered %d items to a request of %d", len(r.Items), n)
	}
	items := make([]esItem, n)
	for i, m := range r.Items {
		for _, it := range m { // one action per item
			items[i] = it
		}
	}
	return items, nil
}

// esDelivered reports whether an item's status means delivered: created
// (2xx), or a duplicate of a document already there (409).
func esDelivered(status int) bool { return status/100 == 2 || status == 409 }

// esRetryable reports whether an item refused with status is sent again.
func esRetryable(status int) bool { return status == 429 || status >= 500 }

// errESRefused is wrapped by the errors OnDrop gets for events
// Elasticsearch refused for good.
var errESRefused = errors.New("refused by Elasticsearch")

// await waits for the window's response, then sees its events through
// (httpSession.settle): items refused with 429 or 5xx are sent again alone,
// after a backoff or the Retry-After Elasticsearch gave; items refused for
// good, and an event too large for the receiver alone, go to the
// dead-letter file.
func (s *esSession) await(w *window) error {
	c := w.state.(*esCall)
	w.state = nil
	<-c.call.done
	return s.settle(c.call.res, c.events, exchange{name: s.name, what: "_bulk: ", unit: "events",
		post: s.post, answered: s.answered, text: func(r httpResult) string { return snippet(r.body) }, onError: s.onError})
}

// answered handles an answer to the _bulk request of chunk that settle
// leaves to the output: a success (its items), a 413 to one event (dead
// letter), another status (the window fails).
func (s *esSession) answered(chunk [][]byte, res httpResult, backoff *time.Duration) ([][]byte, error) {
	switch st := res.status; {
	case st/100 == 2:
		return s.items(chunk, res, backoff)
	case st == 413:
		return nil, s.deadLetter([]deadItem{{ev: chunk[0], status: st, err: esErrorText("request entity too large: " + snippet(res.body))}})
	default:
		return nil, fmt.Errorf("_bulk: HTTP %d: %s", st, snippet(res.body))
	}
}

// items reads the response (2xx) to the _bulk request of chunk: the
// items refused for good go to the dead-letter file, and the ones refused
// for now are returned, to be sent again once the backoff (or the
// Retry-After Elasticsearch gave) has passed.
func (s *esSession) items(chunk [][]byte, res httpResult, backoff *time.Duration) (retry [][]byte, err error) {
	items, err := parseBulk(res.body, len(chunk))
	if err != nil {
		return nil, err
	}
	var dead []deadItem
	var why esItem
	for i, it := range items {
		switch {
		case esDelivered(it.Status):
		case esRetryable(it.Status):
			retry = append(retry, chunk[i])
			if why.Status == 0 {
				why = it
			}
		default:
			dead = append(dead, deadItem{ev: chunk[i], status: it.Status, err: it.Error})
		}
	}
	if err := s.deadLetter(dead); err != nil {
		return nil, err
	}
	if len(retry) == 0 {
		*backoff = 0
		return nil, nil
	}
	var wait time.Duration
	wait, *backoff = s.retryWait(*backoff, res.retryAfter)
	s.hc.fail(fmt.Errorf("output %s: %s: %d of %d events refused for now (HTTP %d: %s): sending them again in %v",
		s.name, s.addr, len(retry), len(chunk), why.Status, esReason(why.Error), wait.Round(time.Millisecond)), s.onError)
	if !s.sleep(wait) {
		return nil, s.ctx.Err()
	}
	return retry, nil
}

// esReason returns the type and reason of an item's error for a message.
func esReason(raw json.RawMessage) string {
	var e struct {
		Type   string `json:"type"`
		Reason string `json:"reason"`
	}
	if json.Unmarshal(raw, &e) != nil || e.Type == "" && e.Reason == "" {
		return snippet(raw)
	}
	if e.Reason == "" {
		return e.Type
	}
	return e.Type + ": " + e.Reason
}

// esErrorText is an error object of our own, for the dead-letter file.
func esErrorText(reason string) json.RawMessage {
	b, _ := json.Marshal(map[string]string{"type": "mmaptail", "reason": reason})
	return b
}

// deadItem is an event refused for good.
type deadItem struct {
	ev     []byte
	status int
	err    json.RawMessage
}

// deadLetter writes refused events to the dead-letter file (if any),
// counts them and reports each through OnDrop.
func (s *esSession) deadLetter(items []deadItem) error {
	if len(items) == 0 {
		return nil
	}
	where := "not kept: no dead-letter file is set"
	if s.dlq != nil {
		now := timeNow().UTC().Format(time.RFC3339Nano)
		var b []byte
		for _, it := range items {
			b = append(b, `{"@timestamp":"`...)
			b = append(b, now...)
			b = append(b, `","output":`...)
			b = jsonenc.AppendString(b, s.name)
			b = append(b, `,"index":`...)
			b = jsonenc.AppendString(b, s.index)
			b = append(b, `,"status":`...)
			b = strconv.AppendInt(b, int64(it.status), 10)
			b = append(b, `,"error":`...)
			if len(it.err) > 0 && json.Valid(it.err) {
				b = append(b, it.err...)
			} else {
				b = append(b, "null"...)
			}
			if path, off, _ := esEventInfo(it.ev); path != nil || off != nil {
				b = append(b, `,"log":{`...)
				if path != nil {
					b = append(b, `"file":{"path":`...)
					b = append(b, path...)
					b = append(b, '}')
					if off != nil {
						b = append(b, ',')
					}
				}
				if off != nil {
					b = append(b, `"offset":`...)
					b = append(b, off...)
				}
				b = append(b, '}')
			}
			b = append(b, `,"event":`...)
			b = append(b, it.ev...)
			b = append(b, "}\n"...)
		}
		if err := s.dlq.write(b); err != nil {
			return fmt.Errorf("dead-letter file: %w (the window is sent again)", err)
		}
		where = "kept in the dead-letter file " + s.dlq.path
	}
	for _, it := range items {
		s.dropped.Add(1)
		if s.onDrop != nil {
			s.onDrop(it.ev, fmt.Errorf("%w: HTTP %d: %s; %s", errESRefused, it.status, esReason(it.err), where))
		}
	}
	return nil
}
