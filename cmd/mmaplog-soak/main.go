// Command mmaplog-soak kills the parts of an mmaplog pipeline at random, over
// and over, and checks after each kill that nothing promised was broken.
//
// The pipeline: a writer process (this program, "writer" role) appends to a
// log with two goroutines and notes every record whose Write returned (an
// acknowledged record); a follower (`mmaptail cat -f`); a shipper (`mmaptail
// ship --to beats://`) with a cursor; a receiver (this program, "receiver"
// role: go-lumber's Beats server) that stores every event before it
// acknowledges it. Each round SIGKILLs one of the four at a random moment,
// starts it again, and checks:
//
//   - every record the writer acknowledged reaches the receiver (the round
//     waits for it), and the follower reads every acknowledged record of the
//     range it reads;
//   - nothing corrupt is delivered: every event and every line the follower
//     prints is checked against its record's content;
//   - duplicates, which at-least-once delivery brings after a kill of the
//     shipper or the receiver, stay within one window of the shipper.
//
// It prints a table at the end. See docs/SOAK.md. It is not part of the test
// suite: 1,000 rounds take a quarter of an hour or more.
//
//	go build -o /tmp/mmaptail ./cmd/mmaptail
//	go run ./cmd/mmaplog-soak -mmaptail /tmp/mmaptail -rounds 1000
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lumberlog "github.com/elastic/go-lumber/log"
	lumber "github.com/elastic/go-lumber/server/v2"
	"golang.org/x/sys/unix"

	"github.com/mmaplog/mmaplog/mmaplog"
	"github.com/mmaplog/mmaplog/tail"
)

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "writer":
			os.Exit(roleWriter(os.Args[2:]))
		case "receiver":
			os.Exit(roleReceiver(os.Args[2:]))
		}
	}
	rounds := flag.Int("rounds", 1000, "rounds, each killing one process")
	bin := flag.String("mmaptail", "mmaptail", "the mmaptail binary")
	dir := flag.String("dir", "", "work directory (default: a new temporary one, removed afterwards if all went well)")
	rate := flag.Int("rate", 4000, "records per second the writer appends")
	window := flag.Int("window", 1000, "the shipper's --window")
	seed := flag.Uint64("seed", uint64(time.Now().UnixNano()), "random seed")
	flag.Parse()
	s, err := newSoak(*dir, *bin, *rate, *window, *seed)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mmaplog-soak:", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, unix.SIGTERM)
	defer stop()
	err = s.run(ctx, *rounds)
	if err == nil {
		err = s.drain()
	}
	s.stopAll()
	if err == nil {
		err = s.finalCheck()
	}
	s.printTable(os.Stdout)
	if err != nil {
		fmt.Fprintf(os.Stderr, "mmaplog-soak: FAILED: %v (work directory %s kept)\n", err, s.work)
		os.Exit(1)
	}
	if *dir == "" {
		os.RemoveAll(s.work)
	}
}

// The records: {"r":RUN,"g":GOROUTINE,"i":INDEX,"x":"PAD"}, the pad derived
// from the three numbers, so that anyone can check a record is intact.

func pad(r, g, i int) string {
	n := (r*7 + g*31 + i*13) % 120
	b := make([]byte, n)
	for k := range b {
		b[k] = byte('a' + (r+g*3+i+k)%26)
	}
	return string(b)
}

func payload(r, g, i int) []byte {
	return []byte(fmt.Sprintf(`{"r":%d,"g":%d,"i":%d,"x":%q}`, r, g, i, pad(r, g, i)))
}

// recordID says who wrote a record; the zero value is no record (runs count
// from 1).
type recordID struct{ r, g, i int32 }

// parseRecord checks a record's payload and returns who wrote it.
func parseRecord(p []byte) (recordID, bool) {
	var v struct {
		R, G, I int
		X       string
	}
	if json.Unmarshal(p, &v) != nil {
		return recordID{}, false
	}
	id := recordID{int32(v.R), int32(v.G), int32(v.I)}
	return id, string(payload(v.R, v.G, v.I)) == string(p)
}

// roleWriter DIR RUN ACKS RATE: append records with two goroutines at RATE
// records per second, writing "SEQ G I" to ACKS for every Append that
// returned, until killed.
func roleWriter(args []string) int {
	dir, ackPath := args[0], args[2]
	run, _ := strconv.Atoi(args[1])
	rate, _ := strconv.Atoi(args[3])
	w, err := mmaplog.Open(dir, &mmaplog.Options{SegmentSize: 256 << 10, MaxBackups: -1, Compress: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, "writer:", err)
		return 1
	}
	f, err := os.OpenFile(ackPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, "writer:", err)
		return 1
	}
	fmt.Println("ready")
	var mu sync.Mutex
	out := bufio.NewWriter(f)
	start := time.Now()
	var n atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 2; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; ; i++ {
				k := n.Add(1)
				if d := time.Until(start.Add(time.Duration(k) * time.Second / time.Duration(rate))); d > 0 {
					time.Sleep(d)
				}
				seq, err := w.Append(mmaplog.LevelInfo, payload(run, g, i))
				if err != nil {
					fmt.Fprintln(os.Stderr, "writer:", err)
					os.Exit(1)
				}
				mu.Lock()
				fmt.Fprintf(out, "%d %d %d\n", seq, g, i)
				if i%16 == 0 {
					out.Flush() // a write(2): in the page cache, survives SIGKILL
				}
				mu.Unlock()
			}
		}(g)
	}
	wg.Wait()
	return 0
}

type quiet struct{}

func (quiet) Printf(string, ...interface{}) {}
func (quiet) Println(...interface{})        {}
func (quiet) Print(...interface{})          {}

// roleReceiver ADDR OUT: go-lumber's Beats server; for every batch it checks
// each event against its record and appends "SEQ ok" (or "SEQ corrupt") to
// OUT, then acknowledges the batch.
func roleReceiver(args []string) int {
	lumberlog.Logger = quiet{}
	srv, err := lumber.ListenAndServe(args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, "receiver:", err)
		return 1
	}
	f, err := os.OpenFile(args[1], os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, "receiver:", err)
		return 1
	}
	fmt.Println("ready")
	var buf []byte
	for b := range srv.ReceiveChan() {
		buf = buf[:0]
		for _, ev := range b.Events {
			m, _ := ev.(map[string]interface{})
			lg, _ := m["log"].(map[string]interface{})
			off, _ := lg["offset"].(float64)
			r, _ := m["r"].(float64)
			g, _ := m["g"].(float64)
			i, _ := m["i"].(float64)
			x, _ := m["x"].(string)
			state := "ok"
			if x != pad(int(r), int(g), int(i)) {
				state = "corrupt"
			}
			buf = fmt.Appendf(buf, "%d %s %d %d %d\n", int64(off), state, int(r), int(g), int(i))
		}
		if _, err := f.Write(buf); err != nil {
			fmt.Fprintln(os.Stderr, "receiver:", err)
			return 1
		}
		b.ACK()
	}
	return 0
}

// part is one process of the pipeline.
type part struct {
	name  string
	cmd   *exec.Cmd
	done  chan struct{}
	kills int
	runs  int
}

type soak struct {
	work, dir, bin, addr string
	rate, window         int
	rng                  *rand.Rand
	parts                map[string]*part
	writerRuns           int
	followerRuns         []string // output files, one per run
	followerFrom         []uint64 // where each run was asked to start
	started              time.Time
	rounds               int

	// What the receiver got, read so far; what the writer acknowledged.
	// Both are indexed by sequence number (no pointers: the garbage
	// collector does not scan them).
	recvOff   int64
	received  []uint16 // times delivered
	nReceived int      // records delivered at least once
	dupMax    int      // most duplicates after one kill
	dupTotal  int
	corrupt   int
	acked     []recordID // zero: not acknowledged
	nAcked    int
	pending   map[uint64]bool // acknowledged, not delivered yet
	ackOff    map[string]int64
	finalMsg  []string
	maxAcked  uint64
	dups      int // duplicates counted by waitDelivered
}

func newSoak(work, bin string, rate, window int, seed uint64) (*soak, error) {
	if work == "" {
		var err error
		if work, err = os.MkdirTemp("", "mmaplog-soak-"); err != nil {
			return nil, err
		}
	} else if err := os.MkdirAll(work, 0o700); err != nil {
		return nil, err
	}
	if p, err := exec.LookPath(bin); err == nil {
		bin = p
	} else {
		return nil, fmt.Errorf("no mmaptail binary %q (build one: go build -o /tmp/mmaptail ./cmd/mmaptail): %w", bin, err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	s := &soak{work: work, dir: filepath.Join(work, "log"), bin: bin, addr: addr, rate: rate, window: window,
		rng: rand.New(rand.NewPCG(seed, 1)), parts: map[string]*part{}, pending: map[uint64]bool{}, ackOff: map[string]int64{}}
	return s, nil
}

func (s *soak) path(name string) string { return filepath.Join(s.work, name) }

// start starts (again) the named part.
func (s *soak) start(name string) error {
	p := s.parts[name]
	if p == nil {
		p = &part{name: name}
		s.parts[name] = p
	}
	self, _ := os.Executable()
	var cmd *exec.Cmd
	ready := ""
	switch name {
	case "writer":
		s.writerRuns++
		cmd = exec.Command(self, "writer", s.dir, strconv.Itoa(s.writerRuns), s.path(fmt.Sprintf("acks-%d", s.writerRuns)), strconv.Itoa(s.rate))
		ready = "ready"
	case "receiver":
		cmd = exec.Command(self, "receiver", s.addr, s.path("received"))
		ready = "ready"
	case "shipper":
		cmd = exec.Command(s.bin, "ship", "--log", s.dir, "--to", "beats://"+s.addr, "--cursor", s.path("cursor"), "--window", strconv.Itoa(s.window))
	case "follower":
		from, start := "begin", uint64(0)
		if n := s.followerLast(); n > 0 {
			start = n + 1
			from = strconv.FormatUint(start, 10)
		}
		s.followerFrom = append(s.followerFrom, start)
		out := s.path(fmt.Sprintf("follower-%d", len(s.followerRuns)+1))
		s.followerRuns = append(s.followerRuns, out)
		f, err := os.Create(out)
		if err != nil {
			return err
		}
		defer f.Close()
		cmd = exec.Command(s.bin, "cat", "-f", "--from", from, s.dir)
		cmd.Stdout = f
	}
	errf, err := os.OpenFile(s.path(name+".stderr"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer errf.Close()
	cmd.Stderr = errf
	var sc *bufio.Scanner
	if ready != "" {
		stdout, _ := cmd.StdoutPipe()
		sc = bufio.NewScanner(stdout)
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	p.cmd, p.done = cmd, make(chan struct{})
	p.runs++
	go func(done chan struct{}) { cmd.Wait(); close(done) }(p.done)
	if sc != nil && (!sc.Scan() || sc.Text() != ready) {
		return fmt.Errorf("%s did not start: %q (see %s)", name, sc.Text(), s.path(name+".stderr"))
	}
	return nil
}

// followerLast is the sequence number of the last record the follower
// printed, or 0: where a new follower run starts.
func (s *soak) followerLast() uint64 {
	if len(s.followerRuns) == 0 {
		return 0
	}
	b, err := os.ReadFile(s.followerRuns[len(s.followerRuns)-1])
	if err != nil {
		return 0
	}
	// The last complete line: a follower killed in the middle of a
	// write(2) leaves a piece of the next one after it.
	lines, _ := splitLines(b)
	last := ""
	if len(lines) > 0 {
		last = string(lines[len(lines)-1])
	}
	if last == "" {
		if len(s.followerRuns) > 1 {
			// Nothing printed in that run: go on from the one before.
			runs := s.followerRuns
			s.followerRuns = runs[:len(runs)-1]
			n := s.followerLast()
			s.followerRuns = runs
			return n
		}
		return 0
	}
	id, ok := parseRecord([]byte(last))
	if !ok {
		return 0
	}
	for seq := len(s.acked) - 1; seq > 0; seq-- {
		if s.acked[seq] == id {
			return uint64(seq)
		}
	}
	return s.seqOf(id)
}

// seqOf finds the sequence number of a record by reading the log: its
// newest part first (a follower is close behind the writer), then all of it.
func (s *soak) seqOf(id recordID) uint64 {
	from := uint64(0)
	if s.maxAcked > 100000 {
		from = s.maxAcked - 100000
	}
	for {
		r, err := tail.Open(s.dir, &tail.Options{FromSeq: from})
		if err != nil {
			return 0
		}
		for r.Next() {
			if got, ok := parseRecord(r.Record().Payload); ok && got == id {
				r.Close()
				return r.Record().Seq
			}
		}
		r.Close()
		if from == 0 {
			return 0
		}
		from = 0
	}
}

func (s *soak) kill(name string) {
	p := s.parts[name]
	p.cmd.Process.Signal(unix.SIGKILL)
	<-p.done
	p.kills++
}

func (s *soak) stopAll() {
	for _, name := range []string{"follower", "shipper", "writer", "receiver"} {
		if p := s.parts[name]; p != nil && p.cmd != nil && p.cmd.ProcessState == nil {
			p.cmd.Process.Signal(unix.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(30 * time.Second):
				p.cmd.Process.Kill()
				<-p.done
			}
		}
	}
}

// readAcks reads what the writer runs acknowledged since the last call.
func (s *soak) readAcks() (uint64, error) {
	for run := 1; run <= s.writerRuns; run++ {
		path := s.path(fmt.Sprintf("acks-%d", run))
		b, err := readFrom(path, s.ackOff[path])
		if err != nil {
			return 0, err
		}
		// Only whole lines: a killed writer may have left half of one.
		b = b[:strings.LastIndexByte(string(b), '\n')+1]
		s.ackOff[path] += int64(len(b))
		for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
			var seq uint64
			var g, i int
			if n, _ := fmt.Sscanf(l, "%d %d %d", &seq, &g, &i); n == 3 {
				s.acked = grow(s.acked, seq)
				if s.acked[seq] == (recordID{}) {
					s.nAcked++
				}
				s.acked[seq] = recordID{int32(run), int32(g), int32(i)}
				if seq >= uint64(len(s.received)) || s.received[seq] == 0 {
					s.pending[seq] = true
				}
				s.maxAcked = max(s.maxAcked, seq)
			}
		}
	}
	return s.maxAcked, nil
}

// grow makes b long enough to hold index i.
func grow[T any](b []T, i uint64) []T {
	if i < uint64(len(b)) {
		return b
	}
	n := max(2*len(b), int(i)+1, 1<<16)
	nb := make([]T, n)
	copy(nb, b)
	return nb
}

func readFrom(path string, off int64) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.Size() <= off {
		return nil, err
	}
	b := make([]byte, st.Size()-off)
	n, err := f.ReadAt(b, off)
	return b[:n], err
}

// readReceived reads what the receiver stored since the last call; it
// returns the duplicates among it.
func (s *soak) readReceived() (dups int, err error) {
	b, err := readFrom(s.path("received"), s.recvOff)
	if err != nil {
		return 0, err
	}
	b = b[:strings.LastIndexByte(string(b), '\n')+1]
	s.recvOff += int64(len(b))
	for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		var seq uint64
		var state string
		var id recordID
		if n, _ := fmt.Sscanf(l, "%d %s %d %d %d", &seq, &state, &id.r, &id.g, &id.i); n != 5 {
			continue
		}
		if state != "ok" {
			s.corrupt++
			return dups, fmt.Errorf("the receiver got record %d corrupt", seq)
		}
		if seq < uint64(len(s.acked)) && s.acked[seq] != (recordID{}) && s.acked[seq] != id {
			return dups, fmt.Errorf("the receiver got %v as record %d, the writer acknowledged %v there", id, seq, s.acked[seq])
		}
		s.received = grow(s.received, seq)
		if s.received[seq] > 0 {
			dups++
		} else {
			s.nReceived++
		}
		s.received[seq]++
		delete(s.pending, seq)
	}
	return dups, nil
}

var victims = []string{"writer", "follower", "shipper", "receiver"}

func (s *soak) run(ctx context.Context, rounds int) error {
	s.started = time.Now()
	for _, name := range []string{"receiver", "writer", "shipper", "follower"} {
		if err := s.start(name); err != nil {
			return err
		}
	}
	for round := 1; round <= rounds; round++ {
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted after %d rounds", s.rounds)
		}
		victim := victims[s.rng.IntN(len(victims))]
		time.Sleep(time.Duration(10+s.rng.IntN(300)) * time.Millisecond)
		if _, err := s.readAcks(); err != nil {
			return err
		}
		s.kill(victim)
		if err := s.start(victim); err != nil {
			return fmt.Errorf("round %d: %w", round, err)
		}
		// Everything acknowledged so far must reach the receiver.
		upTo, err := s.readAcks()
		if err != nil {
			return err
		}
		s.dups = 0
		if err := s.waitDelivered(upTo, fmt.Sprintf("round %d (killed the %s)", round, victim)); err != nil {
			return err
		}
		dups := s.dups
		s.dupTotal += dups
		s.dupMax = max(s.dupMax, dups)
		if dups > s.window {
			return fmt.Errorf("round %d (killed the %s): %d duplicates, more than one window (%d)", round, victim, dups, s.window)
		}
		s.rounds = round
		if round%50 == 0 {
			fmt.Fprintf(os.Stderr, "mmaplog-soak: %d rounds, %d records delivered, %d duplicates (%v)\n", round, s.nReceived, s.dupTotal, time.Since(s.started).Round(time.Second))
		}
	}
	return nil
}

// drain stops the writer and waits until everything it acknowledged is
// delivered.
func (s *soak) drain() error {
	s.kill("writer")
	s.parts["writer"].kills-- // not a round's
	upTo, err := s.readAcks()
	if err != nil {
		return err
	}
	return s.waitDelivered(upTo, "the end")
}

// waitDelivered waits until the receiver got every acknowledged record up to
// upTo, and returns the duplicates that came meanwhile.
func (s *soak) waitDelivered(upTo uint64, when string) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		d, err := s.readReceived()
		s.dups += d
		if err != nil {
			return fmt.Errorf("%s: %w", when, err)
		}
		missing := s.missingUpTo(upTo)
		if missing == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %d acknowledged records up to %d not delivered after 2 minutes (see %s)", when, missing, upTo, s.work)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// missingUpTo counts the acknowledged records up to upTo that the receiver
// has not got.
func (s *soak) missingUpTo(upTo uint64) int {
	n := 0
	for seq := range s.pending {
		if seq <= upTo {
			n++
		}
	}
	return n
}

// finalCheck reads the whole log, checks every record, and checks that each
// follower run printed, in order and intact, every acknowledged record of
// the range it read.
func (s *soak) finalCheck() error {
	if _, err := s.readAcks(); err != nil {
		return err
	}
	r, err := tail.Open(s.dir, nil)
	if err != nil {
		return err
	}
	var inLog []recordID // by sequence number
	records := 0
	for r.Next() {
		seq := r.Record().Seq
		id, ok := parseRecord(r.Record().Payload)
		if !ok {
			return fmt.Errorf("record %d in the log is corrupt", seq)
		}
		inLog = grow(inLog, seq)
		inLog[seq] = id
		records++
	}
	r.Close()
	if err := r.Err(); err != nil {
		return err
	}
	for seq, id := range s.acked {
		if id != (recordID{}) && (seq >= len(inLog) || inLog[seq] != id) {
			return fmt.Errorf("acknowledged record %d (%v) is not in the log", seq, id)
		}
	}
	rep, err := tail.Verify(s.dir)
	if err != nil {
		return err
	}
	if !rep.Clean() {
		return fmt.Errorf("verify finds the log damaged: %v", rep.Findings)
	}
	acked := func(seq uint64) bool { return seq < uint64(len(s.acked)) && s.acked[seq] != (recordID{}) }
	followed, gaps, torn := 0, 0, 0
	for k, out := range s.followerRuns {
		b, err := os.ReadFile(out)
		if err != nil {
			return err
		}
		lines, rest := splitLines(b)
		// Walk the log alongside: each line is the next record of the log
		// the follower printed, at or after where it was asked to start.
		at, first := max(s.followerFrom[k], 1), true
		for _, line := range lines {
			id, ok := parseRecord(line)
			if !ok {
				return fmt.Errorf("%s: the follower printed a corrupt record: %q", out, line)
			}
			skipped := false
			for at < uint64(len(inLog)) && inLog[at] != id {
				if acked(at) {
					return fmt.Errorf("%s: the follower skipped acknowledged record %d", out, at)
				}
				if !first {
					skipped = true
				}
				at++
			}
			if at >= uint64(len(inLog)) {
				return fmt.Errorf("%s: the follower printed %v out of order, or a record not in the log", out, id)
			}
			if skipped {
				gaps++
			}
			at++
			first = false
			followed++
		}
		if len(rest) > 0 {
			// A SIGKILL in the middle of the follower's write(2) cuts its
			// output there: what is left must be the start of the record
			// that comes next in the log, and nothing else.
			if at >= uint64(len(inLog)) || !bytes.HasPrefix(payload(int(inLog[at].r), int(inLog[at].g), int(inLog[at].i)), rest) {
				return fmt.Errorf("%s: the follower's output ends in %q, which is not the start of record %d", out, rest, at)
			}
			torn++
		}
	}
	s.finalMsg = append(s.finalMsg,
		fmt.Sprintf("| records in the log at the end, all intact; verify's findings | %d; %d |", records, len(rep.Findings)),
		fmt.Sprintf("| records the follower printed (all intact, in order) | %d in %d runs, %d gaps (never acknowledged) |", followed, len(s.followerRuns), gaps),
		fmt.Sprintf("| follower runs whose output a kill cut inside a line (the rest of it the start of the next record) | %d |", torn))
	return nil
}

// splitLines splits b into its newline-terminated lines (without the
// newline) and what follows the last newline.
func splitLines(b []byte) (lines [][]byte, rest []byte) {
	for {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return lines, b
		}
		lines = append(lines, b[:i])
		b = b[i+1:]
	}
}

func (s *soak) printTable(w *os.File) {
	fmt.Fprintf(w, "\n| mmaplog-soak | |\n|---|--:|\n")
	fmt.Fprintf(w, "| rounds (one SIGKILL each) | %d in %v |\n", s.rounds, time.Since(s.started).Round(time.Second))
	names := make([]string, 0, len(s.parts))
	for n := range s.parts {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "| %s killed | %d |\n", n, s.parts[n].kills)
	}
	fmt.Fprintf(w, "| records acknowledged by the writer | %d |\n", s.nAcked)
	lost := len(s.pending)
	fmt.Fprintf(w, "| acknowledged records not delivered | %d |\n", lost)
	fmt.Fprintf(w, "| records delivered to the receiver | %d |\n", s.nReceived)
	fmt.Fprintf(w, "| corrupt events delivered | %d |\n", s.corrupt)
	fmt.Fprintf(w, "| duplicates delivered, in all / most after one kill (window %d) | %d / %d |\n", s.window, s.dupTotal, s.dupMax)
	for _, m := range s.finalMsg {
		fmt.Fprintln(w, m)
	}
}
