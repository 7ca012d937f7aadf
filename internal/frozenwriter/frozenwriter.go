// Package frozenwriter is a test helper: a writer process that stops itself
// with SIGSTOP between reserving a record and writing it, at a point chosen
// in advance, the way a writer process stopped in the middle of an Append
// (SIGSTOP, a paused container, a debugger) leaves a log. Tests of readers
// and shippers run their own test binary as that process: their TestMain (or
// an init function) calls Child when Env is set, and the test calls Start.
package frozenwriter

import (
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mmaplog/mmaplog/internal/fileutil"
	"github.com/mmaplog/mmaplog/mmaplog"
	"github.com/mmaplog/mmaplog/ring"
	"github.com/mmaplog/mmaplog/rotate"
)

// Env is the environment variable that makes a test binary the frozen
// writer of the log directory it names.
const Env = "MMAPLOG_TEST_FROZEN_WRITER"

// The records of the frozen writer, by sequence number: 1 to Before are
// written through mmaplog; Seq is reserved, and written only once the
// process is continued; Seq+1 to After are written after it before the
// process stops; After+1 to Last once it is continued.
const (
	Before = 10
	Seq    = 11
	After  = 20
	Last   = 30
)

// Payload is the record with sequence number seq: a small JSON event.
func Payload(seq uint64) []byte {
	return []byte(fmt.Sprintf(`{"level":"info","message":"record %d of the frozen writer"}`, seq))
}

// Child is the frozen writer process, on the log in dir; it returns the
// process's exit code. It writes records 1 to Before through mmaplog and
// closes the log, then takes the log's lock as a writer continuing the log
// does and appends to the segment through package ring: record Seq is
// reserved (a ring whose first record goes there), Seq+1 to After are
// written after it (a second ring, starting after Seq's space), and the
// process stops itself with SIGSTOP before Seq is written. Once continued it
// writes Seq and then After+1 to Last, prints "written", and keeps the lock
// until its standard input is closed.
func Child(dir string) int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "frozen writer:", err)
		return 1
	}
	if err := writeBefore(dir); err != nil {
		return fail(err)
	}
	lock, err := fileutil.TryLock(filepath.Join(dir, rotate.LockName))
	if err != nil {
		return fail(err)
	}
	defer lock.Release()
	seg, err := rotate.OpenWritable(filepath.Join(dir, rotate.SegmentName(1)), 1)
	if err != nil {
		return fail(err)
	}
	defer seg.Close()
	held, rest, err := openRings(seg.Data)
	if err != nil {
		return fail(err)
	}
	if err := appendRange(rest, Seq+1, After); err != nil {
		return fail(err)
	}
	// Record Seq is reserved, the ones after it are written: stop here.
	if err := stopSelf(); err != nil {
		return fail(err)
	}
	if err := appendRecord(held, Seq); err != nil {
		return fail(err)
	}
	if err := appendRange(rest, After+1, Last); err != nil {
		return fail(err)
	}
	fmt.Println("written")
	io.Copy(io.Discard, os.Stdin)
	return 0
}

// writeBefore writes records 1 to Before to the log in dir through mmaplog
// and closes it.
func writeBefore(dir string) error {
	w, err := mmaplog.Open(dir, &mmaplog.Options{SegmentSize: 64 << 10})
	if err != nil {
		return err
	}
	for seq := uint64(1); seq <= Before; seq++ {
		if _, err := w.Append(mmaplog.LevelInfo, Payload(seq)); err != nil {
			return err
		}
	}
	return w.Close()
}

// openRings marks the segment mapped in data open again, as after a
// restart, and returns two rings on it: held, whose first record is Seq,
// written where the log ends, and rest, which starts after the space of
// Seq with record Seq+1.
func openRings(data []byte) (held, rest *ring.Ring, err error) {
	h, err := ring.ParseHeader(data, true)
	if err != nil {
		return nil, nil, err
	}
	res := ring.Scan(data, h.FirstSeq, nil)
	if res.NextSeq != Seq {
		return nil, nil, fmt.Errorf("the log ends before %d, want %d", res.NextSeq, Seq)
	}
	ring.StoreState(data, ring.StateOpen) // appending again, as after a restart
	size := ring.RecordSize(len(Payload(Seq)))
	used := res.NextSeq - h.FirstSeq
	held, err = ring.New(data, res.End, h.FirstSeq, used)
	if err != nil {
		return nil, nil, err
	}
	rest, err = ring.New(data, res.End+size, h.FirstSeq, used+1)
	if err != nil {
		return nil, nil, err
	}
	wake := func(word *uint32) { fileutil.FutexWake(word, math.MaxInt32) }
	held.SetHooks(wake, nil)
	rest.SetHooks(wake, nil)
	return held, rest, nil
}

// appendRecord appends record seq to r and checks that r gave it that
// sequence number.
func appendRecord(r *ring.Ring, seq uint64) error {
	pos, err := r.Append(uint8(mmaplog.LevelInfo), time.Now().UnixNano(), Payload(seq))
	if err == nil && pos.Seq != seq {
		err = fmt.Errorf("appended record %d, want %d", pos.Seq, seq)
	}
	return err
}

// appendRange appends records first to last to r, in order.
func appendRange(r *ring.Ring, first, last uint64) error {
	for seq := first; seq <= last; seq++ {
		if err := appendRecord(r, seq); err != nil {
			return err
		}
	}
	return nil
}

// stopSelf stops the process with SIGSTOP and returns once it is
// continued. It locks the calling goroutine to its thread, which the
// signal goes to.
func stopSelf() error {
	// The signal goes to this thread (tgkill), which then stops on its
	// way out of the system call; sent to the process (kill), it may be
	// taken by another thread while this one runs on and writes Seq.
	runtime.LockOSThread()
	return unix.Tgkill(os.Getpid(), unix.Gettid(), unix.SIGSTOP)
}

// Start runs this test binary as the frozen writer of dir and returns once
// the process has stopped itself with record Seq reserved, with the pipe to
// its standard input (closing it lets the writer exit once continued). The
// process is killed when the test ends.
func Start(t testing.TB, dir string) (*exec.Cmd, io.WriteCloser) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), Env+"="+dir)
	// A process group of its own, whose parent (this process) is in
	// another: the kernel continues a stopped process (SIGHUP, SIGCONT)
	// whose process group is orphaned when some process of it exits.
	cmd.SysProcAttr = &unix.SysProcAttr{Setpgid: true}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	stopped := make(chan unix.WaitStatus, 1)
	go func() {
		var ws unix.WaitStatus
		for {
			_, err := unix.Wait4(cmd.Process.Pid, &ws, unix.WUNTRACED, nil)
			if err != unix.EINTR {
				break
			}
		}
		stopped <- ws
	}()
	select {
	case ws := <-stopped:
		if !ws.Stopped() || ws.StopSignal() != unix.SIGSTOP {
			t.Fatalf("the frozen writer did not stop itself (wait status %#x): %s", uint32(ws), stderr.String())
		}
	case <-time.After(time.Minute): // catches a hang only
		t.Fatalf("the frozen writer did not stop in a minute: %s", stderr.String())
	}
	return cmd, stdin
}
