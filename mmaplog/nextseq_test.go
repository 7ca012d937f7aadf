package mmaplog_test

import (
	"bytes"
	"errors"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mmaplog/mmaplog/internal/testutil"
	"github.com/mmaplog/mmaplog/mmaplog"
	"github.com/mmaplog/mmaplog/rotate"
)

// TestNextSeqAfterFailedRotations: on a full filesystem rotations fail and
// every Write that needs the next segment gets the error. Those records
// get no sequence number, so Stats.NextSeq stays the number the next record
// really gets: the one after the last record written, and the one the
// first record written once there is room again gets.
func TestNextSeqAfterFailedRotations(t *testing.T) {
	dir := testutil.Tmpfs(t, "1m")
	w, err := mmaplog.Open(dir, &mmaplog.Options{SegmentSize: 256 << 10, MaxBackups: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	rec := bytes.Repeat([]byte("d"), 1000)
	var last uint64
	var werr error
	for i := 0; i < 10000 && werr == nil; i++ {
		var seq uint64
		if seq, werr = w.Append(0, rec); werr == nil {
			last = seq
		}
	}
	if !errors.Is(werr, unix.ENOSPC) || last == 0 {
		t.Fatalf("got %v after record %d, want ENOSPC", werr, last)
	}
	if got := w.Stats().NextSeq; got != last+1 {
		t.Errorf("after the first failed rotation Stats.NextSeq is %d, want %d", got, last+1)
	}
	const failed = 50
	for i := 0; i < failed; i++ {
		if _, err := w.Append(0, rec); !errors.Is(err, unix.ENOSPC) {
			t.Fatalf("Append %d on the full disk: %v, want ENOSPC", i, err)
		}
	}
	st := w.Stats()
	if st.NextSeq != last+1 {
		t.Errorf("after %d failed Appends Stats.NextSeq is %d, want %d (the last record written is %d)", failed+1, st.NextSeq, last+1, last)
	}
	// Make room: the next record gets the number Stats promised.
	l, _ := rotate.List(dir)
	if err := os.Remove(l.Segments[0].Path); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute) // a hang only
	for {
		seq, err := w.Append(0, rec)
		if err == nil {
			if seq != st.NextSeq {
				t.Fatalf("the first record after room was made got sequence number %d; Stats.NextSeq said %d", seq, st.NextSeq)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still failing after room was made: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := w.Stats().NextSeq; got != st.NextSeq+1 {
		t.Fatalf("after one more record Stats.NextSeq is %d, want %d", got, st.NextSeq+1)
	}
}
