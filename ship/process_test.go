package ship_test

// Fault tests with the writer, the shipper and the receiver as separate
// processes: this test binary runs itself in a role chosen by an
// environment variable (see TestMain), and the tests kill those processes
// with real signals.

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	lumberlog "github.com/elastic/go-lumber/log"
	lumber "github.com/elastic/go-lumber/server/v2"
	"golang.org/x/sys/unix"

	"github.com/mmaplog/mmaplog/internal/peers"
	"github.com/mmaplog/mmaplog/internal/testutil"
	"github.com/mmaplog/mmaplog/mmaplog"
	"github.com/mmaplog/mmaplog/output"
	"github.com/mmaplog/mmaplog/ship"
	"github.com/mmaplog/mmaplog/tail"
)

const roleEnv = "MMAPLOG_TEST_ROLE"

type quiet struct{}

func (quiet) Printf(string, ...interface{}) {}
func (quiet) Println(...interface{})        {}
func (quiet) Print(...interface{})          {}

func TestMain(m *testing.M) {
	lumberlog.Logger = quiet{}
	switch os.Getenv(roleEnv) {
	case "":
		testutil.VerifyTestMain(m)
	case "writer":
		os.Exit(roleWriter())
	case "shipper":
		os.Exit(roleShipper())
	case "receiver":
		os.Exit(roleReceiver())
	default:
		fmt.Fprintln(os.Stderr, "unknown role", os.Getenv(roleEnv))
		os.Exit(2)
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

// roleWriter appends N records of about 200 bytes of JSON to DIR with
// WORKERS goroutines, pausing a millisecond every PACE records (0: never).
// With GATE, a file path, it writes the records from GATE_AT on only once
// that file exists: a test that needs the stream unfinished until it did
// something gets that, whoever the scheduler runs.
func roleWriter() int {
	dir := os.Getenv("DIR")
	n, workers, pace := envInt("N", 10000), envInt("WORKERS", 1), envInt("PACE", 0)
	gate, gateAt := os.Getenv("GATE"), envInt("GATE_AT", 0)
	w, err := mmaplog.Open(dir, &mmaplog.Options{SegmentSize: int64(envInt("SEGMENT", 256<<10)), MaxBackups: -1})
	if err != nil {
		fmt.Fprintln(os.Stderr, "writer:", err)
		return 1
	}
	var wg sync.WaitGroup
	for g := 0; g < workers; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			buf := make([]byte, 0, 256)
			waited := gate == ""
			for i := g; i < n; i += workers {
				for !waited && i >= gateAt {
					if _, err := os.Stat(gate); err == nil {
						waited = true
					} else {
						time.Sleep(time.Millisecond)
					}
				}
				buf = append(buf[:0], `{"level":"info","service":"checkout","user":"u-1042","amount":42.5,"i":`...)
				buf = strconv.AppendInt(buf, int64(i), 10)
				buf = append(buf, `,"message":"order placed, padded so that the record is about two hundred bytes long ..."}`...)
				if _, err := w.Append(mmaplog.LevelInfo, buf); err != nil {
					fmt.Fprintln(os.Stderr, "writer:", err)
					os.Exit(1)
				}
				if pace > 0 && (i/workers)%pace == 0 { // every PACE records of this goroutine
					time.Sleep(time.Millisecond)
				}
			}
		}(g)
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "writer:", err)
		return 1
	}
	return 0
}

// roleShipper ships DIR to URL with the cursor CURSOR until SIGTERM; or,
// with LOGS (patterns separated by newlines), those logs with cursors named
// CURSOR_NAME.
func roleShipper() int {
	out, err := output.Open(os.Getenv("URL"), &output.Options{Window: ship.OutputWindow, BackoffMin: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond})
	if err != nil {
		fmt.Fprintln(os.Stderr, "shipper:", err)
		return 1
	}
	cfg := ship.Config{Dir: os.Getenv("DIR"), Output: out, CursorPath: os.Getenv("CURSOR"), BatchSize: envInt("BATCH", 500), Window: envInt("WINDOW", 2000),
		SaveInterval: time.Duration(envInt("SAVE_MS", 0)) * time.Millisecond,
		ScanInterval: time.Duration(envInt("SCAN_MS", 0)) * time.Millisecond,
		Reader:       tail.Options{HoleWait: time.Second}, Logf: func(f string, a ...any) { fmt.Fprintf(os.Stderr, "shipper: "+f+"\n", a...) }}
	if logs := os.Getenv("LOGS"); logs != "" {
		cfg.Logs, cfg.CursorName = strings.Split(logs, "\n"), os.Getenv("CURSOR_NAME")
	}
	s, err := ship.New(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "shipper:", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), unix.SIGTERM, unix.SIGINT)
	defer stop()
	if err := s.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "shipper:", err)
		return 1
	}
	return 0
}

// roleReceiver is go-lumber's server on ADDR. It appends the log.offset of
// every event of a batch to OUT, then acknowledges the batch, waiting DELAY
// milliseconds first (a slow receiver).
func roleReceiver() int {
	srv, err := lumber.ListenAndServe(os.Getenv("ADDR"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "receiver:", err)
		return 1
	}
	f, err := os.OpenFile(os.Getenv("OUT"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, "receiver:", err)
		return 1
	}
	delay := time.Duration(envInt("DELAY", 0)) * time.Millisecond
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, unix.SIGTERM)
	go func() { <-ch; srv.Close(); os.Exit(0) }()
	var buf []byte
	for b := range srv.ReceiveChan() {
		buf = buf[:0]
		for _, ev := range b.Events {
			m, _ := ev.(map[string]interface{})
			lg, _ := m["log"].(map[string]interface{})
			off, _ := lg["offset"].(float64)
			buf = strconv.AppendInt(buf, int64(off), 10)
			buf = append(buf, '\n')
		}
		if _, err := f.Write(buf); err != nil {
			fmt.Fprintln(os.Stderr, "receiver:", err)
			return 1
		}
		time.Sleep(delay)
		b.ACK()
	}
	return 0
}

// proc is a child process in a role.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func start(t *testing.T, role string, env ...string) *proc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), roleEnv+"="+role), env...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.kill() })
	return p
}

func (p *proc) kill() {
	p.cmd.Process.Kill()
	<-p.done
}

// term stops p with SIGTERM and returns its exit error.
func (p *proc) term(t *testing.T) error {
	p.cmd.Process.Signal(unix.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(hangLimit):
		t.Fatalf("%s did not stop on SIGTERM", p.cmd.Env[len(p.cmd.Env)-1])
	}
	return p.err
}

func (p *proc) wait(t *testing.T, d time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(d):
		t.Fatalf("process did not finish in %v", d)
	}
	return nil
}

// received reads the receiver's file: how often each offset arrived.
func received(t *testing.T, path string) map[uint64]int {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	seen := map[uint64]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n, err := strconv.ParseUint(sc.Text(), 10, 64)
		if err != nil {
			continue // a line torn by a SIGKILLed receiver
		}
		seen[n]++
	}
	return seen
}

// waitAll waits until every sequence number in [1, n] arrived.
func waitAll(t *testing.T, out string, n int, d time.Duration) map[uint64]int {
	t.Helper()
	deadline := time.Now().Add(d)
	var seen map[uint64]int
	for time.Now().Before(deadline) {
		seen = received(t, out)
		if missing(seen, n) == 0 {
			return seen
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%d of %d records not delivered after %v (first missing: %d)", missing(seen, n), n, d, firstMissing(seen, n))
	return nil
}

func missing(seen map[uint64]int, n int) int {
	m := 0
	for i := 1; i <= n; i++ {
		if seen[uint64(i)] == 0 {
			m++
		}
	}
	return m
}

func firstMissing(seen map[uint64]int, n int) int {
	for i := 1; i <= n; i++ {
		if seen[uint64(i)] == 0 {
			return i
		}
	}
	return 0
}

func duplicates(seen map[uint64]int) int {
	d := 0
	for _, c := range seen {
		d += c - 1
	}
	return d
}

type setup struct {
	dir, cursor, out, addr string
}

func newSetup(t *testing.T) setup {
	d := t.TempDir()
	return setup{dir: filepath.Join(d, "log"), cursor: filepath.Join(d, "log", tail.CursorDir, "ship"), out: filepath.Join(d, "received"), addr: peers.FreePort(t)}
}

func (s setup) writer(t *testing.T, n int, extra ...string) *proc {
	return start(t, "writer", append([]string{"DIR=" + s.dir, "N=" + strconv.Itoa(n)}, extra...)...)
}

// gatedWriter is writer, holding the records from at on until the returned
// function is called.
func (s setup) gatedWriter(t *testing.T, n, at int, extra ...string) (*proc, func()) {
	gate := filepath.Join(t.TempDir(), "gate")
	w := s.writer(t, n, append([]string{"GATE=" + gate, "GATE_AT=" + strconv.Itoa(at)}, extra...)...)
	return w, func() {
		if err := os.WriteFile(gate, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func (s setup) shipper(t *testing.T, extra ...string) *proc {
	return start(t, "shipper", append([]string{"DIR=" + s.dir, "URL=beats://" + s.addr, "CURSOR=" + s.cursor}, extra...)...)
}

func (s setup) receiver(t *testing.T, extra ...string) *proc {
	return start(t, "receiver", append([]string{"ADDR=" + s.addr, "OUT=" + s.out}, extra...)...)
}

// waitFor polls cond.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func checkCursor(t *testing.T, s setup, n int) {
	t.Helper()
	c, err := tail.LoadCursor(s.cursor)
	if err != nil {
		t.Fatal(err)
	}
	if c.NextSeq != uint64(n)+1 {
		t.Fatalf("cursor at %d after a clean stop, want %d", c.NextSeq, n+1)
	}
}

// TestProcReceiverDownAtStart: the receiver starts after the shipper.
func TestProcReceiverDownAtStart(t *testing.T) {
	s := newSetup(t)
	const n = 20000
	if err := s.writer(t, n).wait(t, hangLimit); err != nil {
		t.Fatal(err)
	}
	sh := s.shipper(t)
	time.Sleep(500 * time.Millisecond)
	if received(t, s.out) != nil {
		t.Fatal("something received before the receiver started")
	}
	s.receiver(t)
	waitAll(t, s.out, n, hangLimit)
	if err := sh.term(t); err != nil {
		t.Fatalf("shipper exit: %v", err)
	}
	checkCursor(t, s, n)
}

// TestProcReceiverKilled: the receiver is SIGKILLed mid-stream and
// restarted while the writer writes.
func TestProcReceiverKilled(t *testing.T) {
	s := newSetup(t)
	const n = 40000
	// The second half is written once the receiver was killed.
	w, openGate := s.gatedWriter(t, n, n/2, "PACE=20")
	sh := s.shipper(t)
	r := s.receiver(t)
	waitFor(t, "a first part delivered", hangLimit, func() bool { return len(received(t, s.out)) > 5000 })
	r.kill()
	if got := len(received(t, s.out)); got >= n {
		t.Fatalf("all %d delivered before the receiver was killed: the test wants it mid-stream", got)
	}
	openGate()
	time.Sleep(300 * time.Millisecond)
	s.receiver(t)
	if err := w.wait(t, hangLimit); err != nil {
		t.Fatal(err)
	}
	seen := waitAll(t, s.out, n, hangLimit)
	if err := sh.term(t); err != nil {
		t.Fatalf("shipper exit: %v", err)
	}
	checkCursor(t, s, n)
	t.Logf("%d duplicates after the receiver was killed", duplicates(seen))
}

// TestProcShipperKilled: the shipper is SIGKILLed mid-stream and restarted;
// it goes on from its cursor, sending at most one window (2000 events)
// again.
func TestProcShipperKilled(t *testing.T) {
	s := newSetup(t)
	const n = 40000
	// The second half is written once the shipper was killed.
	w, openGate := s.gatedWriter(t, n, n/2, "PACE=20")
	s.receiver(t)
	sh := s.shipper(t)
	waitFor(t, "a first part delivered", hangLimit, func() bool { return len(received(t, s.out)) > 8000 })
	sh.kill()
	before := received(t, s.out)
	if len(before) >= n {
		t.Fatalf("all %d delivered before the shipper was killed: the test wants it mid-stream", len(before))
	}
	openGate()
	sh = s.shipper(t)
	if err := w.wait(t, hangLimit); err != nil {
		t.Fatal(err)
	}
	seen := waitAll(t, s.out, n, hangLimit)
	if err := sh.term(t); err != nil {
		t.Fatalf("shipper exit: %v", err)
	}
	checkCursor(t, s, n)
	d := duplicates(seen)
	t.Logf("%d events delivered before the kill, %d duplicates after the restart", len(before), d)
	if d > 2000 {
		t.Fatalf("%d duplicates, more than one window (2000 events)", d)
	}
}

// TestProcWriterKilled: the writer (8 goroutines) is SIGKILLed while the
// shipper ships; every record it published is delivered, and a new writer
// goes on with the same log.
func TestProcWriterKilled(t *testing.T) {
	s := newSetup(t)
	// Receiver and shipper first, so that the writer is killed soon after
	// it started, with a backlog the shipper delivers quickly even when
	// the machine is busy (the shipper waits for the log to appear).
	s.receiver(t)
	waitFor(t, "the receiver listening", hangLimit, func() bool {
		c, err := net.Dial("tcp", s.addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	sh := s.shipper(t, "SCAN_MS=10")
	w := s.writer(t, 1000000, "PACE=5", "WORKERS=8")
	waitFor(t, "a first part delivered", hangLimit, func() bool { return len(received(t, s.out)) > 5000 })
	w.kill()
	// What the dead writer left readable, as a static reader sees it.
	r, err := tail.Open(s.dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	var want []uint64
	for r.Next() {
		want = append(want, r.Record().Seq)
	}
	r.Close()
	if len(want) == 0 {
		t.Fatal("nothing written")
	}
	last := want[len(want)-1]
	t.Logf("writer killed after %d records (%d readable, %d lost in holes)", last, len(want), int(last)-len(want))
	waitFor(t, "every published record delivered", hangLimit, func() bool {
		seen := received(t, s.out)
		for _, q := range want {
			if seen[q] == 0 {
				return false
			}
		}
		return true
	})
	// A new writer recovers the log and appends more; they arrive too.
	if err := s.writer(t, 5000).wait(t, hangLimit); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the new writer's records delivered", hangLimit, func() bool {
		seen := received(t, s.out)
		for q := last + 1; q <= last+5000; q++ {
			if seen[q] == 0 {
				return false
			}
		}
		return true
	})
	if err := sh.term(t); err != nil {
		t.Fatalf("shipper exit: %v", err)
	}
}

// TestProcSlowReceiver: a receiver that takes 200 ms per batch while a
// large backlog waits; the shipper reads no further ahead than its window,
// and its memory stays bounded.
func TestProcSlowReceiver(t *testing.T) {
	s := newSetup(t)
	const n = 50000
	if err := s.writer(t, n, "SEGMENT="+strconv.Itoa(4<<20)).wait(t, hangLimit); err != nil {
		t.Fatal(err)
	}
	slow := s.receiver(t, "DELAY=200")
	sh := s.shipper(t, "BATCH=1000")
	var maxRSS int
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		maxRSS = max(maxRSS, rssKiB(sh.cmd.Process.Pid))
		time.Sleep(50 * time.Millisecond)
	}
	got := len(received(t, s.out))
	if got >= n {
		t.Fatalf("the slow receiver got all %d events in 3 s; the test wants a backlog", got)
	}
	if err := sh.term(t); err != nil {
		t.Fatalf("shipper exit: %v", err)
	}
	got = len(received(t, s.out)) // what the shipper drained on SIGTERM included
	c, err := tail.LoadCursor(s.cursor)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("after 3 s: %d delivered, cursor at %d, shipper RSS at most %d KiB (a race-instrumented binary when run with -race)", got, c.NextSeq, maxRSS)
	// The log holds 50000 x ~330 bytes = 16 MB of events the shipper
	// could have read; what it holds is a window of 2000 events.
	if limit := 64 << 10; !raceEnabled && maxRSS > limit {
		t.Fatalf("shipper RSS %d KiB, over %d KiB", maxRSS, limit)
	}
	if int(c.NextSeq-1) < got-2000 || int(c.NextSeq-1) > got {
		t.Fatalf("cursor at %d with %d delivered: the cursor lags more than a window", c.NextSeq, got)
	}
	// The receiver speeds up (a fast one takes its place) and a new
	// shipper delivers the rest of the backlog from the cursor.
	slow.kill()
	s.receiver(t)
	sh = s.shipper(t)
	waitAll(t, s.out, n, hangLimit)
	if err := sh.term(t); err != nil {
		t.Fatalf("shipper exit: %v", err)
	}
	checkCursor(t, s, n)
}

func rssKiB(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			f := strings.Fields(l)
			if len(f) >= 2 {
				n, _ := strconv.Atoi(f[1])
				return n
			}
		}
	}
	return 0
}

// hangLimit bounds the waits of these tests: only a hang takes this long,
// however busy the machine is.
const hangLimit = 5 * time.Minute
