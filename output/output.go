package output

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Output delivers batches of events, each one JSON object already encoded.
// Implementations are safe for one publishing goroutine (ack callbacks run on
// the output's own goroutine).
type Output interface {
	// Publish hands over a batch of events: each one JSON object without a
	// trailing newline. The output keeps the slices until it calls ack: the
	// caller must not modify them before. Publish blocks while the output's
	// window of unacknowledged batches is full (backpressure), until ctx
	// is done (it then returns ctx's error and the batch was not taken).
	//
	// ack is called exactly once for every batch Publish took, in the
	// order they were published, once the receiver acknowledged every
	// event of it (outputs without acknowledgements: once it was written
	// to the connection or file). It runs on the output's goroutine and
	// must not block. Until then the output retries: it reconnects with
	// exponential backoff and jitter and sends the batch again, so a
	// receiver may see an event more than once (at least once).
	Publish(ctx context.Context, events [][]byte, ack func()) error
	// Close waits until every published batch is acknowledged, or ctx is
	// done, then closes the connection. Batches not acknowledged by then
	// never are (their ack is not called).
	Close(ctx context.Context) error
	// Stats returns the output's counters.
	Stats() Stats
	// String names the output for messages (its URL, without a password).
	String() string
}

// Stats are an output's counters since it was opened.
type Stats struct {
	Events    uint64 // events acknowledged
	Bytes     uint64 // bytes of JSON acknowledged
	Batches   uint64 // batches acknowledged
	Pending   int    // batches published and not acknowledged yet
	Connects  uint64 // connections established (the first one included)
	Errors    uint64 // failed connection attempts, sends and acknowledgements
	LastError string // the last of them, "" if none
	Connected bool   // a connection is up now
}

// Defaults of Options.
const (
	DefaultWindow      = 4
	DefaultBackoffMin  = 100 * time.Millisecond
	DefaultBackoffMax  = 10 * time.Second
	DefaultTimeout     = 30 * time.Second
	DefaultDialTimeout = 10 * time.Second
)

// Options configure an output. A nil *Options means all defaults.
type Options struct {
	// Window is the number of batches that may be published and not yet
	// acknowledged (in flight). Default DefaultWindow.
	Window int
	// TLS, if set, makes beats://, tcp:// and redis:// connect with TLS.
	TLS *tls.Config
	// CompressionLevel is the zlib level (0 to 9) of beats:// batches;
	// 0 sends them uncompressed.
	CompressionLevel int
	// BackoffMin and BackoffMax bound the wait between reconnection
	// attempts, which doubles after each failure (with jitter) and starts
	// over after a success. Defaults DefaultBackoffMin, DefaultBackoffMax.
	BackoffMin, BackoffMax time.Duration
	// Timeout bounds a write, and the wait for an acknowledgement with no
	// sign of life from the receiver. Default DefaultTimeout.
	Timeout time.Duration
	// DialTimeout bounds a connection attempt. Default DefaultDialTimeout.
	DialTimeout time.Duration
	// OnError, if set, is told about every failure (connection lost,
	// refused, an error reply); the output keeps retrying.
	OnError func(error)
	// Stdout is where "stdout" writes. Default os.Stdout.
	Stdout interface {
		Write([]byte) (int, error)
	}
}

func (o *Options) resolve() Options {
	var r Options
	if o != nil {
		r = *o
	}
	if r.Window <= 0 {
		r.Window = DefaultWindow
	}
	if r.BackoffMin <= 0 {
		r.BackoffMin = DefaultBackoffMin
	}
	if r.BackoffMax < r.BackoffMin {
		r.BackoffMax = max(DefaultBackoffMax, r.BackoffMin)
	}
	if r.Timeout <= 0 {
		r.Timeout = DefaultTimeout
	}
	if r.DialTimeout <= 0 {
		r.DialTimeout = DefaultDialTimeout
	}
	if r.Stdout == nil {
		r.Stdout = os.Stdout
	}
	return r
}

// Open returns the output a URL names:
//
//	beats://HOST:PORT       Logstash's beats input (lumberjack v2), acknowledged
//	tcp://HOST:PORT         newline-delimited JSON (Logstash tcp input, json_lines codec), no acknowledgements
//	redis://[:PASSWORD@]HOST:PORT/KEY[?db=N]   RPUSH onto the list KEY (Logstash redis input, data_type list)
//	stdout                  newline-delimited JSON on standard output
//	file://PATH             newline-delimited JSON appended to PATH (file:///var/log/x.ndjson)
//
// It does not connect: the connection is made (and remade) in the
// background, so that Open succeeds while the receiver is down.
func Open(rawURL string, o *Options) (Output, error) {
	opts := o.resolve()
	if rawURL == "stdout" || rawURL == "stdout://" || rawURL == "-" {
		return newStreamOutput("stdout", opts, func() (writeCloser, error) { return nopCloser{opts.Stdout}, nil }), nil
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("output: %w", err)
	}
	switch u.Scheme {
	case "beats", "tcp", "redis":
		if u.Port() == "" || u.Hostname() == "" {
			return nil, fmt.Errorf("output %s: want %s://HOST:PORT", redact(u), u.Scheme)
		}
	}
	switch u.Scheme {
	case "beats":
		if opts.CompressionLevel < 0 || opts.CompressionLevel > 9 {
			return nil, fmt.Errorf("output %s: compression level %d: want 0 to 9", u, opts.CompressionLevel)
		}
		return newBeats(u, opts), nil
	case "tcp":
		return newTCP(u, opts), nil
	case "redis":
		return newRedis(u, opts)
	case "file":
		path := u.Host + u.Path
		if u.Opaque != "" {
			path = u.Opaque
		}
		if path == "" {
			return nil, fmt.Errorf("output %s: want file://PATH", rawURL)
		}
		return newStreamOutput("file://"+path, opts, func() (writeCloser, error) { return openFile(path) }), nil
	case "":
		return nil, fmt.Errorf("output %q: want a URL such as beats://HOST:PORT, tcp://HOST:PORT, redis://HOST:PORT/KEY, stdout or file://PATH", rawURL)
	}
	return nil, fmt.Errorf("output %s: unknown scheme %q (beats, tcp, redis, stdout, file)", redact(u), u.Scheme)
}

// redact returns u without its password, for messages.
func redact(u *url.URL) string {
	if u.User == nil {
		return u.String()
	}
	c := *u
	c.User = url.User(u.User.Username())
	return c.String()
}

// TLSConfig returns a client TLS configuration: ca (a PEM file of
// certificates to trust instead of the system's), cert and key (a client
// certificate, for receivers that verify clients), serverName (the name to
// verify, default the host dialled). Empty strings leave a field unset.
func TLSConfig(ca, cert, key, serverName string) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: serverName}
	if ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("TLS CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("TLS CA %s: no PEM certificate in it", ca)
		}
		c.RootCAs = pool
	}
	if (cert == "") != (key == "") {
		return nil, errors.New("TLS: a client certificate needs its key, and a key its certificate")
	}
	if cert != "" {
		kp, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("TLS client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{kp}
	}
	return c, nil
}

// dial connects to addr, with TLS if configured.
func dial(ctx context.Context, addr string, o *Options) (net.Conn, error) {
	d := &net.Dialer{Timeout: o.DialTimeout, KeepAlive: 30 * time.Second}
	if o.TLS == nil {
		return d.DialContext(ctx, "tcp", addr)
	}
	cfg := o.TLS.Clone()
	if cfg.ServerName == "" {
		host, _, _ := net.SplitHostPort(addr)
		cfg.ServerName = host
	}
	td := &tls.Dialer{NetDialer: d, Config: cfg}
	return td.DialContext(ctx, "tcp", addr)
}

// counters are the atomics behind Stats.
type counters struct {
	events, bytes, batches, connects, errors atomic.Uint64
	connected                                atomic.Bool
	lastErr                                  atomic.Pointer[string]
}

func (c *counters) fail(err error, onError func(error)) {
	c.errors.Add(1)
	s := err.Error()
	c.lastErr.Store(&s)
	if onError != nil {
		onError(err)
	}
}

func (c *counters) stats() Stats {
	s := Stats{Events: c.events.Load(), Bytes: c.bytes.Load(), Batches: c.batches.Load(), Connects: c.connects.Load(),
		Errors: c.errors.Load(), Connected: c.connected.Load()}
	if p := c.lastErr.Load(); p != nil {
		s.LastError = *p
	}
	return s
}

func itoa(n int) string { return strconv.Itoa(n) }

// hostPort returns u's address.
func hostPort(u *url.URL) string { return net.JoinHostPort(u.Hostname(), u.Port()) }

func trimSlash(s string) string { return strings.TrimPrefix(s, "/") }

var timeNow = time.Now
