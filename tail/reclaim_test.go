package tail_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/mmaplog/mmaplog/mmaplog"
	"github.com/mmaplog/mmaplog/rotate"
	"github.com/mmaplog/mmaplog/tail"
)

const readerEnv = "MMAPLOG_TEST_READER"

// readerChild reads the log in dir from the start, checking every record,
// until it reads the first record of segment STOP; then it prints "in N"
// and waits for a line on its standard input before it reads on to the
// end, printing "done READ LOST".
func readerChild(dir string) int {
	stop, _ := strconv.ParseUint(os.Getenv("STOP"), 10, 64)
	r, err := tail.Open(dir, nil)
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	read := 0
	waited := false
	for r.Next() {
		rec := r.Record()
		if string(rec.Payload) != string(reclaimPayload(rec.Seq)) {
			fmt.Printf("error: record %d is corrupt: %q\n", rec.Seq, rec.Payload)
			return 1
		}
		read++
		if rec.Segment == stop && !waited {
			fmt.Println("in", rec.Segment)
			bufio.NewReader(os.Stdin).ReadString('\n')
			waited = true
		}
	}
	if err := r.Err(); err != nil {
		fmt.Println("error:", err)
		return 1
	}
	fmt.Println("done", read, r.Lost())
	return 0
}

func reclaimPayload(seq uint64) []byte {
	return []byte(fmt.Sprintf("record %d %s", seq, strings.Repeat("r", int(seq%200))))
}

// reader is a reader process stopped in a segment.
type reader struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Scanner
}

func startReader(t *testing.T, dir string, stop uint64) *reader {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), readerEnv+"="+dir, "STOP="+strconv.FormatUint(stop, 10))
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	r := &reader{cmd: cmd, stdin: stdin, out: bufio.NewScanner(stdout)}
	if !r.out.Scan() || r.out.Text() != fmt.Sprint("in ", stop) {
		t.Fatalf("reader: %q", r.out.Text())
	}
	return r
}

// finish lets the reader read on and returns what it read and lost.
func (r *reader) finish(t *testing.T) (read int, lost uint64) {
	t.Helper()
	fmt.Fprintln(r.stdin)
	if !r.out.Scan() {
		t.Fatal("reader ended without a word")
	}
	if _, err := fmt.Sscanf(r.out.Text(), "done %d %d", &read, &lost); err != nil {
		t.Fatalf("reader: %q", r.out.Text())
	}
	r.cmd.Wait()
	return read, lost
}

// scribble clears a reclaimed file the way a writer reusing it would, with
// bytes no reader may ever return as a record.
func scribble(t *testing.T, f *os.File) {
	t.Helper()
	st, _ := f.Stat()
	if _, err := f.WriteAt([]byte(strings.Repeat("\xa5", int(st.Size()))), 0); err != nil {
		t.Fatal(err)
	}
}

// TestReclaimOnlyWhatNoLiveReaderHolds: the writer side of segment reuse.
// A reader process positioned in segment 3 keeps it: Reclaim removes it
// instead, and the reader still reads it whole. Segment 2, which the reader
// has passed, and segment 4, whose reader was killed with SIGKILL, are
// handed out for reuse; scribbling over them costs no reader a byte.
func TestReclaimOnlyWhatNoLiveReaderHolds(t *testing.T) {
	dir := t.TempDir()
	w, err := mmaplog.Open(dir, &mmaplog.Options{SegmentSize: 64 << 10, MaxBackups: -1})
	if err != nil {
		t.Fatal(err)
	}
	const n = 4000
	for seq := uint64(1); seq <= n; seq++ {
		if _, err := w.Append(0, reclaimPayload(seq)); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	l, _ := rotate.List(dir)
	if len(l.Segments) < 6 {
		t.Fatalf("%d segments, the test wants 6", len(l.Segments))
	}
	seg := func(n uint64) rotate.FileInfo { fi, _ := l.Find(n); return fi }
	firstSeq := map[uint64]uint64{}
	for _, s := range l.Segments {
		h, err := rotate.PeekHeader(s)
		if err != nil {
			t.Fatal(err)
		}
		firstSeq[s.Num] = h.FirstSeq
	}

	in3 := startReader(t, dir, 3)
	if busy, err := rotate.InUse(seg(3).Path); err != nil || !busy {
		t.Fatalf("InUse(3) with a reader in it: %v %v", busy, err)
	}
	_, err = rotate.Reclaim(seg(3), seg(3).Path+".reuse.tmp")
	if !errors.Is(err, rotate.ErrInUse) {
		t.Fatalf("Reclaim of the segment a live reader is in: %v, want ErrInUse", err)
	}
	for _, p := range []string{seg(3).Path, seg(3).Path + ".reuse.tmp"} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s still there after Reclaim removed it: %v", p, err)
		}
	}
	f, err := rotate.Reclaim(seg(2), seg(2).Path+".reuse.tmp")
	if err != nil {
		t.Fatalf("Reclaim of a segment the reader passed: %v", err)
	}
	scribble(t, f)
	f.Close()

	in4 := startReader(t, dir, 4)
	in4.cmd.Process.Signal(unix.SIGKILL)
	in4.cmd.Wait()
	f, err = rotate.Reclaim(seg(4), seg(4).Path+".reuse.tmp")
	if err != nil {
		t.Fatalf("Reclaim of a segment whose reader was killed: %v", err)
	}
	scribble(t, f)
	f.Close()

	// The reader in segment 3 reads it to its end; segment 4 is gone
	// under its name, and the reader counts its records lost, never
	// reading the scribbled bytes.
	read, lost := in3.finish(t)
	seg3, seg4 := firstSeq[4]-firstSeq[3], firstSeq[5]-firstSeq[4]
	if lost != seg4 || uint64(read)+lost != n {
		t.Fatalf("the reader read %d and lost %d of %d records; segment 4 held %d (segment 3 %d)", read, lost, n, seg4, seg3)
	}
	// Files that no reader holds are free; a renamed one is no longer at
	// its segment name, so no new reader can open it there.
	if busy, err := rotate.InUse(seg(5).Path); err != nil || busy {
		t.Fatalf("InUse(5) with no reader: %v %v", busy, err)
	}
	if _, err := os.Stat(filepath.Join(dir, rotate.SegmentName(2))); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a reclaimed file is still at its segment name")
	}
}
