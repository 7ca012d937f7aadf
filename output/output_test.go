package output_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	lumberlog "github.com/elastic/go-lumber/log"
	lumber "github.com/elastic/go-lumber/server/v2"

	"github.com/mmaplog/mmaplog/internal/testutil"
	"github.com/mmaplog/mmaplog/output"
)

type quiet struct{}

func (quiet) Printf(string, ...interface{}) {}
func (quiet) Println(...interface{})        {}
func (quiet) Print(...interface{})          {}

func TestMain(m *testing.M) {
	lumberlog.Logger = quiet{}
	testutil.VerifyTestMain(m)
}

// receiver is go-lumber's own server, the protocol Logstash's beats input
// speaks, recording the "n" of every event it acknowledges.
type receiver struct {
	srv  *lumber.Server
	mu   sync.Mutex
	seen map[int]int
	done chan struct{}
	held chan struct{} // see startReceiverUntil
}

func startReceiver(t *testing.T, l net.Listener, opts ...lumber.Option) *receiver {
	t.Helper()
	return startReceiverUntil(t, l, 0, opts...)
}

// startReceiverUntil is startReceiver, but once it has acknowledged until
// events (if until > 0) it closes r.held and neither records nor
// acknowledges another batch: a receiver that goes away mid-stream at a
// count, whoever the scheduler runs first.
func startReceiverUntil(t *testing.T, l net.Listener, until int, opts ...lumber.Option) *receiver {
	t.Helper()
	srv, err := lumber.NewWithListener(l, opts...)
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{srv: srv, seen: map[int]int{}, done: make(chan struct{}), held: make(chan struct{})}
	go func() {
		defer close(r.done)
		acked := 0
		for b := range srv.ReceiveChan() {
			if until > 0 && acked >= until {
				continue
			}
			acked += len(b.Events)
			if until > 0 && acked >= until {
				close(r.held)
			}
			r.mu.Lock()
			for _, ev := range b.Events {
				m, ok := ev.(map[string]interface{})
				if !ok {
					t.Errorf("event %v is not an object", ev)
					continue
				}
				r.seen[int(m["n"].(float64))]++
			}
			r.mu.Unlock()
			b.ACK()
		}
	}()
	return r
}

func (r *receiver) stop() {
	r.srv.Close()
	<-r.done
}

func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen)
}

func listen(t *testing.T, addr string) net.Listener {
	t.Helper()
	var l net.Listener
	var err error
	for i := 0; i < 50; i++ {
		if l, err = net.Listen("tcp", addr); err == nil {
			return l
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal(err)
	return nil
}

// publish sends batches of events {"n":i} for i in [0, n), waits for every
// ack (3 minutes catch a hang: some tests take seconds on an idle machine)
// and checks they came in order.
func publish(t *testing.T, out output.Output, n, per int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var mu sync.Mutex
	next := 0
	for i := 0; i < n; i += per {
		var evs [][]byte
		for j := i; j < min(i+per, n); j++ {
			evs = append(evs, []byte(fmt.Sprintf(`{"n":%d,"message":"event %d"}`, j, j)))
		}
		first, count := i, len(evs)
		if err := out.Publish(ctx, output.NewBatch(evs, func() {
			mu.Lock()
			defer mu.Unlock()
			if first != next {
				t.Errorf("ack of the batch from %d, expected the one from %d", first, next)
			}
			next = first + count
		})); err != nil {
			t.Fatal(err)
		}
	}
	if err := out.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if next != n {
		t.Fatalf("acknowledged up to %d of %d", next, n)
	}
	st := out.Stats()
	if st.Events < uint64(n) || st.Pending != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func checkAll(t *testing.T, r *receiver, n int) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := 0; i < n; i++ {
		if r.seen[i] == 0 {
			t.Fatalf("event %d never received (%d distinct received)", i, len(r.seen))
		}
	}
}

func TestBeats(t *testing.T) {
	for _, level := range []int{0, 6} {
		t.Run(fmt.Sprint("zlib level ", level), func(t *testing.T) {
			l := listen(t, "127.0.0.1:0")
			r := startReceiver(t, l)
			defer r.stop()
			out, err := output.Open("beats://"+l.Addr().String(), &output.Options{CompressionLevel: level})
			if err != nil {
				t.Fatal(err)
			}
			publish(t, out, 5000, 250)
			checkAll(t, r, 5000)
		})
	}
}

// TestBeatsReceiverDownAtStart: nothing listens when the output starts; it
// retries until the receiver is up, then delivers everything.
func TestBeatsReceiverDownAtStart(t *testing.T) {
	l := listen(t, "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	out, err := output.Open("beats://"+addr, &output.Options{BackoffMin: 20 * time.Millisecond, BackoffMax: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// The receiver starts once the output has failed to connect.
	rc := make(chan *receiver, 1)
	go func() {
		for deadline := time.Now().Add(time.Minute); out.Stats().Errors == 0; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Error("no connection error in a minute")
				break
			}
		}
		rc <- startReceiver(t, listen(t, addr))
	}()
	publish(t, out, 1000, 100)
	r := <-rc
	defer r.stop()
	checkAll(t, r, 1000)
	if st := out.Stats(); st.Errors == 0 {
		t.Fatalf("no connection error counted: %+v", st)
	}
}

// TestBeatsReceiverRestart: the receiver goes away mid-stream (its
// connections closed, batches unacknowledged) and comes back on the same
// address: every event arrives, some maybe twice.
func TestBeatsReceiverRestart(t *testing.T) {
	l := listen(t, "127.0.0.1:0")
	addr := l.Addr().String()
	// The first receiver acknowledges 2000 events and no more: the rest
	// cannot be delivered before it goes away.
	r1 := startReceiverUntil(t, l, 2000)
	out, err := output.Open("beats://"+addr, &output.Options{BackoffMin: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	rc := make(chan *receiver, 1)
	go func() {
		<-r1.held
		r1.stop()
		time.Sleep(200 * time.Millisecond)
		rc <- startReceiver(t, listen(t, addr))
	}()
	publish(t, out, 20000, 200)
	r2 := <-rc
	defer r2.stop()
	all := &receiver{seen: map[int]int{}}
	for k, v := range r1.seen {
		all.seen[k] += v
	}
	r2.mu.Lock()
	for k, v := range r2.seen {
		all.seen[k] += v
	}
	r2.mu.Unlock()
	checkAll(t, all, 20000)
	if st := out.Stats(); st.Connects < 2 {
		t.Fatalf("no reconnection: %+v", st)
	}
}

// TestBeatsSlowReceiver: a receiver that does not acknowledge holds the
// producer after Window batches.
func TestBeatsSlowReceiver(t *testing.T) {
	l := listen(t, "127.0.0.1:0")
	srv, err := lumber.NewWithListener(l)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan int, 100)
	go func() {
		for b := range srv.ReceiveChan() {
			got <- len(b.Events) // never acknowledged
		}
	}()
	defer srv.Close()
	out, err := output.Open("beats://"+l.Addr().String(), &output.Options{Window: 3})
	if err != nil {
		t.Fatal(err)
	}
	// A batch within the window is taken at once (a minute only catches a
	// hang); past it, Publish waits for an acknowledgement that never
	// comes. That it does not take the batch is a bounded look of 500 ms,
	// which a correct output never ends by taking it.
	n := 0
	for ; n < 10; n++ {
		d := time.Minute
		if n >= 3 {
			d = 500 * time.Millisecond
		}
		ctx, cancel := context.WithTimeout(context.Background(), d)
		err := out.Publish(ctx, output.NewBatch([][]byte{[]byte(`{"n":1}`)}, nil))
		cancel()
		if err != nil {
			break
		}
	}
	if n != 3 {
		t.Fatalf("published %d batches to a receiver that acknowledges none, want 3 (the window)", n)
	}
	cctx, ccancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer ccancel()
	if err := out.Close(cctx); err == nil {
		t.Fatal("Close reported success with batches unacknowledged")
	}
}

// TestBeatsTLS: the receiver requires a client certificate signed by its
// CA; the output verifies the receiver's certificate with the CA file.
func TestBeatsTLS(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := makeCert(t, dir, "ca", nil, nil)
	makeCert(t, dir, "server", ca, caKey)
	makeCert(t, dir, "client", ca, caKey)
	srvCert, err := tls.LoadX509KeyPair(filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	l := listen(t, "127.0.0.1:0")
	tl := tls.NewListener(l, &tls.Config{Certificates: []tls.Certificate{srvCert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert})
	r := startReceiver(t, tl)
	defer r.stop()
	cfg, err := output.TLSConfig(filepath.Join(dir, "ca.crt"), filepath.Join(dir, "client.crt"), filepath.Join(dir, "client.key"), "localhost")
	if err != nil {
		t.Fatal(err)
	}
	out, err := output.Open("beats://"+l.Addr().String(), &output.Options{TLS: cfg, CompressionLevel: 3})
	if err != nil {
		t.Fatal(err)
	}
	publish(t, out, 2000, 100)
	checkAll(t, r, 2000)

	// Without the client certificate the receiver refuses the output.
	cfg, err = output.TLSConfig(filepath.Join(dir, "ca.crt"), "", "", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 10)
	out, err = output.Open("beats://"+l.Addr().String(), &output.Options{TLS: cfg, BackoffMin: 10 * time.Millisecond, OnError: func(err error) {
		select {
		case errs <- err:
		default:
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	out.Publish(context.Background(), output.NewBatch([][]byte{[]byte(`{"n":1}`)}, nil))
	select {
	case err := <-errs:
		t.Logf("refused as expected: %v", err)
	case <-time.After(time.Minute): // a hang only
		t.Fatal("no error without a client certificate")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	out.Close(ctx)
}

// makeCert writes NAME.crt and NAME.key, self-signed (a CA) when parent is
// nil.
func makeCert(t *testing.T, dir, name string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	signer, signerKey := tmpl, key
	if parent == nil {
		tmpl.IsCA = true
		tmpl.BasicConstraintsValid = true
	} else {
		signer, signerKey = parent, parentKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, name+".crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(filepath.Join(dir, name+".key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func TestFileAndStdout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.ndjson")
	out, err := output.Open("file://"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	publish(t, out, 1000, 64)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("file mode %v, want 0600", st.Mode().Perm())
	}
	dec := json.NewDecoder(f)
	for i := 0; i < 1000; i++ {
		var ev struct{ N int }
		if err := dec.Decode(&ev); err != nil || ev.N != i {
			t.Fatalf("line %d: %v %d", i, err, ev.N)
		}
	}
	if _, err := dec.Token(); err != io.EOF {
		t.Fatalf("more after the last event: %v", err)
	}

	pr, pw := io.Pipe()
	out, err = output.Open("stdout", &output.Options{Stdout: pw})
	if err != nil {
		t.Fatal(err)
	}
	lines := make(chan int, 1)
	go func() {
		dec := json.NewDecoder(pr)
		n := 0
		for {
			var ev struct{ N int }
			if dec.Decode(&ev) != nil {
				break
			}
			n++
		}
		lines <- n
	}()
	publish(t, out, 300, 7)
	pw.Close()
	if n := <-lines; n != 300 {
		t.Fatalf("stdout got %d lines", n)
	}
}

func TestOpenErrors(t *testing.T) {
	for _, u := range []string{"beats://nohostport", "redis://127.0.0.1:6379", "redis://127.0.0.1:6379/a/b", "ftp://x:1", "file://", "just-a-name", "redis://127.0.0.1:1/k?db=x",
		"beats://", "beats://h:1,h:1", "beats://h:1,", "beats://h:99999", "beats://h:1/path", "kafka://b:9092", "kafka://b:9092/a/b", "tcp://:5000"} {
		if _, err := output.Open(u, nil); err == nil {
			t.Errorf("%s: no error", u)
		} else if msg := err.Error(); strings.Contains(msg, "::") || strings.Contains(msg, ": :") {
			t.Errorf("%s: doubled punctuation in %q", u, msg)
		} else {
			t.Logf("%s: %v", u, err)
		}
	}
	for _, u := range []string{"beats://[::1]:5044,127.0.0.1:5044", "kafka://u:p@b1:9092,b2:9092/logs", "redis://:pw@a:1,b:2/k?db=2", "tcp://h:1,h:2"} {
		out, err := output.Open(u, nil)
		if err != nil {
			t.Errorf("%s: %v", u, err)
			continue
		}
		if strings.Contains(out.String(), "pw") || strings.Contains(out.String(), ":p@") {
			t.Errorf("%s: the name shows the password: %s", u, out)
		}
		if n := len(out.Stats().Hosts); n != 2 && !strings.HasPrefix(u, "kafka") {
			t.Errorf("%s: %d hosts", u, n)
		}
		ctx, cancel := contextWithTimeout(time.Second)
		out.Close(ctx)
		cancel()
	}
	if _, err := output.Open("beats://127.0.0.1:1", &output.Options{CompressionLevel: 10}); err == nil {
		t.Error("compression level 10 accepted")
	}
	if _, err := output.TLSConfig("", "cert-without-key", "", ""); err == nil {
		t.Error("client certificate without key accepted")
	}
}

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}
