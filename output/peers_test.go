package output_test

import (
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mmaplog/mmaplog/internal/peers"
	"github.com/mmaplog/mmaplog/output"
)

// TestTCPToSyslogNG ships newline-delimited JSON to syslog-ng's TCP source
// with a JSON parser, the same framing Logstash's tcp input reads with the
// json_lines codec: every event arrives, parsed.
func TestTCPToSyslogNG(t *testing.T) {
	s := peers.StartSyslogNG(t)
	out, err := output.Open("tcp://"+s.Addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	const n = 20000
	publish(t, out, n, 500) // events {"n":i,"message":"event i"}
	// The deadline catches a hang only.
	deadline := time.Now().Add(time.Minute)
	var lines []string
	for time.Now().Before(deadline) {
		if lines = s.Lines(); len(lines) >= n {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(lines) != n {
		t.Fatalf("syslog-ng wrote %d lines, want %d", len(lines), n)
	}
	for i, l := range lines {
		if want := " event " + strconv.Itoa(i); !strings.HasSuffix(l, want) {
			t.Fatalf("line %d: %q, want ...%q", i, l, want)
		}
	}
}

// TestTCPTLSToSyslogNG: the same over TLS, the output verifying syslog-ng's
// certificate against the CA file.
func TestTCPTLSToSyslogNG(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := makeCert(t, dir, "ca", nil, nil)
	makeCert(t, dir, "server", ca, caKey)
	s := peers.StartSyslogNGTLS(t, filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key"))
	cfg, err := output.TLSConfig(filepath.Join(dir, "ca.crt"), "", "", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	out, err := output.Open("tcp://"+s.Addr, &output.Options{TLS: cfg})
	if err != nil {
		t.Fatal(err)
	}
	const n = 5000
	publish(t, out, n, 250)
	// The deadline catches a hang only.
	deadline := time.Now().Add(time.Minute)
	var lines []string
	for time.Now().Before(deadline) {
		if lines = s.Lines(); len(lines) >= n {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(lines) != n || !strings.HasSuffix(lines[n-1], " event "+strconv.Itoa(n-1)) {
		t.Fatalf("syslog-ng wrote %d lines over TLS, want %d", len(lines), n)
	}
}

// TestRedis pushes batches onto a list of a real redis-server, with a
// password, and reads them back.
func TestRedis(t *testing.T) {
	r := peers.StartRedis(t, "s3cret")
	out, err := output.Open("redis://:s3cret@"+r.Addr+"/logs?db=2", &output.Options{Window: 8})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "s3cret") {
		t.Fatalf("the output's name shows the password: %s", out)
	}
	const n = 30000
	publish(t, out, n, 1000)
	auth := []string{"-a", "s3cret", "-n", "2"}
	if got := r.LLen(t, "logs", auth...); got != n {
		t.Fatalf("LLEN %d, want %d", got, n)
	}
	for _, i := range []int{0, 12345, n - 1} {
		l := r.Cli(t, append(auth, "LINDEX", "logs", strconv.Itoa(i))...)
		var ev struct{ N int }
		if len(l) != 1 || json.Unmarshal([]byte(l[0]), &ev) != nil || ev.N != i {
			t.Fatalf("LINDEX %d: %v", i, l)
		}
	}
}

// TestRedisWrongPassword: an AUTH failure is an error the output reports
// and retries; nothing is acknowledged.
func TestRedisWrongPassword(t *testing.T) {
	r := peers.StartRedis(t, "right")
	errs := make(chan error, 10)
	out, err := output.Open("redis://:wrong@"+r.Addr+"/logs", &output.Options{BackoffMin: 10 * time.Millisecond, OnError: func(err error) {
		select {
		case errs <- err:
		default:
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	acked := make(chan struct{})
	out.Publish(t.Context(), output.NewBatch([][]byte{[]byte(`{"n":1}`)}, func() { close(acked) }))
	select {
	case err := <-errs:
		if !strings.Contains(err.Error(), "AUTH") {
			t.Fatalf("error %v does not say AUTH failed", err)
		}
	case <-acked:
		t.Fatal("acknowledged with a wrong password")
	case <-time.After(time.Minute): // a hang only
		t.Fatal("no error")
	}
	ctx, cancel := contextWithTimeout(50 * time.Millisecond)
	defer cancel()
	out.Close(ctx)
}
