package ship_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	lumber "github.com/elastic/go-lumber/server/v2"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/mmaplog/mmaplog/internal/peers"
	"github.com/mmaplog/mmaplog/mmaplog"
	"github.com/mmaplog/mmaplog/output"
	"github.com/mmaplog/mmaplog/ship"
	"github.com/mmaplog/mmaplog/tail"
)

// running is a shipper running in this process.
type running struct {
	s    *ship.Shipper
	done chan error
	stop context.CancelFunc
	logs *logLines
}

// logLines collects what a shipper's Logf says.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *logLines) has(sub string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.lines {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func runShipper(t *testing.T, cfg ship.Config) *running {
	t.Helper()
	r := &running{done: make(chan error, 1), logs: &logLines{}}
	cfg.Logf = r.logs.logf
	s, err := ship.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.s = s
	ctx, cancel := context.WithCancel(context.Background())
	r.stop = cancel
	go func() { r.done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

// finish stops the shipper and returns Run's error.
func (r *running) finish(t *testing.T) error {
	t.Helper()
	r.stop()
	select {
	case err := <-r.done:
		r.done <- err
		return err
	case <-time.After(hangLimit):
		t.Fatal("the shipper did not stop")
	}
	return nil
}

func openOutput(t *testing.T, url string) output.Output {
	t.Helper()
	out, err := output.Open(url, &output.Options{Window: ship.OutputWindow, BackoffMin: 10 * time.Millisecond, BackoffMax: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// shipped reads an NDJSON output file: for each log.file.path, how often
// each log.offset arrived.
func shipped(t *testing.T, path string) map[string]map[uint64]int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	out := map[string]map[uint64]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var ev struct {
			Log struct {
				Offset uint64
				File   struct{ Path string }
			}
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("%s: %q: %v", path, sc.Text(), err)
		}
		m := out[ev.Log.File.Path]
		if m == nil {
			m = map[uint64]int{}
			out[ev.Log.File.Path] = m
		}
		m[ev.Log.Offset]++
	}
	return out
}

func countAll(m map[string]map[uint64]int) int {
	n := 0
	for _, l := range m {
		n += len(l)
	}
	return n
}

// TestProcManyLogs: 50 log directories, each written by a process of its
// own; 30 exist when the shipper starts (with the pattern DIR/*), 20 are
// created afterwards. Every record of every log is delivered exactly once
// (the shipper stops cleanly), with its own log.file.path.
func TestProcManyLogs(t *testing.T) {
	root := t.TempDir()
	const logs, per = 50, 300
	dirs := make([]string, logs)
	for i := range dirs {
		dirs[i] = filepath.Join(root, "apps", fmt.Sprintf("app-%02d", i))
	}
	// At most 8 writer processes at a time: 50 race-instrumented test
	// binaries at once would take gigabytes.
	writeAll := func(dirs []string) {
		sem := make(chan struct{}, 8)
		var wg sync.WaitGroup
		for _, d := range dirs {
			wg.Add(1)
			sem <- struct{}{}
			go func(d string) {
				defer wg.Done()
				defer func() { <-sem }()
				if err := start(t, "writer", "DIR="+d, "N="+strconv.Itoa(per), "SEGMENT="+strconv.Itoa(64<<10), "PACE=50").wait(t, hangLimit); err != nil {
					t.Errorf("writer of %s: %v", d, err)
				}
			}(d)
		}
		wg.Wait()
	}
	writeAll(dirs[:30])
	out := filepath.Join(root, "events.ndjson")
	r := runShipper(t, ship.Config{Logs: []string{filepath.Join(root, "apps", "*")}, Output: openOutput(t, "file://"+out), CursorName: "test", BatchSize: 100})
	waitFor(t, "the first 30 logs shipped", hangLimit, func() bool { return countAll(shipped(t, out)) == 30*per })
	writeAll(dirs[30:])
	waitFor(t, "all 50 logs shipped", hangLimit, func() bool { return countAll(shipped(t, out)) == logs*per })
	if err := r.finish(t); err != nil {
		t.Fatal(err)
	}
	got := shipped(t, out)
	if len(got) != logs {
		t.Fatalf("events of %d logs, want %d", len(got), logs)
	}
	for _, d := range dirs {
		m := got[d]
		for q := uint64(1); q <= per; q++ {
			if m[q] != 1 {
				t.Fatalf("%s: record %d delivered %d times", d, q, m[q])
			}
		}
		c, err := tail.LoadCursor(tail.CursorPath(d, "test"))
		if err != nil || c.NextSeq != per+1 {
			t.Fatalf("%s: cursor %+v, %v", d, c, err)
		}
	}
	if st := r.s.Stats(); st.Logs != logs || st.Acked != logs*per {
		t.Fatalf("stats %+v", st)
	}
	if !r.logs.has("picked up") {
		t.Errorf("no log was reported as picked up: %q", r.logs.lines)
	}
}

// TestProcManyLogsRSS: one shipper process follows 100 logs, each with a
// backlog, to the end and after: its whole resident set stays under 64 MiB,
// checked without -race, whose instrumentation takes memory of its own.
// That counts its own memory (heap, stacks, runtime), its binary, and the
// log segments' pages it has mapped (RssFile): the kernel maps page-cache
// folios of up to a few MiB whole on a fault, so only a few logs at a time
// may hold any (the reading tokens and holders of doneReading).
func TestProcManyLogsRSS(t *testing.T) {
	root := t.TempDir()
	const logs = 100
	per := 8000 // 100 x ~2 MB
	if raceEnabled {
		per = 1000 // the memory is not checked under -race: only that 100 logs ship
	}
	payload := []byte(`{"level":"info","service":"checkout","user":"u-1042","amount":42.5,"message":"order placed, padded so that the record is about two hundred bytes long ......"}`)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i := 0; i < logs; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			w, err := mmaplog.Open(filepath.Join(root, fmt.Sprintf("app-%03d", i)), &mmaplog.Options{SegmentSize: 4 << 20, MaxBackups: -1})
			if err != nil {
				t.Error(err)
				return
			}
			for j := 0; j < per; j++ {
				if _, err := w.Append(mmaplog.LevelInfo, payload); err != nil {
					t.Error(err)
					break
				}
			}
			w.Close()
		}(i)
	}
	wg.Wait()
	out := filepath.Join(root, "events.ndjson")
	sh := start(t, "shipper", "LOGS="+filepath.Join(root, "app-*"), "URL=file://"+out, "CURSOR_NAME=rss", "BATCH=2048", "WINDOW=8192")
	var peak memUse
	sample := func() {
		m := memOf(sh.cmd.Process.Pid)
		peak.rss, peak.anon, peak.file = max(peak.rss, m.rss), max(peak.anon, m.anon), max(peak.file, m.file)
	}
	waitFor(t, "every log shipped", hangLimit, func() bool {
		sample()
		done := 0
		for i := 0; i < logs; i++ {
			if c, err := tail.LoadCursor(tail.CursorPath(filepath.Join(root, fmt.Sprintf("app-%03d", i)), "rss")); err == nil && c.NextSeq == uint64(per)+1 {
				done++
			}
		}
		return done == logs
	})
	for i := 0; i < 20; i++ { // caught up, idle
		sample()
		time.Sleep(20 * time.Millisecond)
	}
	if err := sh.term(t); err != nil {
		t.Fatalf("shipper exit: %v", err)
	}
	t.Logf("100 logs, %d records each: shipper resident set at most %d KiB, of which anonymous %d KiB and file pages (segments, binary) %d KiB (a race-instrumented binary when run with -race)",
		per, peak.rss, peak.anon, peak.file)
	if limit := 64 << 10; !raceEnabled && peak.rss > limit {
		t.Fatalf("shipper's resident set %d KiB (anonymous %d KiB, file pages %d KiB), over %d KiB", peak.rss, peak.anon, peak.file, limit)
	}
}

type memUse struct{ rss, anon, file int }

// memOf reads a process's resident set from /proc (KiB).
func memOf(pid int) memUse {
	var m memUse
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return m
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		n, _ := strconv.Atoi(f[1])
		switch f[0] {
		case "VmRSS:":
			m.rss = n
		case "RssAnon:":
			m.anon = n
		case "RssFile:":
			m.file = n
		}
	}
	return m
}

// TestProcKafkaShipperKilled: a shipper to a 3-broker kfake cluster is
// SIGKILLed in the middle of the stream and restarted: every record
// arrives, in log order within its partition for each shipper (duplicates
// aside), with at most one window (2000 events) sent twice.
//
// For each shipper, not across the two: when the first is killed with
// batches in flight to several brokers, a later batch may have reached its
// partition and an earlier one, bound for another broker, not. The second
// shipper sends that earlier batch's records again from the cursor, and
// its partitioner may put them in the partition that holds the later one.
// Each shipper is a producer of its own (the producer ID of its records).
func TestProcKafkaShipperKilled(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(3, "logs"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s := newSetup(t)
	url := "URL=kafka://" + strings.Join(c.ListenAddrs(), ",") + "/logs"
	const n = 40000
	// The second half is written once the shipper was killed.
	w, openGate := s.gatedWriter(t, n, n/2, "PACE=20")
	sh := start(t, "shipper", "DIR="+s.dir, url, "CURSOR="+s.cursor)
	type stream struct {
		partition int32
		producer  int64
	}
	var mu sync.Mutex
	seen := map[uint64]int{}
	last := map[stream]uint64{}
	var reordered atomic.Int64
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics("logs"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	consumed := make(chan struct{})
	go func() {
		defer close(consumed)
		for ctx.Err() == nil {
			cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
				var ev struct{ Log struct{ Offset uint64 } }
				if err := json.Unmarshal(r.Value, &ev); err != nil {
					t.Errorf("record %q: %v", r.Value, err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				q := ev.Log.Offset
				st := stream{r.Partition, r.ProducerID}
				if seen[q] == 0 && q < last[st] {
					reordered.Add(1) // a first delivery behind a later record of its shipper
				}
				seen[q]++
				last[st] = max(last[st], q)
			})
		}
	}()
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(seen) }
	waitFor(t, "a first part delivered", hangLimit, func() bool { return count() > 8000 })
	sh.kill()
	before := count()
	if before >= n {
		t.Fatalf("all %d delivered before the shipper was killed: the test wants it mid-stream", before)
	}
	openGate()
	sh = start(t, "shipper", "DIR="+s.dir, url, "CURSOR="+s.cursor)
	if err := w.wait(t, hangLimit); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every record delivered", hangLimit, func() bool { return count() == n })
	if err := sh.term(t); err != nil {
		t.Fatalf("shipper exit: %v", err)
	}
	checkCursor(t, s, n)
	cancel()
	<-consumed
	mu.Lock()
	defer mu.Unlock()
	d := duplicates(seen)
	t.Logf("%d events delivered before the kill, %d duplicates after the restart", before, d)
	if d > 2000 {
		t.Fatalf("%d duplicates, more than one window (2000 events)", d)
	}
	if reordered.Load() != 0 {
		t.Fatalf("%d records arrived, for the first time, behind later ones their shipper sent to their partition", reordered.Load())
	}
	ids := map[int64]bool{}
	for st := range last {
		ids[st.producer] = true
	}
	if len(ids) < 2 {
		t.Fatalf("records of %d producer(s) (IDs %v), want one at least per shipper", len(ids), ids)
	}
}

func writeRecords(t *testing.T, dir string, n int) {
	t.Helper()
	w, err := mmaplog.Open(dir, &mmaplog.Options{SegmentSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for i := 0; i < n; i++ {
		if _, err := fmt.Fprintf(w, `{"i":%d,"message":"record %d"}`, i, i); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCursorLocked: a second shipper of the same log to the same place
// stops at once with an error naming the first one's pid; the first one
// goes on.
func TestCursorLocked(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	writeRecords(t, dir, 100)
	out := filepath.Join(t.TempDir(), "a.ndjson")
	first := runShipper(t, ship.Config{Dir: dir, Output: openOutput(t, "file://"+out), CursorName: "same"})
	waitFor(t, "the first shipper", hangLimit, func() bool { return countAll(shipped(t, out)) == 100 })
	second := runShipper(t, ship.Config{Dir: dir, Output: openOutput(t, "file://"+out+".2"), CursorName: "same"})
	var err error
	select {
	case err = <-second.done:
	case <-time.After(hangLimit):
		t.Fatal("the second shipper did not stop")
	}
	second.done <- err
	if !errors.Is(err, ship.ErrCursorLocked) || !strings.Contains(err.Error(), fmt.Sprintf("process %d", os.Getpid())) {
		t.Fatalf("second shipper: %v", err)
	}
	if _, err := os.Stat(out + ".2"); err == nil {
		if n := countAll(shipped(t, out+".2")); n != 0 {
			t.Fatalf("the second shipper shipped %d events", n)
		}
	}
	writeRecords(t, dir, 50)
	waitFor(t, "the first shipper going on", hangLimit, func() bool { return countAll(shipped(t, out)) == 150 })
	if err := first.finish(t); err != nil {
		t.Fatal(err)
	}
	// Once the first one stopped, the cursor is free.
	third := runShipper(t, ship.Config{Dir: dir, Output: openOutput(t, "file://"+out), CursorName: "same"})
	writeRecords(t, dir, 10)
	waitFor(t, "a new shipper on the freed cursor", hangLimit, func() bool { return countAll(shipped(t, out)) == 160 })
	if err := third.finish(t); err != nil {
		t.Fatal(err)
	}
	if n := len(shipped(t, out)[dir]); n != 160 {
		t.Fatalf("%d distinct records", n)
	}
}

// TestCursorBeyondEnd: a cursor past the newest record of its log is
// reported, and shown in the log's stats; nothing is shipped until the log
// has grown past it, and shipping goes on from there.
func TestCursorBeyondEnd(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	writeRecords(t, dir, 100)
	id, ok := tail.LogID(dir)
	if !ok {
		t.Fatal("no log id")
	}
	cpath := tail.CursorPath(dir, "ahead")
	if err := (tail.Cursor{LogID: id, NextSeq: 200}).Save(cpath); err != nil {
		t.Fatal(err)
	}
	e, err := tail.End(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st := ship.Locate(200, e); st.Position != ship.BeyondEnd || st.Newest != 100 || !strings.Contains(st.String(), "resumes at 200") {
		t.Fatalf("Locate: %+v %s", st, st)
	}
	out := filepath.Join(t.TempDir(), "events.ndjson")
	r := runShipper(t, ship.Config{Dir: dir, Output: openOutput(t, "file://"+out), CursorName: "ahead"})
	waitFor(t, "the warning", hangLimit, func() bool { return r.logs.has("asks for record 200 but the newest record is 100") })
	if ls := r.s.LogStats(); len(ls) != 1 || !ls[0].BeyondEnd {
		t.Fatalf("log stats %+v", ls)
	}
	writeRecords(t, dir, 150) // records 101 to 250
	waitFor(t, "records from 200 on", hangLimit, func() bool { return countAll(shipped(t, out)) == 51 })
	if err := r.finish(t); err != nil {
		t.Fatal(err)
	}
	got := shipped(t, out)[dir]
	for q := uint64(200); q <= 250; q++ {
		if got[q] != 1 {
			t.Fatalf("record %d shipped %d times", q, got[q])
		}
	}
	if ls := r.s.LogStats(); ls[0].BeyondEnd {
		t.Fatal("still beyond the end after the log grew past the cursor")
	}
	if !r.logs.has("grown past") {
		t.Errorf("no message when shipping resumed: %q", r.logs.lines)
	}
}

// TestLogAppearsLater: a --log path that does not exist yet is waited for
// (said once), and shipped from its first record once a writer creates it,
// beside a log that exists.
func TestLogAppearsLater(t *testing.T) {
	root := t.TempDir()
	a, b := filepath.Join(root, "a"), filepath.Join(root, "b")
	writeRecords(t, a, 10)
	out := filepath.Join(root, "events.ndjson")
	r := runShipper(t, ship.Config{Logs: []string{a, b}, Output: openOutput(t, "file://"+out), CursorName: "c", ScanInterval: 20 * time.Millisecond})
	waitFor(t, "the waiting message", hangLimit, func() bool { return r.logs.has(b + " does not exist yet: waiting for it to appear") })
	writeRecords(t, b, 20)
	waitFor(t, "both logs shipped", hangLimit, func() bool { m := shipped(t, out); return len(m[a]) == 10 && len(m[b]) == 20 })
	if err := r.finish(t); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range r.logs.lines {
		if strings.Contains(l, "waiting for it to appear") {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("the waiting message came %d times: %q", n, r.logs.lines)
	}
}

// TestQuietLogNotHeldUp: while one log ships a large backlog flat out, a
// record written to a quiet log is shipped next, not after the backlog:
// between the publishing of its batch and its acknowledgement the busy log
// gets no more than its own window acknowledged. (How long the record took
// from its writing is measured in the bench harness, which reports it; a
// test bounds counts, not time: the reader's wake-up and the scheduler's
// share of a busy machine are not the shipper's to bound.)
func TestQuietLogNotHeldUp(t *testing.T) {
	root := t.TempDir()
	busy, quiet := filepath.Join(root, "busy"), filepath.Join(root, "quiet")
	w, err := mmaplog.Open(busy, &mmaplog.Options{MaxBackups: -1})
	if err != nil {
		t.Fatal(err)
	}
	payload := []byte(`{"level":"info","message":"busy log record, padded to about two hundred bytes ........................................................................"}`)
	const backlog = 300000
	for i := 0; i < backlog; i++ {
		if _, err := w.Append(mmaplog.LevelInfo, payload); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	qw, err := mmaplog.Open(quiet, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer qw.Close()
	rcv := startLumber(t)
	co := &countingOutput{Output: openOutput(t, "beats://"+rcv.addr), mark: []byte(quiet)}
	runShipper(t, ship.Config{Logs: []string{busy, quiet}, Output: co, Host: "test"})
	waitFor(t, "the busy log shipping", hangLimit, func() bool { return co.other.Load() > 20000 })
	const rounds = 5
	var worst uint64
	for i := 0; i < rounds; i++ {
		b0 := co.other.Load()
		if b0 >= backlog-20000 {
			t.Fatalf("the backlog (%d) is nearly shipped after %d rounds: the test needs it busy", backlog, i)
		}
		if _, err := qw.Append(mmaplog.LevelInfo, []byte(`{"message":"quiet"}`)); err != nil {
			t.Fatal(err)
		}
		var m [2]uint64
		select {
		case m = <-co.marked:
		case <-time.After(hangLimit):
			t.Fatal("the quiet record was not shipped")
		}
		worst = max(worst, m[1]-m[0])
		t.Logf("round %d: busy events acknowledged from the quiet record's writing to its publishing %d, from there to its acknowledgement %d", i, m[0]-b0, m[1]-m[0])
	}
	if limit := uint64(ship.DefaultWindow + 2*ship.DefaultBatchSize); worst > limit {
		t.Fatalf("up to %d busy events were acknowledged between a quiet record's publishing and its acknowledgement (limit %d, the backlog %d)", worst, limit, backlog)
	}
}

// countingOutput counts the events acknowledged to each source: for a
// batch whose first event contains mark, the count of the others'
// acknowledged when it was published and when it was acknowledged is sent
// on marked.
type countingOutput struct {
	output.Output
	mark   []byte
	other  atomic.Uint64
	marked chan [2]uint64
	once   sync.Once
}

func (c *countingOutput) NewSource() output.Publisher {
	c.once.Do(func() { c.marked = make(chan [2]uint64, 100) })
	return &countingSource{c: c, inner: c.Output.NewSource()}
}

type countingSource struct {
	c     *countingOutput
	inner output.Publisher
}

func (s *countingSource) Publish(ctx context.Context, b output.Batch) error {
	events := b.Events()
	marked := len(events) > 0 && strings.Contains(string(events[0]), string(s.c.mark))
	n := uint64(len(events))
	at := s.c.other.Load()
	return s.inner.Publish(ctx, &countedBatch{Batch: b, ack: func() {
		if marked {
			s.c.marked <- [2]uint64{at, s.c.other.Load()}
		} else {
			s.c.other.Add(n)
		}
		b.Ack()
	}})
}

// countedBatch is a batch whose acknowledgement is counted first.
type countedBatch struct {
	output.Batch
	ack func()
}

func (b *countedBatch) Ack() { b.ack() }

// lumberServer is go-lumber's server in this process, acknowledging every
// batch.
type lumberServer struct {
	addr string
}

func startLumber(t *testing.T) *lumberServer {
	t.Helper()
	addr := freeAddr(t)
	srv, err := lumberListen(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	go func() {
		for b := range srv.ReceiveChan() {
			b.ACK()
		}
	}()
	return &lumberServer{addr: addr}
}

func freeAddr(t *testing.T) string { return peers.FreePort(t) }

func lumberListen(addr string) (*lumber.Server, error) {
	return lumber.ListenAndServe(addr, lumber.JSONDecoder(func(data []byte, v interface{}) error {
		*(v.(*interface{})) = nil // the events are not looked at
		return nil
	}))
}
