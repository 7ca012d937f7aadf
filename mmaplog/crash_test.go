package mmaplog_test

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mmaplog/mmaplog/mmaplog"
	"github.com/mmaplog/mmaplog/tail"
)

// The child processes: the test binary started again with childEnv set.
const childEnv = "MMAPLOG_TEST_CHILD"

func runChild(mode string) {
	dir := os.Getenv("MMAPLOG_TEST_DIR")
	switch mode {
	case "writer":
		crashChild(dir)
	case "holdlock":
		w, err := mmaplog.Open(dir, nil)
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println("locked")
		time.Sleep(time.Minute)
		w.Close()
	default:
		child := truncChildren[mode]
		if child == nil {
			fmt.Fprintln(os.Stderr, "unknown child mode", mode)
			os.Exit(2)
		}
		child(dir)
	}
	os.Exit(0)
}

// payloadFor is the content of record i of goroutine g in round r: derived
// from (r, g, i) so that the parent can check every byte.
func payloadFor(buf []byte, r, g, i int) []byte {
	n := 24 + (r*7+g*131+i*17)%700
	p := buf[:n]
	binary.LittleEndian.PutUint32(p[0:], uint32(r))
	binary.LittleEndian.PutUint32(p[4:], uint32(g))
	binary.LittleEndian.PutUint32(p[8:], uint32(i))
	binary.LittleEndian.PutUint32(p[12:], uint32(n))
	for j := 16; j < n; j++ {
		p[j] = byte(r + g*7 + i*13 + j)
	}
	return p
}

func checkPayload(p []byte) (r, g, i int, ok bool) {
	if len(p) < 16 {
		return 0, 0, 0, false
	}
	r = int(binary.LittleEndian.Uint32(p[0:]))
	g = int(binary.LittleEndian.Uint32(p[4:]))
	i = int(binary.LittleEndian.Uint32(p[8:]))
	var buf [800]byte
	want := payloadFor(buf[:], r, g, i)
	return r, g, i, string(want) == string(p)
}

// crashChild writes with several goroutines until it is killed, printing
// "seq round g i" for every Append that returned.
func crashChild(dir string) {
	round, _ := strconv.Atoi(os.Getenv("MMAPLOG_TEST_ROUND"))
	w, err := mmaplog.Open(dir, &mmaplog.Options{SegmentSize: 64 << 10, MaxBackups: -1, MaxRecordSize: 4096})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	out := bufio.NewWriterSize(os.Stdout, 1<<16)
	var mu sync.Mutex
	var wg sync.WaitGroup
	fmt.Println("ready")
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			buf := make([]byte, 800)
			for i := 0; ; i++ {
				seq, err := w.Append(mmaplog.LevelInfo, payloadFor(buf, round, g, i))
				if err != nil {
					fmt.Fprintln(os.Stderr, "append:", err)
					os.Exit(1)
				}
				mu.Lock()
				fmt.Fprintf(out, "%d %d %d %d\n", seq, round, g, i)
				if i%16 == 0 {
					out.Flush()
				}
				mu.Unlock()
			}
		}(g)
	}
	wg.Wait()
}

type ack struct{ round, g, i int }

// minAcks is how many records a child of TestCrashRecovery acknowledges in
// each round before it may be killed.
const minAcks = 10

// TestCrashRecovery: a child process writes with four goroutines and reports
// each record whose Append returned; the parent SIGKILLs it at a random
// moment (once it reported minAcks records), reopens the log (recovery), and
// checks that every reported record is present and intact and that nothing
// corrupt is readable. The rounds share one directory, so every round also
// recovers the previous ones.
func TestCrashRecovery(t *testing.T) {
	rounds := 50
	if testing.Short() {
		rounds = 10
	}
	dir := t.TempDir()
	acked := map[uint64]ack{}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	totalRepairs := 0
	for round := 0; round < rounds; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"=writer", "MMAPLOG_TEST_DIR="+dir, "MMAPLOG_TEST_ROUND="+strconv.Itoa(round))
		stdout, _ := cmd.StdoutPipe()
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		if !sc.Scan() || sc.Text() != "ready" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("round %d: child did not start: %q %s", round, sc.Text(), stderr.String())
		}
		// The kill comes at a random moment, but not before the child
		// acknowledged minAcks records in this round: on a busy machine
		// a child may get little time before its moment, and the test
		// wants every round to have written. Whichever of the timer and
		// the minAcks-th acknowledgement comes last kills it (each one
		// marks itself, then looks at the other). A child that never
		// gets there is killed at hangLimit.
		var due atomic.Bool
		var got atomic.Int64
		var kill sync.Once
		killNow := func() { kill.Do(func() { cmd.Process.Signal(unix.SIGKILL) }) }
		killAfter := time.Duration(rng.IntN(40000)+500) * time.Microsecond
		timer := time.AfterFunc(killAfter, func() {
			due.Store(true)
			if got.Load() >= minAcks {
				killNow()
			}
		})
		hang := time.AfterFunc(hangLimit, killNow)
		for sc.Scan() {
			var seq uint64
			var a ack
			if n, _ := fmt.Sscanf(sc.Text(), "%d %d %d %d", &seq, &a.round, &a.g, &a.i); n == 4 {
				acked[seq] = a
				if got.Add(1) >= minAcks && due.Load() {
					killNow()
				}
			}
		}
		timer.Stop()
		hang.Stop()
		err := cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(interface{ Signaled() bool }); !ok || !ws.Signaled() {
			t.Fatalf("round %d: child exited by itself (%v): %s", round, err, stderr.String())
		}

		// Recovery, then a read of everything.
		w, err := mmaplog.Open(dir, &mmaplog.Options{SegmentSize: 64 << 10, MaxBackups: -1, MaxRecordSize: 4096})
		if err != nil {
			t.Fatalf("round %d: reopen after SIGKILL: %v", round, err)
		}
		for _, r := range w.Recovery() {
			switch r.Kind {
			case mmaplog.RepairHole, mmaplog.RepairTornTail, mmaplog.RepairUnused, mmaplog.RepairTempFile:
			default:
				t.Errorf("round %d: unexpected repair %s", round, r)
			}
			totalRepairs++
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		seen := verifyAll(t, dir, acked)
		if len(acked) > 0 && seen < len(acked) {
			t.Fatalf("round %d: %d acknowledged records, %d found", round, len(acked), seen)
		}
	}
	t.Logf("%d rounds, %d acknowledged records, %d repairs", rounds, len(acked), totalRepairs)
	if len(acked) < rounds*minAcks {
		t.Fatalf("only %d records acknowledged over %d rounds: the children hardly wrote", len(acked), rounds)
	}
}

// verifyAll reads the whole log: every record must be intact (its payload
// derived from its own header) and every acknowledged sequence number must
// hold exactly the acknowledged record. It returns how many acknowledged
// records it found.
func verifyAll(t *testing.T, dir string, acked map[uint64]ack) int {
	t.Helper()
	r, err := tail.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	found := 0
	for r.Next() {
		rec := r.Record()
		round, g, i, ok := checkPayload(rec.Payload)
		if !ok {
			t.Fatalf("record %d is readable but corrupt", rec.Seq)
		}
		if a, ok := acked[rec.Seq]; ok {
			if a != (ack{round, g, i}) {
				t.Fatalf("record %d holds %v, the child acknowledged %v", rec.Seq, ack{round, g, i}, a)
			}
			found++
		}
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	for _, d := range r.Damage() {
		// Repaired holes leave sequence gaps: records that never returned.
		if d.Err == nil || !strings.Contains(d.Err.Error(), "repair") {
			t.Fatalf("damage after recovery: %s", d)
		}
	}
	return found
}

// TestSecondWriterProcessGetsErrLocked: the lock names the holder's pid.
func TestSecondWriterProcessGetsErrLocked(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=holdlock", "MMAPLOG_TEST_DIR="+dir)
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() || sc.Text() != "locked" {
		t.Fatalf("child: %q", sc.Text())
	}
	_, err := mmaplog.Open(dir, nil)
	var le *mmaplog.LockedError
	if !errorsIs(err, mmaplog.ErrLocked) || !errorsAs(err, &le) || le.PID != cmd.Process.Pid {
		t.Fatalf("got %v, want ErrLocked naming pid %d", err, cmd.Process.Pid)
	}
	if !strings.Contains(err.Error(), strconv.Itoa(cmd.Process.Pid)) {
		t.Fatalf("message does not name the pid: %v", err)
	}
	// When the holder dies the kernel releases the lock.
	cmd.Process.Kill()
	cmd.Wait()
	w, err := mmaplog.Open(dir, nil)
	if err != nil {
		t.Fatalf("after the holder died: %v", err)
	}
	w.Close()
}
