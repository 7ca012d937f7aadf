package output_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/mmaplog/mmaplog/internal/peers"
	"github.com/mmaplog/mmaplog/output"
)

// check runs output.Check and returns its steps, one line each
// ("HOST STEP: OK DETAIL" or "HOST STEP: ERROR ..."), and its error.
func check(t *testing.T, url string, o *output.Options) ([]string, error) {
	t.Helper()
	var steps []string
	err := output.Check(context.Background(), url, o, func(s output.CheckStep) {
		line := s.Host + " " + s.Step + ": OK " + s.Detail
		if s.Err != nil {
			line = s.Host + " " + s.Step + ": ERROR " + s.Err.Error()
		}
		steps = append(steps, line)
	})
	return steps, err
}

func wantSteps(t *testing.T, steps []string, want ...string) {
	t.Helper()
	if len(steps) != len(want) {
		t.Fatalf("steps:\n%s\nwant %d", strings.Join(steps, "\n"), len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(steps[i], w) {
			t.Fatalf("step %d: %q, want it to start with %q\nall steps:\n%s", i+1, steps[i], w, strings.Join(steps, "\n"))
		}
	}
}

// TestCheckBeats: a live go-lumber receiver and a dead port, each host on
// its own; with TLS, the handshake's certificate; a receiver refusing the
// client is a failed TLS step.
func TestCheckBeats(t *testing.T) {
	l := listen(t, "127.0.0.1:0")
	r := startReceiver(t, l)
	defer r.stop()
	live, dead := l.Addr().String(), peers.FreePort(t)
	steps, err := check(t, "beats://"+live+","+dead, nil)
	if err == nil || !strings.Contains(err.Error(), "1 check(s) failed") {
		t.Fatalf("error %v, want one check failed", err)
	}
	wantSteps(t, steps,
		live+" resolve: OK an address: 127.0.0.1",
		live+" connect: OK to "+live,
		live+" TLS handshake: OK none: TLS is not configured",
		live+" handshake: OK none in lumberjack v2",
		dead+" resolve: OK an address",
		dead+" connect: ERROR dial tcp "+dead+": connect: connection refused")
	if _, err := check(t, "beats://"+live, nil); err != nil {
		t.Fatal(err)
	}
	if len(r.seen) != 0 {
		t.Fatalf("the check sent events: %v", r.seen)
	}

	dir := t.TempDir()
	ca, caKey := makeCert(t, dir, "ca", nil, nil)
	makeCert(t, dir, "server", ca, caKey)
	srvCert, err := tls.LoadX509KeyPair(filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key"))
	if err != nil {
		t.Fatal(err)
	}
	tl := listen(t, "127.0.0.1:0")
	rt := startReceiver(t, tls.NewListener(tl, &tls.Config{Certificates: []tls.Certificate{srvCert}}))
	defer rt.stop()
	cfg, err := output.TLSConfig(filepath.Join(dir, "ca.crt"), "", "", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	steps, err = check(t, "beats://"+tl.Addr().String(), &output.Options{TLS: cfg})
	if err != nil {
		t.Fatal(err, steps)
	}
	wantSteps(t, steps, "", "", tl.Addr().String()+` TLS handshake: OK TLS 1.3, certificate of "server" verified for localhost`, "")
	// Trusting another CA: the handshake fails.
	other, _ := makeCert(t, t.TempDir(), "other", nil, nil)
	pool := x509.NewCertPool()
	pool.AddCert(other)
	steps, err = check(t, "beats://"+tl.Addr().String(), &output.Options{TLS: &tls.Config{RootCAs: pool, ServerName: "localhost"}})
	if err == nil {
		t.Fatal("a certificate of an untrusted CA passed")
	}
	wantSteps(t, steps, "", "", tl.Addr().String()+" TLS handshake: ERROR tls: failed to verify certificate")
}

// TestCheckRedis: a real redis-server: AUTH and PING, the list's type; a
// wrong password, and a key of another type, are failed handshakes.
func TestCheckRedis(t *testing.T) {
	r := peers.StartRedis(t, "s3cret")
	steps, err := check(t, "redis://:s3cret@"+r.Addr+"/events", nil)
	if err != nil {
		t.Fatal(err, steps)
	}
	wantSteps(t, steps, "", "", "", r.Addr+" handshake: OK AUTH OK, PING: PONG, list events does not exist yet")
	r.Cli(t, "-a", "s3cret", "RPUSH", "events", "a", "b")
	r.Cli(t, "-a", "s3cret", "SET", "notalist", "x")
	steps, _ = check(t, "redis://:s3cret@"+r.Addr+"/events", nil)
	wantSteps(t, steps, "", "", "", r.Addr+" handshake: OK AUTH OK, PING: PONG, list events holds 2 events")
	steps, err = check(t, "redis://:wrong@"+r.Addr+"/events", nil)
	if err == nil {
		t.Fatal("a wrong password passed")
	}
	wantSteps(t, steps, "", "", "", r.Addr+" handshake: ERROR AUTH: redis: WRONGPASS")
	steps, err = check(t, "redis://:s3cret@"+r.Addr+"/notalist", nil)
	if err == nil {
		t.Fatal("a key of another type passed")
	}
	wantSteps(t, steps, "", "", "", r.Addr+" handshake: ERROR key notalist holds a string, not a list")
}

// TestCheckKafka: kfake's brokers each connected to, then the cluster's
// metadata: the topic and its partitions, or that it does not exist.
func TestCheckKafka(t *testing.T) {
	c := startKafka(t)
	steps, err := check(t, kafkaURL(c, ""), nil)
	if err != nil {
		t.Fatal(err, steps)
	}
	if len(steps) != 3*3+1 || steps[9] != " handshake: OK cluster: 3 broker(s); topic logs: 3 partition(s)" {
		t.Fatalf("steps:\n%s", strings.Join(steps, "\n"))
	}
	steps, err = check(t, strings.TrimSuffix(kafkaURL(c, ""), "/logs")+"/other", nil)
	if err != nil || !strings.Contains(steps[len(steps)-1], "topic other does not exist yet") {
		t.Fatalf("%v:\n%s", err, strings.Join(steps, "\n"))
	}
	sc := startKafka(t, kfake.EnableSASL(), kfake.Superuser("PLAIN", "ship", "s3cret"))
	if _, err := check(t, kafkaURL(sc, "ship:s3cret@"), nil); err != nil {
		t.Fatal(err)
	}
	steps, err = check(t, kafkaURL(sc, "ship:wrong@"), nil)
	if err == nil {
		t.Fatalf("a wrong SASL password passed:\n%s", strings.Join(steps, "\n"))
	}
}

// TestCheckFile: a file that can be appended to, or made; a symbolic link
// or a directory that cannot be written into fails.
func TestCheckFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "events.ndjson")
	steps, err := check(t, "file://"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantSteps(t, steps, path+" open: OK does not exist yet")
	os.WriteFile(path, []byte("{}\n"), 0o600)
	steps, _ = check(t, "file://"+path, nil)
	wantSteps(t, steps, path+" open: OK appends to it (3 bytes now)")
	link := filepath.Join(dir, "link")
	os.Symlink(path, link)
	if steps, err = check(t, "file://"+link, nil); err == nil {
		t.Fatal("a symbolic link passed")
	}
	wantSteps(t, steps, link+" open: ERROR "+link+" is a symbolic link")
	steps, err = check(t, "file://"+filepath.Join(dir, "no", "such", "dir", "x"), nil)
	if err == nil {
		t.Fatalf("a file in a missing directory passed: %v", steps)
	}
	if _, err := check(t, "nope://x", nil); err == nil || !strings.Contains(err.Error(), "unknown scheme") {
		t.Fatalf("an unknown scheme: %v", err)
	}
}

// TestCheckHTTPOutputs: the HTTP outputs' handshake is their own probe,
// against the real peers: VictoriaLogs answers GET / (and refuses a wrong
// password), the Collector's receiver takes an empty export request (and
// a wrong path is a failed handshake); a dead port fails to connect.
func TestCheckHTTPOutputs(t *testing.T) {
	v := peers.StartVictoriaLogs(t, peers.VictoriaLogsOptions{User: "shipper", Password: "s3cret"})
	defer v.Stop()
	steps, err := check(t, "elasticsearch://shipper:s3cret@"+v.Addr, nil)
	if err != nil {
		t.Fatal(err, steps)
	}
	wantSteps(t, steps, "", "", v.Addr+" TLS handshake: OK none", v.Addr+" handshake: OK GET / answered")
	steps, err = check(t, "elasticsearch://shipper:wrong@"+v.Addr, nil)
	if err == nil {
		t.Fatal("a wrong password passed the check")
	}
	wantSteps(t, steps, "", "", "", v.Addr+" handshake: ERROR GET /: HTTP 401")

	r := peers.StartOTLPReceiver(t)
	dead := peers.FreePort(t)
	steps, err = check(t, "otlp://"+r.Addr+","+dead, nil)
	if err == nil || !strings.Contains(err.Error(), "1 check(s) failed") {
		t.Fatalf("error %v, want one check failed\n%s", err, strings.Join(steps, "\n"))
	}
	wantSteps(t, steps, "", "", "", r.Addr+" handshake: OK an empty export request accepted",
		dead+" resolve: OK", dead+" connect: ERROR")
	steps, err = check(t, "otlp://"+r.Addr+"/v1/nothing", nil)
	if err == nil {
		t.Fatal("a wrong path passed the check")
	}
	wantSteps(t, steps, "", "", "", r.Addr+" handshake: ERROR POST /v1/nothing: HTTP 404")
	if recs, err := r.Records(); err != nil || len(recs) != 0 {
		t.Fatalf("the check sent records: %v %v", recs, err)
	}
}
