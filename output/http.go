package output

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
)

// The HTTP outputs (elasticsearch://, otlp://) share this: a session is one
// http.Transport to one host, whose requests the engine's windows become.
// send encodes a window into a request body and starts the request on a
// goroutine of its own, so that Options.Pipelining windows are in flight
// on one session (each on a connection of the transport); await waits for
// the response and handles what the output's protocol says about it, which
// may mean sending part of the window again.

// maxResponseBytes bounds a response body read into memory.
const maxResponseBytes = 64 << 20

// maxRetryAfter bounds the wait a receiver's Retry-After asks for.
const maxRetryAfter = 15 * time.Minute

// gzipWriter is the gzip writer of request bodies.
type gzipWriter = gzip.Writer

// httpTarget is what every request of an HTTP output shares.
type httpTarget struct {
	scheme string // http or https
	path   string // request path
	query  string // encoded query, without '?'
	header http.Header
	tls    *tls.Config
	opts   *Options
}

// newHTTPTarget reads the scheme (secure: https whatever Options.TLS
// says), the user and password (basic authentication) and the query of u.
func newHTTPTarget(u *url.URL, secure bool, path string, opts *Options) *httpTarget {
	t := &httpTarget{scheme: "http", path: path, query: u.RawQuery, header: http.Header{}, opts: opts}
	if secure || opts.TLS != nil {
		t.scheme = "https"
		t.tls = opts.TLS
		if t.tls == nil {
			t.tls = &tls.Config{MinVersion: tls.VersionTLS12}
		}
	}
	if u.User != nil {
		pass, _ := u.User.Password()
		r := http.Request{Header: http.Header{}}
		r.SetBasicAuth(u.User.Username(), pass)
		t.header.Set("Authorization", r.Header.Get("Authorization"))
	}
	t.header.Set("User-Agent", "mmaptail")
	return t
}

// httpSession is one host's transport.
type httpSession struct {
	t       *httpTarget
	addr    string
	url     string
	tr      *http.Transport
	client  *http.Client
	ctx     context.Context
	cancel  context.CancelFunc
	hc      *hostCounters
	others  func() bool
	bufs    sync.Pool // *[]byte request bodies
	gzSend  *gzip.Writer
	gzRetry *gzip.Writer
}

func (t *httpTarget) newSession(ctx context.Context, addr string, hc *hostCounters) *httpSession {
	o := t.opts
	d := &net.Dialer{Timeout: o.DialTimeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		DialContext:           d.DialContext,
		MaxIdleConnsPerHost:   o.Pipelining + 1,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   o.DialTimeout,
		ResponseHeaderTimeout: o.Timeout,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    false,
	}
	if t.tls != nil {
		cfg := t.tls.Clone()
		if cfg.ServerName == "" {
			host, _, _ := net.SplitHostPort(addr)
			cfg.ServerName = host
		}
		tr.TLSClientConfig = cfg
	}
	sctx, cancel := context.WithCancel(ctx)
	u := t.scheme + "://" + addr + t.path
	if t.query != "" {
		u += "?" + t.query
	}
	return &httpSession{t: t, addr: addr, url: u, tr: tr, client: &http.Client{Transport: tr}, ctx: sctx, cancel: cancel, hc: hc}
}

func (s *httpSession) close() error {
	s.cancel()
	s.tr.CloseIdleConnections()
	return nil
}

func (s *httpSession) setOthers(f func() bool) { s.others = f }

// hasOthers reports whether another host could take this one's windows.
func (s *httpSession) hasOthers() bool { return s.others != nil && s.others() }

func (s *httpSession) getBuf() *[]byte {
	if b, ok := s.bufs.Get().(*[]byte); ok {
		*b = (*b)[:0]
		return b
	}
	return new([]byte)
}

func (s *httpSession) putBuf(b *[]byte) {
	if b == nil || cap(*b) > 16<<20 {
		return
	}
	s.bufs.Put(b)
}

// compress gzips plain into dst (level: Options.CompressionLevel) with zw,
// made on first use; the caller owns zw (send and await each have one).
func (s *httpSession) compress(zw **gzip.Writer, dst, plain []byte) ([]byte, error) {
	out := appendWriter{b: dst}
	if *zw == nil {
		w, err := gzip.NewWriterLevel(&out, s.t.opts.CompressionLevel)
		if err != nil {
			return dst, err
		}
		*zw = w
	} else {
		(*zw).Reset(&out)
	}
	if _, err := (*zw).Write(plain); err != nil {
		return dst, err
	}
	if err := (*zw).Close(); err != nil {
		return dst, err
	}
	(*zw).Reset(io.Discard) // do not keep dst reachable
	return out.b, nil
}

// httpResult is the outcome of one request.
type httpResult struct {
	status     int
	header     http.Header
	body       []byte
	err        error // no response (connection failed, timed out)
	retryAfter time.Duration
}

// httpCall is a request in flight.
type httpCall struct {
	done chan struct{}
	res  httpResult
	body *[]byte // returned to the pool once done
}

// start sends body (gzipped: with Content-Encoding gzip) on a goroutine
// of its own; the call's done closes when the response is read.
func (s *httpSession) start(body *[]byte, contentType string, gzipped bool) *httpCall {
	c := &httpCall{done: make(chan struct{}), body: body}
	go func() {
		c.res = s.do(*body, contentType, gzipped)
		s.putBuf(c.body)
		c.body = nil
		close(c.done)
	}()
	return c
}

// do sends one request and reads its response.
func (s *httpSession) do(body []byte, contentType string, gzipped bool) httpResult {
	ctx, cancel := context.WithTimeout(s.ctx, s.t.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return httpResult{err: err}
	}
	for k, v := range s.t.header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", contentType)
	if gzipped {
		req.Header.Set("Content-Encoding", "gzip")
	}
	return s.round(req)
}

// get sends a GET of path (a probe at connection time).
func (s *httpSession) get(path string) httpResult {
	ctx, cancel := context.WithTimeout(s.ctx, s.t.opts.DialTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.t.scheme+"://"+s.addr+path, nil)
	if err != nil {
		return httpResult{err: err}
	}
	for k, v := range s.t.header {
		req.Header[k] = v
	}
	return s.round(req)
}

func (s *httpSession) round(req *http.Request) httpResult {
	resp, err := s.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if s.ctx.Err() != nil {
			err = fmt.Errorf("%w (session closed)", err)
		}
		return httpResult{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err == nil && len(b) > maxResponseBytes {
		err = fmt.Errorf("response larger than %d bytes", maxResponseBytes)
	}
	if err != nil {
		return httpResult{err: fmt.Errorf("reading the response (HTTP %d): %w", resp.StatusCode, err)}
	}
	return httpResult{status: resp.StatusCode, header: resp.Header, body: b, retryAfter: parseRetryAfter(resp.Header.Get("Retry-After"))}
}

// parseRetryAfter reads a Retry-After header: seconds or an HTTP date. 0
// if there is none (or it is in the past).
func parseRetryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		return min(time.Duration(n)*time.Second, maxRetryAfter)
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return min(d, maxRetryAfter)
		}
	}
	return 0
}

// retryWait returns how long to wait before the next try: the receiver's
// Retry-After where it gave one, else the backoff (doubling from
// BackoffMin to BackoffMax, with jitter on its upper half), and the
// backoff after it.
func (s *httpSession) retryWait(backoff, retryAfter time.Duration) (wait, next time.Duration) {
	o := s.t.opts
	next = min(max(2*backoff, o.BackoffMin), o.BackoffMax)
	wait = next/2 + rand.N(next/2+1)
	if retryAfter > 0 {
		wait = retryAfter
	}
	return wait, next
}

// exchange is what settle needs from an HTTP output to see a window's
// events through to their answers.
type exchange struct {
	name string // the output's name, for messages
	what string // what was sent, before "HTTP" in errors ("_bulk: ", or "")
	unit string // what the events are called in messages ("events", "records")
	// post sends chunk again and returns the answer.
	post func(chunk [][]byte) httpResult
	// answered handles an answer settle does not (a success, a 413 to
	// one event, a status that is neither retried nor split) and returns
	// the events to send again; backoff is the session's, for Retry-After.
	answered func(chunk [][]byte, res httpResult, backoff *time.Duration) (retry [][]byte, err error)
	// text is what the answer says, for messages.
	text    func(res httpResult) string
	onError func(error)
}

// settle sees the events of a window through, from res, the answer to
// their first request: it sends again the halves of a request too large
// for the receiver (413), and, where this is the only host, a whole request
// answered 429, 502, 503 or 504 after the receiver's Retry-After or a
// backoff; x.answered decides the rest. A connection failure, or a
// retryable status with other hosts to go to, fails the window: the engine
// sends it again, elsewhere where it can.
func (s *httpSession) settle(res httpResult, events [][]byte, x exchange) error {
	todo := [][][]byte{events}
	var backoff time.Duration
	for first := true; len(todo) > 0; first = false {
		chunk := todo[0]
		todo = todo[1:]
		if !first {
			res = x.post(chunk)
		}
		if res.err != nil {
			return res.err
		}
		switch st := res.status; {
		case st == 413 && len(chunk) > 1:
			h := len(chunk) / 2
			todo = append([][][]byte{chunk[:h], chunk[h:]}, todo...)
		case st == 429 || st == 502 || st == 503 || st == 504:
			if s.hasOthers() {
				return fmt.Errorf("%sHTTP %d: %s", x.what, st, x.text(res))
			}
			var wait time.Duration
			wait, backoff = s.retryWait(backoff, res.retryAfter)
			s.hc.fail(fmt.Errorf("output %s: %s: %sHTTP %d: %s: sending the %d %s again in %v",
				x.name, s.addr, x.what, st, x.text(res), len(chunk), x.unit, wait.Round(time.Millisecond)), x.onError)
			if !s.sleep(wait) {
				return s.ctx.Err()
			}
			todo = append([][][]byte{chunk}, todo...)
		default:
			retry, err := x.answered(chunk, res, &backoff)
			if err != nil {
				return err
			}
			if len(retry) > 0 {
				todo = append(todo, retry)
			}
		}
	}
	return nil
}

// sleep waits d, or until the session closes (false).
func (s *httpSession) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.ctx.Done():
		return false
	}
}

// snippet returns the start of a response body for a message.
func snippet(b []byte) string {
	const n = 300
	s := strings.TrimSpace(string(b))
	if len(s) > n {
		s = s[:n] + "..."
	}
	return strings.Join(strings.Fields(s), " ")
}

// hostCountersOf returns the counters of the host at addr.
func (e *engine) hostCountersOf(addr string) *hostCounters {
	for _, h := range e.hosts {
		if h.addr == addr {
			return &h.c
		}
	}
	return &hostCounters{}
}
