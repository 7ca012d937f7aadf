package output

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/sys/unix"
)

// CheckStep is the outcome of one step of Check.
type CheckStep struct {
	// Host is the host (HOST:PORT, or the file's path) the step is about;
	// "" for a step about the output as a whole (Kafka's cluster).
	Host string
	// Step is what was tried: "resolve", "connect", "TLS handshake",
	// "handshake" (the protocol's own), "open" (a file).
	Step string
	// Detail says what was found ("127.0.0.1", "TLS 1.3, certificate of
	// ls1 verified", "PONG"), or why the step has nothing to do.
	Detail string
	// Err is why the step failed; nil: it succeeded, or had nothing to do.
	Err error
}

// Check tests the connections of the output rawURL names, with options o,
// the way the output makes them, without sending an event: for each host,
// its name resolved, a TCP connection, the TLS handshake (with Options.TLS)
// and the protocol's own handshake where there is one: redis: AUTH and
// SELECT as the URL says, PING, and the type of the list's key (a key of
// another type would refuse every RPUSH); kafka: the cluster's metadata
// through a client made as the output makes it (TLS, SASL), and the
// topic's partitions; elasticsearch and otlp: the output's own probe
// (GET /, an empty export request). Beats (lumberjack v2) and tcp have no handshake: a
// receiver that accepts the connection is all that can be seen without
// sending events. For a file, that it can be appended to (or created).
// It calls report after each step, and returns an error saying how many
// failed, if any. A URL or options Open refuses are its error at once.
func Check(ctx context.Context, rawURL string, o *Options, report func(CheckStep)) error {
	out, err := Open(rawURL, o)
	if err != nil {
		return err
	}
	out.Close(ctx) // nothing published: it closes at once
	opts := o.resolve()
	failed := 0
	emit := func(st CheckStep) {
		if st.Err != nil {
			failed++
		}
		report(st)
	}
	if rawURL == "stdout" || rawURL == "stdout://" || rawURL == "-" {
		emit(CheckStep{Host: "stdout", Step: "open", Detail: "standard output: nothing to check"})
		return checkResult(out, failed)
	}
	u, hostList, err := parseURL(rawURL)
	if err != nil {
		return err
	}
	if u.Scheme == "file" {
		path := u.Host + u.Path
		if u.Opaque != "" {
			path = u.Opaque
		}
		detail, err := checkFile(path)
		emit(CheckStep{Host: path, Step: "open", Detail: detail, Err: err})
		return checkResult(out, failed)
	}
	var hosts []string
	switch u.Scheme {
	case "beats", "tcp", "redis", "kafka", "elasticsearch", "elasticsearchs", "otlp", "otlps":
		hosts, err = splitHosts(u, hostList)
	default:
		hosts, err = splitHosts(u, u.Host)
	}
	if err != nil {
		return fmt.Errorf("output %s: %w", out, err)
	}
	if (u.Scheme == "elasticsearchs" || u.Scheme == "otlps") && opts.TLS == nil {
		opts.TLS = &tls.Config{MinVersion: tls.VersionTLS12} // as the output connects
	}
	c := &checkRun{ctx: ctx, u: u, out: out, opts: &opts, probe: probeOf(out, rawURL), emit: emit}
	for _, h := range hosts {
		conn := checkConn(ctx, h, &opts, emit)
		if conn == nil {
			continue
		}
		c.handshake(h, conn)
		conn.Close()
	}
	if u.Scheme == "kafka" {
		detail, err := checkKafka(ctx, u, hosts, &opts)
		emit(CheckStep{Step: "handshake", Host: "", Detail: detail, Err: err})
	}
	return checkResult(out, failed)
}

// probeOf returns the HTTP outputs' own probe (GET / for Elasticsearch,
// an empty export request for OTLP), their handshake: made through the
// closed engine's connect, which needs none of its workers. Nil for the
// other outputs.
func probeOf(out Output, rawURL string) func(ctx context.Context, addr string) (session, error) {
	switch o := out.(type) {
	case *esOutput:
		return o.engine.connectTo
	case *engine:
		if strings.HasPrefix(rawURL, "otlp") {
			return o.connectTo
		}
	}
	return nil
}

// checkRun is what a Check of a network output checks each host with.
type checkRun struct {
	ctx   context.Context
	u     *url.URL
	out   Output
	opts  *Options
	probe func(ctx context.Context, addr string) (session, error)
	emit  func(CheckStep)
}

// handshake reports the handshake of the output's protocol with host h,
// on conn, where it has one.
func (c *checkRun) handshake(h string, conn net.Conn) {
	switch c.u.Scheme {
	case "beats":
		c.emit(CheckStep{Host: h, Step: "handshake", Detail: "none in lumberjack v2 (a receiver answers only windows of events): connected is all that can be seen"})
	case "tcp":
		c.emit(CheckStep{Host: h, Step: "handshake", Detail: "none: newline-delimited JSON has no replies"})
	case "redis":
		t, _ := redisTargetOf(c.u, c.out.String())
		detail, err := checkRedis(conn, t, c.opts)
		c.emit(CheckStep{Host: h, Step: "handshake", Detail: detail, Err: err})
	case "kafka":
		// The cluster is checked as a whole, by Check.
	case "elasticsearch", "elasticsearchs", "otlp", "otlps":
		s, err := c.probe(c.ctx, h)
		detail := "HTTP probe answered"
		if c.u.Scheme == "elasticsearch" || c.u.Scheme == "elasticsearchs" {
			detail = "GET / answered, credentials not refused"
		} else if err == nil {
			detail = "an empty export request accepted at the logs path"
		}
		if s != nil {
			s.close()
		}
		c.emit(CheckStep{Host: h, Step: "handshake", Detail: detail, Err: err})
	default:
		c.emit(CheckStep{Host: h, Step: "handshake", Detail: "not checked for " + c.u.Scheme + "://"})
	}
}

func checkResult(out Output, failed int) error {
	if failed > 0 {
		return fmt.Errorf("output %s: %d check(s) failed", out, failed)
	}
	return nil
}

// checkConn resolves, connects to and (with TLS) handshakes with addr,
// reporting each step; it returns the connection, or nil after a failed
// step.
func checkConn(ctx context.Context, addr string, o *Options, emit func(CheckStep)) net.Conn {
	host, _, _ := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); ip != nil {
		emit(CheckStep{Host: addr, Step: "resolve", Detail: "an address: " + ip.String()})
	} else {
		rctx, cancel := context.WithTimeout(ctx, o.DialTimeout)
		addrs, err := net.DefaultResolver.LookupHost(rctx, host)
		cancel()
		emit(CheckStep{Host: addr, Step: "resolve", Detail: strings.Join(addrs, " "), Err: err})
		if err != nil {
			return nil
		}
	}
	d := &net.Dialer{Timeout: o.DialTimeout}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		emit(CheckStep{Host: addr, Step: "connect", Err: err})
		return nil
	}
	emit(CheckStep{Host: addr, Step: "connect", Detail: "to " + c.RemoteAddr().String()})
	if o.TLS == nil {
		emit(CheckStep{Host: addr, Step: "TLS handshake", Detail: "none: TLS is not configured"})
		return c
	}
	cfg := o.TLS.Clone()
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}
	tc := tls.Client(c, cfg)
	hctx, cancel := context.WithTimeout(ctx, o.Timeout)
	err = tc.HandshakeContext(hctx)
	cancel()
	if err != nil {
		c.Close()
		emit(CheckStep{Host: addr, Step: "TLS handshake", Err: err})
		return nil
	}
	st := tc.ConnectionState()
	detail := tls.VersionName(st.Version)
	if len(st.PeerCertificates) > 0 {
		detail += fmt.Sprintf(", certificate of %q verified for %s", st.PeerCertificates[0].Subject.CommonName, cfg.ServerName)
	}
	emit(CheckStep{Host: addr, Step: "TLS handshake", Detail: detail})
	return tc
}

// checkRedis authenticates and selects as the output does, then PINGs
// and looks at the type of the list's key.
func checkRedis(c net.Conn, t redisTarget, o *Options) (string, error) {
	s := newRedisSession(c, t.key, o)
	if err := s.hello(t); err != nil {
		return "", err
	}
	pong, err := s.call("PING")
	if err != nil {
		return "", fmt.Errorf("PING: %w", err)
	}
	typ, err := s.call("TYPE", t.key)
	if err != nil {
		return "", fmt.Errorf("TYPE %s: %w", t.key, err)
	}
	var detail string
	switch typ {
	case "list":
		n, err := s.call("LLEN", t.key)
		if err != nil {
			return "", fmt.Errorf("LLEN %s: %w", t.key, err)
		}
		detail = fmt.Sprintf("list %s holds %s events", t.key, n)
	case "none":
		detail = fmt.Sprintf("list %s does not exist yet (the first RPUSH makes it)", t.key)
	default:
		return "", fmt.Errorf("key %s holds a %s, not a list: every RPUSH would be refused", t.key, typ)
	}
	what := "PING: " + pong
	if t.pass != "" {
		what = "AUTH OK, " + what
	}
	if t.db != 0 {
		what += fmt.Sprintf(", database %d", t.db)
	}
	return what + ", " + detail, nil
}

// checkKafka asks the cluster for its brokers and the topic's partitions,
// through a client made as the output makes it.
func checkKafka(ctx context.Context, u *url.URL, brokers []string, o *Options) (string, error) {
	topic := trimSlash(u.Path)
	ko := o.Kafka
	if ko.MaxMessageBytes <= 0 {
		ko.MaxMessageBytes = DefaultKafkaMaxMessageBytes
	}
	if ko.Linger <= 0 {
		ko.Linger = DefaultKafkaLinger
	}
	kopts, err := kafkaClientOptions(u, brokers, topic, o, &ko)
	if err != nil {
		return "", err
	}
	cl, err := kgo.NewClient(append(kopts, kgo.RequestRetries(0))...)
	if err != nil {
		return "", err
	}
	defer cl.Close()
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	rctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	resp, err := req.RequestWith(rctx, cl)
	if err != nil {
		return "", fmt.Errorf("cluster metadata: %w", err)
	}
	detail := fmt.Sprintf("cluster: %d broker(s)", len(resp.Brokers))
	for _, t := range resp.Topics {
		switch err := kerr.ErrorForCode(t.ErrorCode); {
		case err == nil:
			return detail + fmt.Sprintf("; topic %s: %d partition(s)", topic, len(t.Partitions)), nil
		case errors.Is(err, kerr.UnknownTopicOrPartition):
			return detail + fmt.Sprintf("; topic %s does not exist yet: the brokers must create it on the first produce (auto.create.topics.enable)", topic), nil
		default:
			return "", fmt.Errorf("%s; topic %s: %w", detail, topic, err)
		}
	}
	return "", fmt.Errorf("%s; the cluster said nothing of topic %s", detail, topic)
}

// checkFile says whether path can be appended to (or created), as the
// file output opens it: never through a symbolic link.
func checkFile(path string) (string, error) {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		dir := filepath.Dir(path)
		if err := unix.Access(dir, unix.W_OK); err != nil {
			return "", fmt.Errorf("%s does not exist, and %s cannot be written into: %w", path, dir, err)
		}
		return "does not exist yet: it is made (0600) at the first event", nil
	case err != nil:
		return "", err
	case fi.Mode()&os.ModeSymlink != 0:
		return "", fmt.Errorf("%s is a symbolic link: the file output never writes through one", path)
	case fi.IsDir():
		return "", fmt.Errorf("%s is a directory", path)
	}
	if err := unix.Access(path, unix.W_OK); err != nil {
		return "", fmt.Errorf("%s cannot be written: %w", path, err)
	}
	return fmt.Sprintf("appends to it (%d bytes now)", fi.Size()), nil
}
