package rotate

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mmaplog/mmaplog/flush"
	"github.com/mmaplog/mmaplog/ring"
)

// fill appends 200-byte records to seg until it is full, and returns the
// first sequence number of the next segment.
func fill(t *testing.T, seg *Live) uint64 {
	t.Helper()
	p := make([]byte, 200)
	for {
		_, err := seg.Ring.Append(0, time.Now().UnixNano(), p)
		if err == ring.ErrFull {
			_, count, _ := seg.Ring.WaitSealed()
			return seg.Ring.FirstSeq() + count
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestLifecycle: a Lifecycle on its own makes the segments of a log one
// after the other with consecutive numbers and sequence numbers and the
// log's id, finishes each rolled one (sealed), keeps MaxBackups of them,
// and at Close leaves the active one closed and no prepared or pooled file
// behind.
func TestLifecycle(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	var told []error
	l := NewLifecycle(dir, LifecycleOptions{Size: segSize, Perm: 0o600, Ahead: 2,
		Retention: Retention{MaxBackups: 2}, Flush: flush.Rotate(),
		OnError: func(err error) { mu.Lock(); told = append(told, err); mu.Unlock() }})
	logID := [16]byte{7}
	seg, err := l.Create(1, 1, logID)
	if err != nil {
		t.Fatal(err)
	}
	l.Start(seg)
	firsts := map[uint64]uint64{1: 1}
	for seg.Num < 7 {
		next, err := l.Take(fill(t, seg))
		if err != nil {
			t.Fatal(err)
		}
		firsts[next.Num] = next.Ring.FirstSeq()
		l.Roll(seg)
		seg = next
	}
	fill(t, seg)
	l.Closing()
	if err := l.SealActive(seg); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(told) != 0 {
		t.Fatalf("background errors: %v", told)
	}
	ls, err := List(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ls.Segments) != 3 || ls.Segments[0].Num != 5 || len(ls.Temp) != 0 || len(ls.Foreign) != 0 {
		t.Fatalf("left %+v, want segments 5 to 7 and nothing else", ls)
	}
	for _, fi := range ls.Segments {
		h, err := PeekHeader(fi)
		if err != nil || h.Segment != fi.Num || h.FirstSeq != firsts[fi.Num] || h.LogID != logID || fi.Size != segSize {
			t.Errorf("%s: header %+v (%v), %d bytes; want segment %d from %d of log %x", fi.Path, h, err, fi.Size, fi.Num, firsts[fi.Num], logID)
		}
		want := ring.StateSealed
		if fi.Num == 7 {
			want = ring.StateClosed
		}
		if st, err := PeekState(fi); err != nil || st != want {
			t.Errorf("%s: state %v (%v), want %v", fi.Path, st, err, want)
		}
	}
	st := l.Stats(false)
	if st.Rotations != 6 || st.Removed != 4 || l.Finished() != 7 {
		t.Errorf("stats %+v, finished below %d; want 6 rotations, 4 removed, finished below 7", st, l.Finished())
	}
}

// TestLifecycleRemakesTruncatedSegment: a prepared segment truncated by
// another process (to half: its header page is still there) is never
// written into: Take discards it, says so, and makes the segment again,
// with the same number.
func TestLifecycleRemakesTruncatedSegment(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	var told []error
	l := NewLifecycle(dir, LifecycleOptions{Size: segSize, Perm: 0o600, Ahead: 2, NoReuse: true,
		OnError: func(err error) { mu.Lock(); told = append(told, err); mu.Unlock() }})
	seg, err := l.Create(1, 1, [16]byte{7})
	if err != nil {
		t.Fatal(err)
	}
	l.Start(seg)
	prepared := filepath.Join(dir, SegmentName(2))
	deadline := time.Now().Add(time.Minute) // a hang only
	for _, err := os.Stat(prepared); err != nil; _, err = os.Stat(prepared) {
		if time.Now().After(deadline) {
			t.Fatalf("segment 2 not prepared: %v", err)
		}
		time.Sleep(time.Millisecond)
	}
	if err := os.Truncate(prepared, segSize/2); err != nil {
		t.Fatal(err)
	}
	first := fill(t, seg)
	next, err := l.Take(first)
	if err != nil {
		t.Fatal(err)
	}
	l.Roll(seg)
	if next.Num != 2 || next.Ring.FirstSeq() != first {
		t.Fatalf("took segment %d from %d, want 2 from %d", next.Num, next.Ring.FirstSeq(), first)
	}
	if st, err := os.Stat(prepared); err != nil || st.Size() != segSize {
		t.Fatalf("segment 2 made again: %v, %v", st, err)
	}
	fill(t, next) // writes into every page: a SIGBUS if it were the truncated file
	l.Closing()
	if err := l.SealActive(next); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(told) != 1 || !strings.Contains(told[0].Error(), "prepared segment "+prepared) {
		t.Fatalf("told %v, want one error about the prepared segment %s", told, prepared)
	}
}
