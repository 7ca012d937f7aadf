package mmaplog_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mmaplog/mmaplog/mmaplog"
	"github.com/mmaplog/mmaplog/rotate"
	"github.com/mmaplog/mmaplog/tail"
)

// filesSize returns the bytes of every regular file in dir but the lock:
// segments, prepared and pooled files alike.
func filesSize(t *testing.T, dir string) int64 {
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, e := range ents {
		if e.Name() == rotate.LockName || !e.Type().IsRegular() {
			continue
		}
		if info, err := e.Info(); err == nil {
			n += info.Size()
		}
	}
	return n
}

// seqPayload is the payload of the record with sequence number seq: any
// record read back can be checked against its sequence number.
func seqPayload(seq uint64) []byte {
	p := fmt.Sprintf("record %d ", seq)
	return []byte(p + strings.Repeat("x", 200-len(p)))
}

// TestSegmentsAreReused writes through many segments with retention while
// followers read, one of them slowly: the writer makes its segments from
// the files retention removed, the directory stays within its bound
// (pooled files counted), and no reader ever gets a byte of a reused file
// as a record of its old life or of its new one out of place.
func TestSegmentsAreReused(t *testing.T) {
	const n = 20000
	o := &mmaplog.Options{SegmentSize: 64 << 10, MaxBackups: 3}
	w, dir := openTest(t, o)
	bound := o.DiskBound()
	var wg sync.WaitGroup
	readerErr := make(chan error, 2)
	for _, slow := range []bool{false, true} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			readerErr <- follow(dir, n, slow)
		}()
	}
	var maxSeen int64
	for i := uint64(1); i <= n; i++ {
		seq, err := w.Append(0, seqPayload(i))
		if err != nil {
			t.Fatal(err)
		}
		if seq != i {
			t.Fatalf("record %d got sequence number %d", i, seq)
		}
		if i%97 == 0 {
			maxSeen = max(maxSeen, filesSize(t, dir))
		}
	}
	wg.Wait()
	for range 2 {
		if err := <-readerErr; err != nil {
			t.Error(err)
		}
	}
	st := w.Stats()
	t.Logf("%d rotations, %d segments made from reused files, %d removed; directory at most %d of bound %d bytes", st.Rotations, st.Reused, st.Removed, maxSeen, bound)
	if st.Rotations < 50 || st.Reused < st.Rotations/2 {
		t.Fatalf("only %d of %d segments made from reused files", st.Reused, st.Rotations)
	}
	if maxSeen > bound {
		t.Fatalf("the directory reached %d bytes, bound %d", maxSeen, bound)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*.tmp")); len(left) > 0 {
		t.Fatalf("Close left %v", left)
	}
}

// follow reads the log until record last, checking every record against
// its sequence number; records may only go missing by retention.
func follow(dir string, last uint64, slow bool) error {
	r, err := tail.Open(dir, &tail.Options{Follow: true})
	if err != nil {
		return err
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a hang only
	defer cancel()
	var prev uint64
	for read := 0; ; {
		for r.Next() {
			rec := r.Record()
			if string(rec.Payload) != string(seqPayload(rec.Seq)) {
				return fmt.Errorf("record %d (segment %d offset %d) reads %.40q", rec.Seq, rec.Segment, rec.Offset, rec.Payload)
			}
			if rec.Seq <= prev {
				return fmt.Errorf("record %d after record %d", rec.Seq, prev)
			}
			prev = rec.Seq
			if rec.Seq == last {
				return nil
			}
			if read++; slow && read%20 == 0 {
				time.Sleep(200 * time.Microsecond)
			}
		}
		if err := r.Err(); err != nil {
			return err
		}
		for _, d := range r.Damage() {
			if d.Kind != tail.DamageRemoved {
				return fmt.Errorf("damage: %v", d)
			}
		}
		if err := r.Wait(ctx); err != nil {
			return fmt.Errorf("waiting after record %d: %w", prev, err)
		}
	}
}

// ResetMaxima starts the longest rotation wait and preparation over, so
// that they can cover the steady state alone (the first segments are new
// files), and leaves the counters counting.
func TestResetMaxima(t *testing.T) {
	w, err := mmaplog.Open(t.TempDir(), &mmaplog.Options{SegmentSize: 64 << 10, MaxBackups: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	rec := make([]byte, 200)
	write := func(n int) {
		for i := 0; i < n; i++ {
			if _, err := w.Write(rec); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(3000) // about ten segments: rotations, and segments prepared
	first := w.ResetMaxima()
	if first.Rotations == 0 || first.MaxPrepareTime == 0 {
		t.Fatalf("before the reset: %+v, want rotations and a preparation time", first)
	}
	// The preparer may finish a segment, timing it and counting a reuse,
	// between a reset and the Stats after it. Without writes it finishes
	// at most the segments it keeps ahead (two) and then waits for a
	// rotation: of three resets in a row, one at least has no preparation
	// finishing between it and its Stats, and there everything holds.
	for try := 0; ; try++ {
		before := first
		if try > 0 {
			before = w.ResetMaxima()
		}
		after := w.Stats()
		var failed string
		switch {
		case after.MaxPrepareTime != 0 || after.MaxRotationWait != 0:
			failed = fmt.Sprintf("after the reset: longest preparation %v, longest wait %v, want 0", after.MaxPrepareTime, after.MaxRotationWait)
		case after.Rotations != before.Rotations || after.RotationWaits != before.RotationWaits || after.Reused != before.Reused:
			failed = fmt.Sprintf("counters changed by the reset: %+v, then %+v", before, after)
		}
		if failed == "" {
			break
		}
		if try == 2 {
			t.Fatalf("three resets in a row: %s", failed)
		}
	}
	write(3000)
	waitUntil(t, "a preparation timed after the reset (in the background)", func() bool { return w.Stats().MaxPrepareTime != 0 })
	if st := w.Stats(); st.Rotations <= first.Rotations {
		t.Fatalf("rotations after the reset: %d, want more than %d", st.Rotations, first.Rotations)
	}
}
