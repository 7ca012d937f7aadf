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

// Publisher takes batches of events.
type Publisher interface {
	// Publish hands over a batch (see Batch). It blocks while the
	// output's Window of unacknowledged batches is full (backpressure),
	// until ctx is done (it then returns ctx's error and the batch was not
	// taken). A batch without events is acknowledged at once.
	//
	// The output calls the batch's Ack once the receiver acknowledged
	// every event of it, in the order the batches were published through
	// this Publisher. Until then it retries: it reconnects with
	// exponential backoff and jitter and sends the batch again, to
	// another host where there are several, so a receiver may see an
	// event more than once (at least once).
	Publish(ctx context.Context, b Batch) error
}

// Output delivers batches of events, each one JSON object already encoded.
// Publish (and each Source's Publish) is safe for one goroutine at a time;
// different Sources may publish concurrently.
type Output interface {
	Publisher
	// NewSource returns a Publisher of its own: its batches are
	// acknowledged in its own publishing order, independently of other
	// sources' (a batch of another source that is held up does not hold
	// its acknowledgements back), and the output takes batches from the
	// sources with batches waiting in turn, so that a quiet source's batch
	// is sent next rather than after a busy source's backlog. A shipper
	// following many logs uses one source per log.
	NewSource() Publisher
	// Close waits until every published batch is acknowledged, or ctx is
	// done, then closes the connections. Batches not acknowledged by then
	// never are: their Nack is called instead.
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
	Dropped   uint64 // events not delivered, by policy or by the receiver's refusal, each reported (see Options.OnDrop)
	Pending   int    // batches published and not acknowledged yet
	Connects  uint64 // connections established (the first ones included), all hosts
	Errors    uint64 // failed connection attempts, sends and acknowledgements, all hosts
	LastError error  // the last of them, nil if none
	Connected bool   // a connection is up now
	Hosts     []HostStats
}

// HostStats are the counters of one host of an output (for Kafka: of the
// cluster, named by its seed brokers).
type HostStats struct {
	Host      string // HOST:PORT as given in the URL
	Connected int    // connections up now (at most Workers)
	Connects  uint64 // connections established
	Errors    uint64 // failed connection attempts, sends and acknowledgements
	Sent      uint64 // events written to it, resent ones included
	Acked     uint64 // events it acknowledged
	LastError error  // the last failure, nil if none
}

// Defaults and limits of Options.
const (
	DefaultWindow      = 4
	DefaultPipelining  = 2
	DefaultBulkMaxSize = 2048
	DefaultWorkers     = 1
	DefaultBackoffMin  = 100 * time.Millisecond
	DefaultBackoffMax  = 10 * time.Second
	DefaultTimeout     = 30 * time.Second
	DefaultDialTimeout = 10 * time.Second
	// MaxWorkers is the most connections per host.
	MaxWorkers = 64
	// MaxPipelining is the most windows in flight on one connection.
	MaxPipelining = 64
)

// Options configure an output. A nil *Options means all defaults.
type Options struct {
	// Window is the number of batches that may be published and not yet
	// acknowledged (in flight), all sources together; Publish blocks
	// beyond it. Default DefaultWindow.
	Window int
	// Pipelining is the number of windows (lumberjack windows, RPUSH
	// commands, Kafka produce bursts) one connection may have sent and
	// not yet acknowledged. Default DefaultPipelining (Kafka: 4 times it).
	Pipelining int
	// BulkMaxSize is the most events in a window: a window gathers the
	// waiting batches, a batch that does not fit is split and its rest
	// goes in the next window. Default DefaultBulkMaxSize.
	BulkMaxSize int
	// SharedBulkMaxSize is the most events in a window while several
	// sources share the output (another source has batches waiting, or
	// published in the last 5 seconds). A quiet source's batch waits for
	// the windows already in flight, so while sources share the output a
	// window holds what the receivers acknowledge in about a millisecond
	// (the rate measured), at least 64 events and at most
	// SharedBulkMaxSize. Default BulkMaxSize/4 (at least 1); BulkMaxSize
	// or more keeps every window at BulkMaxSize.
	SharedBulkMaxSize int
	// Loadbalance spreads windows over every host of the URL (each
	// host's connections take windows while they have room in their
	// pipeline), instead of sending to one host at a time and going on
	// to the next when it fails (failover, the default: the first host is
	// picked at random).
	Loadbalance bool
	// Workers is the number of connections per host (under failover, to
	// the host in use). Default DefaultWorkers, at most MaxWorkers.
	Workers int
	// TLS, if set, makes beats://, tcp://, redis://, kafka://,
	// elasticsearch:// and otlp:// connect with TLS (elasticsearchs://
	// and otlps:// always do, with the system's CAs where TLS is nil).
	TLS *tls.Config
	// CompressionLevel is the zlib level (0 to 9) of beats:// batches and
	// the gzip level of elasticsearch:// and otlp:// request bodies; 0
	// sends them uncompressed.
	CompressionLevel int
	// BackoffMin and BackoffMax bound the wait between reconnection
	// attempts to a host, which doubles after each failure (with jitter)
	// and starts over after a success. Defaults DefaultBackoffMin,
	// DefaultBackoffMax.
	BackoffMin, BackoffMax time.Duration
	// Timeout bounds a write and the wait for an acknowledgement: a host
	// that sends nothing for Timeout is taken for dead, and one that
	// sends only keepalives for Timeout, without acknowledging, for
	// stalled when there are other hosts; either way its windows are sent
	// again, to another host if there is one. (Kafka: the produce request
	// timeout.) Default DefaultTimeout.
	Timeout time.Duration
	// DialTimeout bounds a connection attempt. Default DefaultDialTimeout.
	DialTimeout time.Duration
	// OnError, if set, is told about every failure (connection lost,
	// refused, an error reply, a host stalled); the output keeps retrying.
	OnError func(error)
	// OnDrop, if set, is told about every event dropped by policy (Kafka:
	// larger than Kafka.MaxMessageBytes) or refused for good by the
	// receiver (Elasticsearch: an item's 4xx, the event then in the
	// dead-letter file if one is set; OTLP: a request answered 400), with
	// the event (valid during the call) and why. Records an OTLP receiver
	// rejected in a partial success are not known one by one: they are
	// counted in Stats.Dropped and reported through OnError.
	OnDrop func(event []byte, err error)
	// Kafka configures kafka:// outputs.
	Kafka KafkaOptions
	// Elasticsearch configures elasticsearch:// outputs.
	Elasticsearch ESOptions
	// OTLP configures otlp:// outputs.
	OTLP OTLPOptions
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
	if r.Pipelining <= 0 {
		r.Pipelining = DefaultPipelining
	}
	if r.BulkMaxSize <= 0 {
		r.BulkMaxSize = DefaultBulkMaxSize
	}
	if r.SharedBulkMaxSize <= 0 {
		r.SharedBulkMaxSize = max(r.BulkMaxSize/4, 1)
	}
	if r.Workers <= 0 {
		r.Workers = DefaultWorkers
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

// URLForms lists the URLs Open takes, one per line, for help texts.
const URLForms = `  beats://HOST:PORT[,HOST:PORT...]
                 Logstash's beats input (lumberjack v2); acknowledged: at least once
  tcp://HOST:PORT[,HOST:PORT...]
                 newline-delimited JSON (Logstash's tcp input, json_lines codec);
                 NO acknowledgements: events in flight when the receiver dies are lost
  redis://[:PASSWORD@]HOST:PORT[,HOST:PORT...]/KEY[?db=N]
                 RPUSH onto the list KEY (Logstash's redis input, data_type list);
                 acknowledged by Redis's replies
  kafka://[USER:PASSWORD@]BROKER:PORT[,BROKER:PORT...]/TOPIC
                 Kafka producer (franz-go); acknowledged per --kafka-acks
  elasticsearch://[USER:PASSWORD@]HOST:PORT[,HOST:PORT...][/PATH][?QUERY]
                 Elasticsearch _bulk API into the data stream logs-DATASET-NAMESPACE;
                 acknowledged per item (elasticsearchs:// for HTTPS)
  otlp://[USER:PASSWORD@]HOST:PORT[,HOST:PORT...][/PATH]
                 OpenTelemetry OTLP/HTTP logs (POST PATH, default /v1/logs);
                 acknowledged per request (otlps:// for HTTPS)
  file://PATH    newline-delimited JSON appended to PATH (created 0600)
  stdout         newline-delimited JSON on standard output`

// Open returns the output a URL names:
//
//	beats://HOST:PORT[,HOST:PORT...]   Logstash's beats input (lumberjack v2), acknowledged
//	tcp://HOST:PORT[,HOST:PORT...]     newline-delimited JSON (Logstash tcp input, json_lines codec), no acknowledgements
//	redis://[:PASSWORD@]HOST:PORT[,...]/KEY[?db=N]   RPUSH onto the list KEY (Logstash redis input, data_type list)
//	kafka://[USER:PASSWORD@]BROKER:PORT[,...]/TOPIC  Kafka (see KafkaOptions)
//	elasticsearch://[USER:PASSWORD@]HOST:PORT[,...][/PATH][?QUERY]  Elasticsearch's _bulk API (see ESOptions); elasticsearchs:// for HTTPS
//	otlp://[USER:PASSWORD@]HOST:PORT[,...][/PATH]     OTLP/HTTP logs (see OTLPOptions); otlps:// for HTTPS
//	stdout                             newline-delimited JSON on standard output
//	file://PATH                        newline-delimited JSON appended to PATH (file:///var/log/x.ndjson)
//
// With several hosts the output fails over from one to the next, or with
// Options.Loadbalance spreads its windows over all of them. It does not
// connect: the connections are made (and remade) in the background, so
// that Open succeeds while the receivers are down.
func Open(rawURL string, o *Options) (Output, error) {
	opts := o.resolve()
	switch {
	case opts.Workers > MaxWorkers:
		return nil, fmt.Errorf("output: %d workers per host: at most %d", opts.Workers, MaxWorkers)
	case opts.Pipelining > MaxPipelining:
		return nil, fmt.Errorf("output: pipelining %d: at most %d", opts.Pipelining, MaxPipelining)
	}
	if rawURL == "stdout" || rawURL == "stdout://" || rawURL == "-" {
		return newStreamOutput("stdout", opts, func() (writeCloser, error) { return nopCloser{opts.Stdout}, nil }), nil
	}
	u, hostList, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	name := redact(u)
	var hosts []string
	switch u.Scheme {
	case "beats", "tcp", "redis", "kafka", "elasticsearch", "elasticsearchs", "otlp", "otlps":
		if hosts, err = splitHosts(u, hostList); err != nil {
			return nil, fmt.Errorf("output %s: %w", name, err)
		}
	}
	switch u.Scheme {
	case "beats":
		if opts.CompressionLevel < 0 || opts.CompressionLevel > 9 {
			return nil, fmt.Errorf("output %s: compression level %d: want 0 to 9", name, opts.CompressionLevel)
		}
		if u.Path != "" && u.Path != "/" {
			return nil, fmt.Errorf("output %s: a beats URL has no path: want beats://HOST:PORT[,HOST:PORT...]", name)
		}
		return newBeats(name, hosts, opts), nil
	case "tcp":
		return newTCP(name, hosts, opts), nil
	case "redis":
		return newRedis(u, name, hosts, opts)
	case "kafka":
		return newKafka(u, name, hosts, opts)
	case "elasticsearch", "elasticsearchs":
		return newElasticsearch(u, name, hosts, u.Scheme == "elasticsearchs", opts)
	case "otlp", "otlps":
		return newOTLP(u, name, hosts, u.Scheme == "otlps", opts)
	case "file":
		path := u.Host + u.Path
		if u.Opaque != "" {
			path = u.Opaque
		}
		if path == "" {
			return nil, fmt.Errorf("output %q: no path: want file://PATH (file:///var/tmp/events.ndjson)", rawURL)
		}
		return newFileOutput(path, opts), nil
	case "":
		return nil, fmt.Errorf("output %q: want a URL such as beats://HOST:PORT, tcp://HOST:PORT, redis://HOST:PORT/KEY, kafka://BROKER:PORT/TOPIC, elasticsearch://HOST:PORT, otlp://HOST:PORT, stdout or file://PATH", rawURL)
	}
	return nil, fmt.Errorf("output %s: unknown scheme %q (beats, tcp, redis, kafka, elasticsearch, elasticsearchs, otlp, otlps, stdout, file)", name, u.Scheme)
}

// parseURL parses an output URL. The host part of the network outputs is
// a comma-separated list, which net/url does not take: it is cut out
// first, returned as it is, and u.Host holds it too (for messages).
func parseURL(rawURL string) (u *url.URL, hostList string, err error) {
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if ok {
		switch scheme {
		case "beats", "tcp", "redis", "kafka", "elasticsearch", "elasticsearchs", "otlp", "otlps":
			end := strings.IndexAny(rest, "/?#")
			if end < 0 {
				end = len(rest)
			}
			auth := rest[:end]
			userinfo := ""
			if at := strings.LastIndex(auth, "@"); at >= 0 {
				userinfo, auth = auth[:at+1], auth[at+1:]
			}
			hostList = auth
			rawURL = scheme + "://" + userinfo + "hosts" + rest[end:]
		}
	}
	u, err = url.Parse(rawURL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, "", fmt.Errorf("output %q: %w", rawURL, err)
	}
	if ok && hostList != "" || u.Host == "hosts" {
		u.Host = hostList
	}
	return u, hostList, nil
}

// splitHosts returns the HOST:PORT list of a URL's host part.
func splitHosts(u *url.URL, list string) ([]string, error) {
	want := u.Scheme + "://HOST:PORT[,HOST:PORT...]"
	switch u.Scheme {
	case "redis":
		want = "redis://HOST:PORT[,HOST:PORT...]/KEY"
	case "kafka":
		want = "kafka://BROKER:PORT[,BROKER:PORT...]/TOPIC"
	}
	if list == "" {
		return nil, fmt.Errorf("no host: want %s", want)
	}
	var hosts []string
	seen := map[string]bool{}
	for _, h := range strings.Split(list, ",") {
		host, port, err := net.SplitHostPort(h)
		if err != nil || host == "" || port == "" {
			return nil, fmt.Errorf("host %q: want HOST:PORT, as in %s", h, want)
		}
		if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
			return nil, fmt.Errorf("host %q: port %q is not a port number", h, port)
		}
		addr := net.JoinHostPort(host, port)
		if seen[addr] {
			return nil, fmt.Errorf("host %s given twice", addr)
		}
		seen[addr] = true
		hosts = append(hosts, addr)
	}
	return hosts, nil
}

// redact returns u without its password, for messages. A URL without a
// host ("beats://") is quoted, so that the message's own colon does not
// follow the URL's.
func redact(u *url.URL) string {
	c := *u
	if c.User != nil {
		c.User = url.User(u.User.Username())
	}
	s := c.String()
	if c.Host == "" && c.Opaque == "" && c.Path == "" {
		return strconv.Quote(c.Scheme + "://")
	}
	return s
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

// hostCounters are the atomics behind a HostStats.
type hostCounters struct {
	connected                     atomic.Int32
	connects, errors, sent, acked atomic.Uint64
	lastErr                       atomic.Pointer[error]
}

func (c *hostCounters) fail(err error, onError func(error)) {
	c.errors.Add(1)
	c.lastErr.Store(&err)
	if onError != nil {
		onError(err)
	}
}

func (c *hostCounters) stats(host string) HostStats {
	s := HostStats{Host: host, Connected: int(c.connected.Load()), Connects: c.connects.Load(), Errors: c.errors.Load(),
		Sent: c.sent.Load(), Acked: c.acked.Load()}
	if p := c.lastErr.Load(); p != nil {
		s.LastError = *p
	}
	return s
}

func trimSlash(s string) string { return strings.TrimPrefix(s, "/") }

var timeNow = time.Now
