package main

// Tests of the reading commands (cat, verify, stat) that run the built
// binary: this test binary, started again as mmaptail itself or as a writer
// process, chosen by an environment variable checked in init (before the
// test framework starts).

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mmaplog/mmaplog/mmaplog"
	"github.com/mmaplog/mmaplog/ring"
	"github.com/mmaplog/mmaplog/rotate"
	"github.com/mmaplog/mmaplog/tail"
)

const (
	asMainEnv   = "MMAPTAIL_READ_TEST_MAIN"   // run as mmaptail
	asWriterEnv = "MMAPTAIL_READ_TEST_WRITER" // run as a writer process
)

func init() {
	switch {
	case os.Getenv(asMainEnv) == "1":
		os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	case os.Getenv(asWriterEnv) != "":
		os.Exit(testWriter())
	}
}

func envNum(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

// recordJSON is record n of the test writer: {"n":N,"pad":"..."}, so that
// whoever reads it can check it is record n, intact. The pad is n%97 bytes
// long, plus extra.
func recordJSON(buf []byte, n uint64, extra ...int) []byte {
	pad := int(n % 97)
	buf = append(buf[:0], `{"n":`...)
	buf = strconv.AppendUint(buf, n, 10)
	buf = append(buf, `,"pad":"`...)
	for i := 0; i < pad; i++ {
		buf = append(buf, byte('a'+(n+uint64(i))%26))
	}
	for _, e := range extra {
		for e > 0 {
			k := min(e, len(xs))
			buf = append(buf, xs[:k]...)
			e -= k
		}
	}
	return append(buf, `"}`...)
}

var xs = strings.Repeat("x", 4096)

// checkRecordJSON returns the n of a record written by recordJSON, and false
// if the record is not exactly what recordJSON makes.
func checkRecordJSON(p []byte) (uint64, bool) {
	var v struct {
		N   uint64 `json:"n"`
		Pad string `json:"pad"`
	}
	if json.Unmarshal(p, &v) != nil {
		return 0, false
	}
	return v.N, string(recordJSON(nil, v.N, len(v.Pad)-int(v.N%97))) == string(p)
}

// testWriter is the writer process: it appends to DIR with WORKERS
// goroutines (a single one writes record n as recordJSON(n), its sequence
// number; several write a fixed record) for at least MS milliseconds and N
// records (0: until killed), and until the file STOPFILE exists if set,
// RATE records per second at most (0: flat out), printing "ready" and then
// "ack SEQ" every ACK records it got back. With LIMITFILE it writes no more
// records than the number that file holds (it waits for the test to raise
// it).
func testWriter() int {
	o := &mmaplog.Options{SegmentSize: int64(envNum("SEGMENT", 16<<10)), MaxBackups: envNum("MAXBACKUPS", -1), Compress: os.Getenv("COMPRESS") == "1", NoPrefault: os.Getenv("NOPREFAULT") == "1"}
	w, err := mmaplog.Open(os.Getenv("DIR"), o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "writer:", err)
		return 1
	}
	workers, rate, ackEvery := envNum("WORKERS", 1), envNum("RATE", 0), envNum("ACK", 1000)
	until := time.Now().Add(time.Duration(envNum("MS", 0)) * time.Millisecond)
	n := uint64(envNum("N", 0))
	stopFile := os.Getenv("STOPFILE")
	told := func() bool {
		if stopFile == "" {
			return true
		}
		_, err := os.Stat(stopFile)
		return err == nil
	}
	extra := envNum("PAD", 0)
	limitFile := os.Getenv("LIMITFILE")
	var limit atomic.Uint64
	// allowed waits until record k is within the limit.
	allowed := func(k uint64) {
		for limitFile != "" && k > limit.Load() {
			if b, err := os.ReadFile(limitFile); err == nil {
				if v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err == nil && v > limit.Load() {
					limit.Store(v)
					continue
				}
			}
			time.Sleep(time.Millisecond)
		}
	}
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	fmt.Fprintln(out, "ready")
	out.Flush()
	start := time.Now()
	var wg sync.WaitGroup
	var written atomic.Uint64
	for g := 0; g < workers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 0, 256)
			fixed := []byte(`{"level":"info","message":"one of several goroutines","pad":"` + strings.Repeat("x", extra) + `"}`)
			for i := 1; ; i++ {
				k := written.Add(1)
				if n > 0 && k > n && !time.Now().Before(until) && told() {
					return
				}
				allowed(k)
				if rate > 0 {
					if d := time.Until(start.Add(time.Duration(k) * time.Second / time.Duration(rate))); d > 0 {
						time.Sleep(d)
					}
				}
				p := fixed
				if workers == 1 {
					p = recordJSON(buf, w.Stats().NextSeq, extra)
				}
				seq, err := w.Append(mmaplog.LevelInfo, p)
				if err != nil {
					fmt.Fprintln(os.Stderr, "writer:", err)
					os.Exit(1)
				}
				if i%ackEvery == 0 {
					mu.Lock()
					fmt.Fprintln(out, "ack", seq)
					out.Flush()
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	st := w.Stats()
	if err := w.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "writer:", err)
		return 1
	}
	fmt.Fprintln(out, "done", st.NextSeq-1)
	out.Flush()
	return 0
}

// proc is a child process with its output collected.
type proc struct {
	fast   atomic.Bool // stop throttling its output
	cmd    *exec.Cmd
	stdout *lockedBuffer
	stderr *lockedBuffer
	done   chan struct{}
	err    error
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// start runs this test binary with env and args. slow, if not zero,
// throttles how fast its standard output is read (512 bytes per slow) until
// it is told to stop: a reader that falls behind.
func start(t *testing.T, env []string, slow time.Duration, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), env...)
	p := &proc{cmd: cmd, stdout: &lockedBuffer{}, stderr: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stderr = p.stderr
	var pipe io.ReadCloser
	if slow > 0 {
		var err error
		if pipe, err = cmd.StdoutPipe(); err != nil {
			t.Fatal(err)
		}
	} else {
		cmd.Stdout = p.stdout
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		if pipe != nil {
			buf := make([]byte, 512)
			for {
				n, err := pipe.Read(buf)
				p.stdout.Write(buf[:n])
				if err != nil {
					break
				}
				if !p.fast.Load() {
					time.Sleep(slow)
				}
			}
		}
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// mmaptailProc starts mmaptail with args.
func mmaptailProc(t *testing.T, slow time.Duration, args ...string) *proc {
	return start(t, []string{asMainEnv + "=1"}, slow, args...)
}

// writerProc starts the writer process on dir with the given settings.
func writerProc(t *testing.T, dir string, env ...string) *proc {
	p := start(t, append([]string{asWriterEnv + "=1", "DIR=" + dir}, env...), 0)
	waitOutput(t, p, "ready\n")
	return p
}

// wait waits for p to exit (limit: a generous bound on a hang) and returns
// its exit code.
func (p *proc) wait(t *testing.T, limit time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(limit):
		p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("%v did not exit in %v; stderr: %s", p.cmd.Args, limit, p.stderr)
	}
	return p.cmd.ProcessState.ExitCode()
}

// stop sends SIGTERM and waits for the exit code.
func (p *proc) stop(t *testing.T) int {
	t.Helper()
	p.fast.Store(true)
	p.cmd.Process.Signal(unix.SIGTERM)
	return p.wait(t, 2*time.Minute)
}

// waitOutput waits until p printed want on its standard output or standard
// error.
func waitOutput(t *testing.T, p *proc, want string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(p.stdout.String(), want) && !strings.Contains(p.stderr.String(), want) {
		select {
		case <-p.done:
			t.Fatalf("%v exited before printing %q: %v; stderr: %s", p.cmd.Args, want, p.err, p.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v did not print %q; stderr: %s", p.cmd.Args, want, p.stderr)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// lastAck returns the highest sequence number the writer process
// acknowledged so far.
func lastAck(p *proc) uint64 {
	var n uint64
	for _, l := range strings.Split(p.stdout.String(), "\n") {
		if s, ok := strings.CutPrefix(l, "ack "); ok {
			if v, err := strconv.ParseUint(s, 10, 64); err == nil {
				n = max(n, v)
			}
		}
	}
	return n
}

// TestNotALog: cat, verify and stat on a directory that holds no segment
// file say so, in one line, and exit 1.
func TestNotALog(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not a log"), 0o600)
	for _, cmd := range []string{"cat", "verify", "stat"} {
		p := mmaptailProc(t, 0, cmd, dir)
		code := p.wait(t, time.Minute)
		want := dir + " is not an mmaplog log (no segment files)"
		if code != 1 || strings.TrimSpace(p.stderr.String()) != "mmaptail "+cmd+": "+want || p.stdout.String() != "" {
			t.Errorf("%s %s: exit %d, stdout %q, stderr %q; want exit 1 and %q", cmd, dir, code, p.stdout, p.stderr, want)
		}
	}
}

// TestCatFollowWaitsForTheDirectory: `cat -f` on a directory that does not
// exist yet says, in one line, that it waits for it, and follows the log
// once an application creates it.
func TestCatFollowWaitsForTheDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "later", "log")
	p := mmaptailProc(t, 0, "cat", "-f", dir)
	waitOutput(t, p, "waiting for it to appear")
	if lines := strings.Count(p.stderr.String(), "\n"); lines != 1 {
		t.Fatalf("stderr has %d lines, want one: %q", lines, p.stderr)
	}
	w, err := mmaplog.Open(dir, &mmaplog.Options{SegmentSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	var buf []byte
	for i := uint64(1); i <= 3000; i++ {
		if _, err := w.Append(0, recordJSON(buf, i)); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	waitOutput(t, p, string(recordJSON(nil, 3000))+"\n")
	if code := p.stop(t); code != 0 {
		t.Fatalf("cat -f: exit %d, stderr %s", code, p.stderr)
	}
	if got := checkConsecutive(t, "cat -f", p.stdout.String(), 1); got.n != 3000 || got.last != 3000 {
		t.Fatalf("cat -f printed %d records up to %d, want 1 to 3000", got.n, got.last)
	}
}

// consecutive is what checkConsecutive found in a reader's output.
type consecutive struct {
	first, last uint64
	n           int
	gaps        []gap // runs of records missing in the output
}

type gap struct{ from, to uint64 } // [from, to) missing

// checkConsecutive parses the records a reader printed (one recordJSON per
// line) and checks that each is intact and that they come in sequence order
// without a duplicate, starting at first (0: anywhere); missing runs are
// returned.
func checkConsecutive(t *testing.T, what, out string, first uint64) consecutive {
	t.Helper()
	var c consecutive
	for i, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if l == "" && i == 0 {
			break
		}
		n, ok := checkRecordJSON([]byte(l))
		if !ok {
			t.Fatalf("%s: line %d is not an intact record: %q", what, i+1, l)
		}
		switch {
		case c.n == 0:
			if first != 0 && n != first {
				t.Fatalf("%s: first record %d, want %d", what, n, first)
			}
			c.first = n
		case n <= c.last:
			t.Fatalf("%s: record %d after %d (read twice, or out of order)", what, n, c.last)
		case n != c.last+1:
			c.gaps = append(c.gaps, gap{c.last + 1, n})
		}
		c.last = n
		c.n++
	}
	return c
}

var lostRE = regexp.MustCompile(`(\d+) record\(s\) lost`)

// reportedLost adds up the records lost on the lines of out that contain
// marker ("damage:" for cat and ship, "CORRUPT:" or "note:" for verify).
func reportedLost(out string, markers ...string) (lost uint64, lines int) {
	for _, l := range strings.Split(out, "\n") {
		found := false
		for _, m := range markers {
			found = found || strings.Contains(l, m)
		}
		if !found {
			continue
		}
		lines++
		if m := lostRE.FindStringSubmatch(l); m != nil {
			n, _ := strconv.ParseUint(m[1], 10, 64)
			lost += n
		}
	}
	return lost, lines
}

// shipped parses the events `mmaptail ship --to file://PATH` wrote: their
// log.offset (the sequence number) in order, each checked against its
// record.
func shipped(t *testing.T, path string) []uint64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var seqs []uint64
	for i, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if l == "" {
			continue
		}
		var ev struct {
			N   uint64 `json:"n"`
			Log struct {
				Offset uint64 `json:"offset"`
			} `json:"log"`
		}
		if err := json.Unmarshal([]byte(l), &ev); err != nil || ev.N != ev.Log.Offset {
			t.Fatalf("%s: event %d is not record %d intact: %q (%v)", path, i+1, ev.Log.Offset, l, err)
		}
		seqs = append(seqs, ev.N)
	}
	return seqs
}

// readerRun is one reader process of the stress test.
type readerRun struct {
	kind   string // "follow", "ship" or "cat"
	from   uint64 // the sequence number it was asked to start at (0: begin)
	p      *proc
	out    string // ship: its output file
	cursor string // ship: its cursor
}

// TestStressReaders: a writer process with Compress, 16 KiB segments and
// MaxBackups -1 appends while reader processes (followers, `mmaptail cat
// -f`; shippers, `mmaptail ship --to file://`; static `mmaptail cat`) start
// and stop at random moments, until 24 of them have run (and at least 20,000
// records are written), however long that takes. Every reader
// reads every record of its range exactly once, intact, and none reports a
// loss: compression renaming and unlinking segments under them costs
// nothing. Then the same with retention keeping 3 rolled segments and some
// readers slowed down: the losses each reports are exactly the records
// missing from what it read, and all of them are records retention removed.
// Pass or fail depends on what the readers read, never on how fast.
func TestStressReaders(t *testing.T) {
	for _, tc := range []struct {
		name       string
		maxBackups int
	}{
		{"no retention", -1},
		{"retention", 3},
	} {
		t.Run(tc.name, func(t *testing.T) { stressReaders(t, tc.maxBackups) })
	}
}

func stressReaders(t *testing.T, maxBackups int) {
	const readers = 24
	dir := filepath.Join(t.TempDir(), "log")
	tmp := t.TempDir()
	retention := maxBackups >= 0
	// The writer writes until told to stop, once the readers have run: a
	// count of readers, whatever time starting them takes on this machine.
	stopFile := filepath.Join(tmp, "stop")
	w := writerProc(t, dir, "COMPRESS=1", "SEGMENT=16384", "MAXBACKUPS="+strconv.Itoa(maxBackups), "RATE=4000", "STOPFILE="+stopFile, "N=20000", "ACK=100")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 9))
	var runs []*readerRun
	var live []*readerRun
	// A reader is stopped only once it has read something: a signal that
	// comes before a process set up its handlers kills it, which says
	// nothing about reading.
	begun := func(r *readerRun) bool {
		select {
		case <-r.p.done:
			return true
		default:
		}
		if r.kind == "ship" {
			b, _ := os.ReadFile(r.out)
			return len(b) > 0
		}
		return r.p.stdout.String() != ""
	}
	stopOne := func(i int) {
		r := live[i]
		deadline := time.Now().Add(time.Minute)
		for !begun(r) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		r.p.fast.Store(true)
		if r.kind != "cat" {
			r.p.cmd.Process.Signal(unix.SIGTERM)
		}
		live = append(live[:i], live[i+1:]...)
	}
	for len(runs) < readers {
		select {
		case <-w.done:
			t.Fatalf("the writer exited while the readers ran: %s", w.stderr)
		default:
			// Start a reader, now and then stop one, keep 6 at most.
			ack := lastAck(w)
			r := &readerRun{kind: []string{"follow", "ship", "cat"}[len(runs)%3]}
			if ack > 1 && rng.IntN(3) > 0 && r.kind != "cat" {
				r.from = 1 + rng.Uint64N(ack)
			}
			from := "begin"
			if r.from > 0 {
				from = strconv.FormatUint(r.from, 10)
			}
			var slow time.Duration
			if retention && rng.IntN(2) == 0 {
				slow = 2 * time.Millisecond // falls behind retention
			}
			switch r.kind {
			case "follow":
				r.p = mmaptailProc(t, slow, "cat", "-f", "--from", from, dir)
			case "cat":
				r.p = mmaptailProc(t, slow, "cat", dir)
			case "ship":
				r.out = filepath.Join(tmp, fmt.Sprintf("events-%d.ndjson", len(runs)))
				r.cursor = filepath.Join(tmp, fmt.Sprintf("cursor-%d", len(runs)))
				r.p = mmaptailProc(t, 0, "ship", "--log", dir, "--to", "file://"+r.out, "--cursor", r.cursor, "--from", from)
			}
			runs = append(runs, r)
			live = append(live, r)
			time.Sleep(time.Duration(100+rng.IntN(400)) * time.Millisecond)
			for len(live) > 6 || len(live) > 0 && rng.IntN(3) == 0 {
				i := rng.IntN(len(live))
				if !begun(live[i]) && len(live) <= 6 {
					break
				}
				stopOne(i)
			}
		}
	}
	if err := os.WriteFile(stopFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if code := w.wait(t, time.Minute); code != 0 {
		t.Fatalf("writer: exit %d: %s", code, w.stderr)
	}
	for len(live) > 0 {
		stopOne(0)
	}
	l, err := rotate.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	v, err := rotate.OpenView(l.Segments[0])
	if err != nil {
		t.Fatal(err)
	}
	oldest := v.Header.FirstSeq
	v.Close()
	var total, lostTotal uint64
	for i, r := range runs {
		what := fmt.Sprintf("reader %d (%s from %d)", i, r.kind, r.from)
		code := r.p.wait(t, 2*time.Minute)
		lost, lines := reportedLost(r.p.stderr.String(), "damage:")
		out := r.p.stdout.String()
		if r.kind == "ship" {
			var b strings.Builder
			var buf []byte
			for _, s := range shipped(t, r.out) {
				b.Write(recordJSON(buf, s))
				b.WriteByte('\n')
			}
			out = b.String()
		}
		want := r.from
		if want == 0 && r.kind != "ship" && !retention {
			want = 1
		}
		if retention {
			want = 0 // the first records asked for may be gone
		}
		c := checkConsecutive(t, what, out, want)
		if retention && r.from > 0 && c.n > 0 && c.first > r.from {
			c.gaps = append(c.gaps, gap{r.from, c.first})
		}
		var missing uint64
		for _, g := range c.gaps {
			missing += g.to - g.from
			if g.to > oldest {
				t.Errorf("%s: records %d to %d missing, but the log still holds records from %d on: not removed by retention", what, g.from, g.to-1, oldest)
			}
		}
		if !retention && (lines > 0 || len(c.gaps) > 0 || code != 0) {
			t.Errorf("%s: exit %d, %d records in %d gaps missing, stderr: %s", what, code, missing, len(c.gaps), r.p.stderr)
		}
		if lost != missing {
			t.Errorf("%s: reported %d records lost, %d missing from what it read (%v); stderr: %s", what, lost, missing, c.gaps, r.p.stderr)
		}
		total += uint64(c.n)
		lostTotal += lost
	}
	t.Logf("%d readers read %d records (%d reported lost, retention keeping %d); writer: %s", len(runs), total, lostTotal, maxBackups, strings.TrimSpace(lastLine(w.stdout.String())))
	if total == 0 {
		t.Fatal("the readers read nothing")
	}
	// Afterwards verify finds the log clean.
	p := mmaptailProc(t, 0, "verify", dir)
	if code := p.wait(t, time.Minute); code != 0 || !strings.Contains(p.stdout.String(), "clean:") {
		t.Fatalf("verify after the run: exit %d\n%s%s", code, p.stdout, p.stderr)
	}
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	return s[strings.LastIndex(s, "\n")+1:]
}

// TestVerifyLiveCompressedLog: verify, run again and again while a writer
// appends with compression and retention on, finds nothing wrong: segments
// that are compressed or removed under it are followed or noted.
func TestVerifyLiveCompressedLog(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	w := writerProc(t, dir, "COMPRESS=1", "SEGMENT=16384", "MAXBACKUPS=20", "RATE=20000", "ACK=100")
	for i := 0; i < 10; i++ {
		for lastAck(w) < uint64(5000*(i+1)) {
			time.Sleep(10 * time.Millisecond)
		}
		p := mmaptailProc(t, 0, "verify", dir)
		if code := p.wait(t, time.Minute); code != 0 || strings.Contains(p.stdout.String(), "CORRUPT") || !strings.Contains(p.stdout.String(), "clean:") {
			t.Fatalf("verify %d of a live log: exit %d\n%s%s", i, code, p.stdout, p.stderr)
		}
	}
	w.cmd.Process.Signal(unix.SIGKILL)
	w.wait(t, time.Minute)
}

// killMidWrite kills the writer process p with SIGKILL at a moment when it
// is in the middle of a Write: it stops the process (SIGSTOP) at random
// moments until the newest segment shows a record being written (bytes
// after the last published record, or a reserved record not published
// while a later one is), and kills it there. It reports whether it found
// such a moment.
func killMidWrite(t *testing.T, p *proc, dir string, rng *rand.Rand) bool {
	t.Helper()
	defer func() {
		p.cmd.Process.Signal(unix.SIGKILL)
		p.wait(t, time.Minute)
	}()
	for try := 0; try < 2000; try++ {
		time.Sleep(time.Duration(rng.IntN(3000)) * time.Microsecond)
		p.cmd.Process.Signal(unix.SIGSTOP)
		waitStopped(t, p.cmd.Process.Pid)
		if midWrite(t, dir) {
			return true
		}
		p.cmd.Process.Signal(unix.SIGCONT)
	}
	return false
}

// waitStopped waits until every thread of process pid is stopped: kill
// returns before the signal reached them all.
func waitStopped(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
		stopped := len(tasks) > 0
		for _, task := range tasks {
			b, err := os.ReadFile(task)
			i := bytes.LastIndexByte(b, ')')
			if err != nil || i < 0 || i+2 >= len(b) || (b[i+2] != 'T' && b[i+2] != 't') {
				stopped = false
				break
			}
		}
		if stopped {
			return
		}
		time.Sleep(100 * time.Microsecond)
	}
	t.Fatalf("process %d did not stop", pid)
}

// midWrite reports whether the newest started segment of the log in dir
// holds a write in progress.
func midWrite(t *testing.T, dir string) bool {
	l, err := rotate.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(l.Segments) - 1; i >= 0; i-- {
		v, err := rotate.OpenView(l.Segments[i])
		if err != nil {
			continue
		}
		res := ring.Scan(v.Data, v.Header.FirstSeq, nil)
		v.Close()
		return res.TailFrom > 0 || len(res.Damage) > 0
	}
	return false
}

// TestVerifyAfterKilledWriter: after kill -9 of a writer with 1 and with 8
// goroutines in the middle of a Write, verify exits 0 and names the writes
// the writer left unfinished as such (no record lost); cat reads every
// acknowledged record and counts nothing lost either; after the next Open
// repaired them, verify and cat still count nothing lost.
func TestVerifyAfterKilledWriter(t *testing.T) {
	for _, workers := range []int{1, 8} {
		t.Run(fmt.Sprintf("%d goroutines", workers), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(workers)))
			for round := 0; round < 2; round++ {
				dir := filepath.Join(t.TempDir(), "log")
				// Large records: the writer spends much of its time
				// between reserving a record and publishing it.
				w := writerProc(t, dir, "WORKERS="+strconv.Itoa(workers), "SEGMENT="+strconv.Itoa(4<<20), "ACK=16", "PAD="+strconv.Itoa(24000/workers))
				for lastAck(w) < 64 {
					time.Sleep(time.Millisecond)
				}
				if !killMidWrite(t, w, dir, rng) {
					t.Fatal("never caught the writer in the middle of a Write in 2000 tries")
				}
				acked := lastAck(w)
				p := mmaptailProc(t, 0, "verify", dir)
				code := p.wait(t, time.Minute)
				out := p.stdout.String()
				if code != 0 || strings.Contains(out, "CORRUPT") || !strings.Contains(out, "unfinished write of a crashed writer") {
					t.Fatalf("round %d: verify after kill -9: exit %d, want 0 and the unfinished writes named\n%s%s", round, code, out, p.stderr)
				}
				c := mmaptailProc(t, 0, "cat", dir)
				if code := c.wait(t, time.Minute); code != 0 {
					t.Fatalf("round %d: cat after kill -9: exit %d: %s", round, code, c.stderr)
				}
				if lost, _ := reportedLost(c.stderr.String(), "damage:", "note:"); lost != 0 {
					t.Fatalf("round %d: cat counts %d records lost after kill -9: %s", round, lost, c.stderr)
				}
				if n := uint64(strings.Count(c.stdout.String(), "\n")); workers == 1 && n < acked {
					t.Fatalf("round %d: cat read %d records, the writer acknowledged up to %d", round, n, acked)
				}
				// Every acknowledged record is there.
				present := map[uint64]bool{}
				r, err := tail.Open(dir, nil)
				if err != nil {
					t.Fatal(err)
				}
				for r.Next() {
					present[r.Record().Seq] = true
				}
				r.Close()
				for _, l := range strings.Split(w.stdout.String(), "\n") {
					if s, ok := strings.CutPrefix(l, "ack "); ok {
						if q, _ := strconv.ParseUint(s, 10, 64); !present[q] {
							t.Fatalf("round %d: acknowledged record %d is not in the log", round, q)
						}
					}
				}
				// The next writer repairs the unfinished writes.
				wr, err := mmaplog.Open(dir, &mmaplog.Options{SegmentSize: 4 << 20})
				if err != nil {
					t.Fatal(err)
				}
				if len(wr.Recovery()) == 0 {
					t.Fatalf("round %d: Open repaired nothing after a kill in the middle of a Write", round)
				}
				wr.Close()
				p = mmaptailProc(t, 0, "verify", dir)
				if code := p.wait(t, time.Minute); code != 0 || strings.Contains(p.stdout.String(), "CORRUPT") {
					t.Fatalf("round %d: verify after recovery: exit %d\n%s", round, code, p.stdout)
				}
				// Its padding says the writes were unfinished: still no
				// record counted lost.
				c = mmaptailProc(t, 0, "cat", dir)
				if code := c.wait(t, time.Minute); code != 0 {
					t.Fatalf("round %d: cat after recovery: exit %d: %s", round, code, c.stderr)
				}
				if lost, _ := reportedLost(c.stderr.String(), "damage:", "note:"); lost != 0 || strings.Contains(c.stderr.String(), "damage:") {
					t.Fatalf("round %d: cat after recovery counts %d records lost: %s", round, lost, c.stderr)
				}
				os.RemoveAll(dir)
			}
		})
	}
}

// TestVerifyAndCatAgreeOnACorruptCompressedSegment: a compressed segment
// damaged in the middle: verify exits 1 naming the file and offset, cat
// exits 1, and both count the same records lost.
func TestVerifyAndCatAgreeOnACorruptCompressedSegment(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	w, err := mmaplog.Open(dir, &mmaplog.Options{SegmentSize: 64 << 10, MaxBackups: -1, Compress: true})
	if err != nil {
		t.Fatal(err)
	}
	var buf []byte
	for i := uint64(1); i <= 5000; i++ {
		w.Append(0, recordJSON(buf, i))
	}
	w.Close()
	// The third segment: the sequence numbers before and after it prove
	// how many records it held.
	l, _ := rotate.List(dir)
	z := l.Segments[2]
	if !z.Compressed {
		t.Fatalf("%s is not compressed", z.Path)
	}
	b, _ := os.ReadFile(z.Path)
	b[len(b)/2] ^= 0x5a
	os.WriteFile(z.Path, b, 0o600)
	p := mmaptailProc(t, 0, "verify", dir)
	if code := p.wait(t, time.Minute); code != 1 || !strings.Contains(p.stdout.String(), "CORRUPT: "+z.Path) {
		t.Fatalf("verify: exit %d\n%s", code, p.stdout)
	}
	vlost, _ := reportedLost(p.stdout.String(), "CORRUPT:", "note:")
	c := mmaptailProc(t, 0, "cat", dir)
	code := c.wait(t, time.Minute)
	clost, _ := reportedLost(c.stderr.String(), "damage:")
	got := checkConsecutive(t, "cat", c.stdout.String(), 0)
	missing := got.first - 1 + 5000 - got.last
	for _, g := range got.gaps {
		missing += g.to - g.from
	}
	if code != 1 || clost == 0 || clost != vlost || clost != missing {
		t.Fatalf("cat exit %d counts %d lost, verify %d, %d actually missing\nverify: %s\ncat: %s", code, clost, vlost, missing, p.stdout, c.stderr)
	}
}
