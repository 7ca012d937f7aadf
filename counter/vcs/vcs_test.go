//go:build linux

package vcs_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/mmaplog/mmaplog/counter"
	"github.com/mmaplog/mmaplog/counter/vcs"
	"github.com/mmaplog/mmaplog/internal/shmtest"
	"github.com/mmaplog/mmaplog/internal/testutil"
	"github.com/mmaplog/mmaplog/region"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) {
	if os.Getenv("MMAPLOG_VCS_CHILD") == "collect" {
		collectChild()
		return
	}
	testutil.VerifyTestMain(m)
}

// collectChild: KEY INTERVAL GRACE. Prints "ready", then one JSON event per
// line until SIGTERM, then drains both maps.
func collectChild() {
	a := strings.Fields(os.Getenv("MMAPLOG_VCS_ARGS"))
	key, _ := strconv.ParseInt(a[0], 0, 64)
	interval, _ := time.ParseDuration(a[1])
	grace, _ := time.ParseDuration(a[2])
	seg, err := vcs.Attach(int(key), nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), unix.SIGTERM)
	defer stop()
	w := bufio.NewWriter(os.Stdout)
	fmt.Fprintln(w, "ready")
	w.Flush()
	coll := counter.NewCollector(vcs.NewSource(seg, grace), counter.EmitterFunc(func(batch [][]byte) error {
		for _, ev := range batch {
			w.Write(ev)
			w.WriteByte('\n')
		}
		return w.Flush()
	}), &counter.CollectorOptions{Host: "collector"})
	// One byte on fd 3 per collection, for the test to count.
	progress := os.NewFile(3, "progress")
	collections := 0
	err = coll.Run(ctx, interval, func(st counter.Stats, err error) {
		if err == nil {
			collections++
			progress.Write([]byte{'c'})
		}
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "collections %d\n", collections)
	seg.Detach()
}

// producer builds testdata/vcs_producer.c with gcc (CI installs it).
func producer(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "vcs_producer")
	out, err := exec.Command("gcc", "-O2", "-Wall", "-pthread", "-o", bin, "testdata/vcs_producer.c").CombinedOutput()
	if err != nil {
		t.Fatalf("building the C producer (is gcc installed? .ci/run installs it): %v\n%s", err, out)
	}
	return bin
}

// TestCProducersLossFree: three C producer processes of four threads add
// to a VCS segment that a C program created, while a collector process
// switches and empties it every 3 ms. After the collector's final drain the
// sum of all events equals the sum of all adds, per counter, exactly.
func TestCProducersLossFree(t *testing.T) {
	bin := producer(t)
	key := shmtest.Key(t)
	if out, err := exec.Command(bin, "create", strconv.Itoa(key)).CombinedOutput(); err != nil {
		t.Fatalf("create: %v %s", err, out)
	}
	coll := exec.Command(os.Args[0], "-test.run=^$")
	coll.Env = append(os.Environ(), "MMAPLOG_VCS_CHILD=collect", fmt.Sprintf("MMAPLOG_VCS_ARGS=%d 3ms 1ms", key))
	var stderr strings.Builder
	coll.Stderr = &stderr
	pr, _ := coll.StdoutPipe()
	progR, progW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer progR.Close()
	coll.ExtraFiles = []*os.File{progW}
	if err := coll.Start(); err != nil {
		t.Fatal(err)
	}
	progW.Close()
	defer coll.Process.Kill()
	br := bufio.NewReader(pr)
	if line, err := br.ReadString('\n'); line != "ready\n" {
		t.Fatalf("collector: %q %v %s", line, err, stderr.String())
	}
	events := &eventLines{counters: map[[2]int]bool{}}
	copied := make(chan struct{})
	go func() { events.read(br); close(copied) }()

	var prods []*exec.Cmd
	var outs []*strings.Builder
	for p := 1; p <= 3; p++ {
		// MILLIS 0: each producer adds until SIGTERM, so that how long
		// production overlaps collection is set by a count of collections,
		// not by how fast this machine happens to be.
		c := exec.Command(bin, "run", strconv.Itoa(key), "4", "0", strconv.Itoa(p))
		var o, e strings.Builder
		c.Stdout = &o
		ep, _ := c.StderrPipe()
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		defer c.Process.Kill()
		eb := bufio.NewReader(ep)
		if line, err := eb.ReadString('\n'); line != "running\n" {
			t.Fatalf("producer %d: %q %v", p, line, err)
		}
		stderrDone := make(chan struct{})
		go func() { io.Copy(&e, eb); close(stderrDone) }()
		defer func() { <-stderrDone; t.Logf("producer %d: %s", p, strings.TrimSpace(e.String())) }()
		prods, outs = append(prods, c), append(outs, &o)
	}
	// Every producer is adding: let the collector complete three more
	// collections (the first may have begun before production did, the
	// other two overlap it), and ship every counter the producers use and
	// more events than there are counters (a counter in two collections),
	// then stop production. What overlaps is counted, whatever share of
	// the machine each process gets; the deadline only catches a hang.
	var tick [1]byte
	deadline := time.Now().Add(time.Minute)
	for i := 1; ; i++ {
		if _, err := io.ReadFull(progR, tick[:]); err != nil {
			t.Fatalf("collector progress: %v\n%s", err, stderr.String())
		}
		distinct, n := events.progress()
		if i >= 3 && distinct == usedCounters && n > usedCounters {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %d collections in a minute, %d events shipped for %d of the %d counters", i, n, distinct, usedCounters)
		}
	}
	for _, c := range prods {
		c.Process.Signal(unix.SIGTERM)
	}
	for _, c := range prods {
		if err := c.Wait(); err != nil {
			t.Fatalf("producer: %v", err)
		}
	}
	coll.Process.Signal(unix.SIGTERM)
	<-copied
	if err := coll.Wait(); err != nil {
		t.Fatalf("collector: %v\n%s", err, stderr.String())
	}

	added := map[[2]int]uint64{}
	var adds uint64
	for _, o := range outs {
		for _, line := range strings.Split(strings.TrimSpace(o.String()), "\n") {
			var r, m int
			var v uint64
			if _, err := fmt.Sscan(line, &r, &m, &v); err != nil {
				t.Fatalf("producer output %q", line)
			}
			added[[2]int{r, m}] += v
			adds += v
		}
	}
	shipped := map[[2]int]uint64{}
	n := 0
	for _, line := range events.all() {
		var ev struct {
			Rule, Metric int
			Value        uint64
			Host         struct{ Name string }
			Region       string
			Timestamp    int64
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("event %q: %v", line, err)
		}
		if ev.Host.Name != "collector" || ev.Region != fmt.Sprintf("vcs:%#x", key) || ev.Timestamp == 0 || ev.Value == 0 {
			t.Fatalf("event %s", line)
		}
		shipped[[2]int{ev.Rule, ev.Metric}] += ev.Value
		n++
	}
	for k, v := range added {
		if shipped[k] != v {
			t.Errorf("(rule %d, metric %d): shipped %d, added %d", k[0], k[1], shipped[k], v)
		}
	}
	if len(shipped) != len(added) {
		t.Errorf("%d counters shipped, %d added", len(shipped), len(added))
	}
	var colls int
	fmt.Sscanf(stderr.String(), "collections %d", &colls)
	t.Logf("adds totalling %d over %d counters; %d events in %d collections", adds, len(added), n, colls)
	if colls < 3 || n <= len(added) || len(added) != usedCounters {
		t.Errorf("%d collections, %d events for %d counters: collection did not overlap production", colls, n, len(added))
	}
}

// usedCounters is how many counters the C producer adds to (USED_RULES x
// USED_METRICS in testdata/vcs_producer.c).
const usedCounters = 256 * 16

// eventLines holds the collector's output as it comes: its lines, and how
// many events and distinct counters they are so far.
type eventLines struct {
	mu       sync.Mutex
	lines    []string
	counters map[[2]int]bool
}

func (e *eventLines) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var ev struct{ Rule, Metric int }
		json.Unmarshal(sc.Bytes(), &ev) // a bad line is reported by the test
		e.mu.Lock()
		e.lines = append(e.lines, sc.Text())
		e.counters[[2]int{ev.Rule, ev.Metric}] = true
		e.mu.Unlock()
	}
}

func (e *eventLines) progress() (distinct, events int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.counters), len(e.lines)
}

func (e *eventLines) all() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.lines
}

// TestGoProducersInProcess: the same with goroutines and the race
// detector watching: producers add through Segment.Add while Collect runs.
func TestGoProducersInProcess(t *testing.T) {
	seg, err := vcs.Create("anon:", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer seg.Remove()
	src := vcs.NewSource(seg, 100*time.Microsecond)
	const gs, perG = 4, 20000
	var want [gs]map[[2]int]uint64
	var wg sync.WaitGroup
	for g := 0; g < gs; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			want[g] = map[[2]int]uint64{}
			for i := 0; i < perG; i++ {
				r, m := (i*7919+g*13)%vcs.Rules, (i+g)%vcs.Metrics
				seg.Add(r, m, uint32(1+i%3))
				want[g][[2]int{r, m}] += uint64(1 + i%3)
				if i%500 == 0 {
					time.Sleep(100 * time.Microsecond)
				}
			}
		}(g)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	got := map[[2]int]uint64{}
	take := func(final bool) {
		b, err := src.Collect(final)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range b.Deltas {
			got[[2]int{d.Rule, d.Metric}] += d.Value
		}
		src.Commit()
	}
	colls := 0
	for running := true; running; colls++ {
		select {
		case <-done:
			running = false
		default:
			take(false)
		}
	}
	take(true)
	for g := range want {
		for k, v := range want[g] {
			got[k] -= v
		}
	}
	for k, v := range got {
		if v != 0 {
			t.Fatalf("counter %v off by %d", k, int64(v))
		}
	}
	t.Logf("%d collections", colls)
}

// entry returns map m's entry (rule, metric) of seg, for tests that play a
// producer that loaded the index long ago.
func entry(seg *vcs.Segment, m, rule, metric int) *atomic.Uint32 {
	off := os.Getpagesize() + 8 + m*vcs.MapBytes + rule*vcs.RuleBytes + metric*vcs.EntrySize
	return (*atomic.Uint32)(unsafe.Pointer(&seg.Bytes()[off]))
}

// TestLateIncrementKept: a producer that loaded the index before a switch
// and adds after the grace period (and after the scan) loses nothing: its
// add is shipped when that map is collected next. (Zeroing the old map
// after reading it, as the original design does, would lose it.)
func TestLateIncrementKept(t *testing.T) {
	seg, err := vcs.Create("anon:", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer seg.Remove()
	src := vcs.NewSource(seg, time.Millisecond)
	seg.Add(5, 6, 10) // into map 0
	b, _ := src.Collect(false)
	src.Commit()
	if len(b.Deltas) != 1 || b.Deltas[0].Value != 10 || seg.Index() != 1 {
		t.Fatalf("first collection: %+v, index %d", b.Deltas, seg.Index())
	}
	entry(seg, 0, 5, 6).Add(3) // the late producer, still on map 0
	b, _ = src.Collect(false)  // switches to 0, empties map 1
	src.Commit()
	if len(b.Deltas) != 0 {
		t.Fatalf("second collection: %+v", b.Deltas)
	}
	seg.Add(5, 6, 1) // a producer on the current map 0
	b, _ = src.Collect(false)
	src.Commit()
	if len(b.Deltas) != 1 || b.Deltas[0].Value != 4 {
		t.Fatalf("third collection: %+v, want the late 3 plus 1", b.Deltas)
	}
	// Shipping fails: the counts stay pending and come again, grown.
	seg.Add(1, 1, 2)
	b, _ = src.Collect(false)
	seg.Add(1, 1, 5)
	b, _ = src.Collect(true)
	if len(b.Deltas) != 1 || b.Deltas[0].Value != 7 {
		t.Fatalf("uncommitted then final: %+v", b.Deltas)
	}
	ds, _ := src.Peek()
	if len(ds) != 1 || ds[0].Value != 7 {
		t.Fatalf("peek with pending: %+v", ds)
	}
}

// TestAttachBadSegments: missing, wrong size, wrong magics, bad index.
func TestAttachBadSegments(t *testing.T) {
	if _, err := vcs.Attach(shmtest.Key(t), nil); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing segment: %v", err)
	}
	small := shmtest.Key(t)
	r, err := region.CreateRaw(fmt.Sprintf("sysv:%d", small), 1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Remove()
	if _, err := vcs.Attach(small, nil); !errors.Is(err, region.ErrSize) {
		t.Fatalf("1 MiB segment: %v, want ErrSize", err)
	}
	key := shmtest.Key(t)
	seg, err := vcs.Create(fmt.Sprintf("sysv:%d", key), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer seg.Remove()
	pg := os.Getpagesize()
	w := func(off int) *atomic.Uint32 { return (*atomic.Uint32)(unsafe.Pointer(&seg.Bytes()[pg+off])) }
	magic2 := 8 + 2*vcs.MapBytes + 64*4
	for _, c := range []struct {
		name string
		off  int
		val  uint32
		want error
	}{
		{"magic1", 0, 0x12345678, region.ErrBadMagic},
		{"magic2", magic2, 0, region.ErrBadMagic},
		{"index", 4, 7, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			old := w(c.off).Swap(c.val)
			defer w(c.off).Store(old)
			_, err := vcs.Attach(key, nil)
			if err == nil || (c.want != nil && !errors.Is(err, c.want)) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			var re *region.Error
			if !errors.As(err, &re) || re.Offset != int64(pg+c.off) {
				t.Fatalf("error %v does not locate offset %d", err, pg+c.off)
			}
			t.Log(err)
		})
	}
	s2, err := vcs.Attach(key, nil)
	if err != nil {
		t.Fatalf("attach after restoring: %v", err)
	}
	s2.Detach()
}

// TestGuardPageWrite: the C producer writes one byte into the segment's
// leading or trailing guard page: it dies of SIGSEGV, and the words next to
// the guard page are intact.
func TestGuardPageWrite(t *testing.T) {
	bin := producer(t)
	key := shmtest.Key(t)
	seg, err := vcs.Create(fmt.Sprintf("sysv:%d", key), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer seg.Remove()
	seg.Add(0, 0, 11)
	seg.Add(vcs.Rules-1, vcs.Metrics-1, 22)
	before := append([]byte(nil), seg.Bytes()[os.Getpagesize():os.Getpagesize()+16]...)
	for _, side := range []string{"before", "after"} {
		err := exec.Command(bin, "guard", strconv.Itoa(key), side).Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("%s: the write into the guard page did not kill the producer: %v", side, err)
		}
		ws := unix.WaitStatus(reflect.ValueOf(ee.Sys()).Uint())
		if !ws.Signaled() || ws.Signal() != unix.SIGSEGV {
			t.Fatalf("%s: producer ended with %v, want SIGSEGV", side, ee)
		}
	}
	if err := seg.Check(); err != nil {
		t.Fatalf("after the faults: %v", err)
	}
	if string(before) != string(seg.Bytes()[os.Getpagesize():os.Getpagesize()+16]) {
		t.Fatal("the words after the leading guard page changed")
	}
	got := map[[2]int]uint32{}
	seg.Peek(0, func(r, m int, v uint32) { got[[2]int{r, m}] = v })
	if len(got) != 2 || got[[2]int{0, 0}] != 11 || got[[2]int{vcs.Rules - 1, vcs.Metrics - 1}] != 22 {
		t.Fatalf("map contents after the faults: %v", got)
	}
}

func TestParseURL(t *testing.T) {
	for in, want := range map[string]int{"vcs:": vcs.DefaultKey, "vcs:0x10": 16, "vcs:99": 99} {
		if got, err := vcs.ParseURL(in); err != nil || got != want {
			t.Errorf("ParseURL(%q) = %d, %v", in, got, err)
		}
	}
	for _, in := range []string{"vcs:0", "vcs:zz", "sysv:1"} {
		if _, err := vcs.ParseURL(in); err == nil {
			t.Errorf("ParseURL(%q) succeeded", in)
		}
	}
	if vcs.SegmentSize(4096) != 134230016 {
		t.Fatalf("segment size %d", vcs.SegmentSize(4096))
	}
}
