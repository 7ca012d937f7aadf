package tail_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mmaplog/mmaplog/internal/frozenwriter"
	"github.com/mmaplog/mmaplog/mmaplog"
	"github.com/mmaplog/mmaplog/ring"
	"github.com/mmaplog/mmaplog/rotate"
	"github.com/mmaplog/mmaplog/tail"
)

// followUntil reads r until done says so, failing on an error or when ctx
// ends first; it returns the sequence numbers read.
func followUntil(t *testing.T, ctx context.Context, r *tail.Reader, seqs []uint64, done func([]uint64) bool) []uint64 {
	t.Helper()
	for !done(seqs) {
		if r.Next() {
			seqs = append(seqs, r.Record().Seq)
			if string(r.Record().Payload) != string(frozenwriter.Payload(r.Record().Seq)) {
				t.Fatalf("record %d: payload %q", r.Record().Seq, r.Record().Payload)
			}
			continue
		}
		if err := r.Err(); err != nil {
			t.Fatal(err)
		}
		if err := r.Wait(ctx); err != nil {
			t.Fatalf("after reading %v: %v (damage %v)", seqs, err, r.Damage())
		}
	}
	return seqs
}

// seqText is seqRange (seek_test.go) as printed.
func seqText(from, to uint64) string { return fmt.Sprint(seqRange(from, to)) }

// TestFollowFrozenWriter: a writer process stopped with SIGSTOP between
// reserving record 11 and writing it, with records 12 to 20 written after
// it, for far longer than HoleWait. The follower reads 1 to 10 and waits at
// 11: it reports the stall (naming the writer's pid and the record), again
// while it lasts, and reads nothing past it. Once the writer is continued
// (SIGCONT) the follower reads 11 to 30 in order: nothing lost, no damage.
func TestFollowFrozenWriter(t *testing.T) {
	dir := t.TempDir()
	cmd, stdin := frozenwriter.Start(t, dir)
	const holeWait = 20 * time.Millisecond
	var stalls []tail.Stall
	r, err := tail.Open(dir, &tail.Options{Follow: true, HoleWait: holeWait, OnStall: func(s tail.Stall) { stalls = append(stalls, s) }})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // catches a hang only
	defer cancel()
	// Until the follower has looked past record 11 three times, finding
	// 12 to 20 written after it each time: every look is a report.
	seqs := followUntil(t, ctx, r, nil, func(seqs []uint64) bool {
		if len(seqs) > 0 && seqs[len(seqs)-1] > frozenwriter.Before {
			t.Fatalf("read %v while the writer, stopped, has not written record %d (damage %v)", seqs, frozenwriter.Seq, r.Damage())
		}
		return len(stalls) >= 3
	})
	if fmt.Sprint(seqs) != seqText(1, frozenwriter.Before) || len(r.Damage()) != 0 {
		t.Fatalf("with the writer stopped: read %v, damage %v", seqs, r.Damage())
	}
	path := filepath.Join(dir, rotate.SegmentName(1))
	for i, s := range stalls {
		if s.Seq != frozenwriter.Seq || s.PID != cmd.Process.Pid || s.Path != path || s.Over || s.Waited < holeWait || (i > 0 && s.Waited <= stalls[i-1].Waited) {
			t.Fatalf("stall report %d: %+v; want record %d, pid %d, %s, waited over %v and growing", i, s, frozenwriter.Seq, cmd.Process.Pid, path, holeWait)
		}
	}
	msg := stalls[0].String()
	for _, want := range []string{fmt.Sprint("record ", frozenwriter.Seq), fmt.Sprint("process ", cmd.Process.Pid), path, "waiting"} {
		if !strings.Contains(msg, want) {
			t.Fatalf("stall message %q does not say %q", msg, want)
		}
	}

	// Continued, the writer writes 11 and then 21 to 30.
	if err := cmd.Process.Signal(unix.SIGCONT); err != nil {
		t.Fatal(err)
	}
	seqs = followUntil(t, ctx, r, seqs, func(seqs []uint64) bool { return seqs[len(seqs)-1] >= frozenwriter.Last })
	if fmt.Sprint(seqs) != seqText(1, frozenwriter.Last) || len(r.Damage()) != 0 || r.Lost() != 0 {
		t.Fatalf("after SIGCONT: read %v, damage %v, lost %d", seqs, r.Damage(), r.Lost())
	}
	last := stalls[len(stalls)-1]
	if !last.Over || !last.Published || last.Seq != frozenwriter.Seq || !strings.Contains(last.String(), "reading on") {
		t.Fatalf("the last stall report is %+v (%s); want the wait for %d over, the record written", last, last, frozenwriter.Seq)
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("frozen writer: %v", err)
	}
}

// TestFollowFrozenWriterKilled: the stopped writer is killed (SIGKILL)
// instead of continued. Its lock is gone and records 12 to 20 prove where
// reading resumes: the follower skips record 11, reporting an unfinished
// write (its Write never returned: no record lost), ends the stall report,
// and reads 12 to 20.
func TestFollowFrozenWriterKilled(t *testing.T) {
	dir := t.TempDir()
	cmd, _ := frozenwriter.Start(t, dir)
	var stalls []tail.Stall
	r, err := tail.Open(dir, &tail.Options{Follow: true, HoleWait: 20 * time.Millisecond, OnStall: func(s tail.Stall) { stalls = append(stalls, s) }})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // catches a hang only
	defer cancel()
	seqs := followUntil(t, ctx, r, nil, func(seqs []uint64) bool {
		if len(seqs) > 0 && seqs[len(seqs)-1] > frozenwriter.Before {
			t.Fatalf("read %v while the writer, stopped, has not written record %d (damage %v)", seqs, frozenwriter.Seq, r.Damage())
		}
		return len(stalls) >= 1
	})
	cmd.Process.Kill()
	cmd.Wait()
	seqs = followUntil(t, ctx, r, seqs, func(seqs []uint64) bool { return seqs[len(seqs)-1] >= frozenwriter.After })
	want := seqText(1, frozenwriter.Before) + seqText(frozenwriter.Seq+1, frozenwriter.After)
	if got := fmt.Sprint(seqs[:frozenwriter.Before]) + fmt.Sprint(seqs[frozenwriter.Before:]); got != want {
		t.Fatalf("read %v", seqs)
	}
	ds := r.Damage()
	if len(ds) != 1 || ds[0].Kind != tail.DamageUnfinished || ds[0].Seq != frozenwriter.Seq || ds[0].Resume != frozenwriter.Seq+1 || r.Lost() != 0 {
		t.Fatalf("damage %v, lost %d; want record %d reported as an unfinished write, nothing lost", ds, r.Lost(), frozenwriter.Seq)
	}
	last := stalls[len(stalls)-1]
	if !last.Over || last.Published || last.Seq != frozenwriter.Seq {
		t.Fatalf("the last stall report is %+v; want the wait for %d over, the record not written", last, frozenwriter.Seq)
	}
}

// TestReaderAfterPowerLoss: record 11 was reserved and never written, with
// 12 to 20 written after it, and the writer is gone. Whether that is a
// write that never completed (no record lost) or a record lost depends on
// whether the machine went down meanwhile: the lock file, which a writer
// fills with its pid and the boot id and never fsyncs, tells. In this
// boot: an unfinished write. Naming another boot, or empty (its contents
// lost with the page cache): record 11 lost, because of the power loss. A
// lock file of an earlier version (a pid, no boot id) reads as before.
func TestReaderAfterPowerLoss(t *testing.T) {
	dir := t.TempDir()
	cmd, _ := frozenwriter.Start(t, dir)
	cmd.Process.Kill()
	cmd.Wait()
	lock := filepath.Join(dir, rotate.LockName)
	read := func() ([]uint64, []tail.Damage, uint64) {
		t.Helper()
		r, err := tail.Open(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		var seqs []uint64
		for r.Next() {
			seqs = append(seqs, r.Record().Seq)
		}
		if err := r.Err(); err != nil {
			t.Fatal(err)
		}
		return seqs, r.Damage(), r.Lost()
	}
	want := seqText(1, frozenwriter.Before) + seqText(frozenwriter.Seq+1, frozenwriter.After)
	for _, c := range []struct {
		name, lock string // "" leaves the writer's own
		lost       bool
	}{
		{name: "crash in this boot"},
		{name: "earlier version's lock file", lock: fmt.Sprintf("%d\n", cmd.Process.Pid)},
		{name: "another boot", lock: fmt.Sprintf("%d 00000000-0000-0000-0000-000000000000\n", cmd.Process.Pid), lost: true},
		{name: "lock file emptied", lock: "-", lost: true},
	} {
		if c.lock == "-" {
			c.lock = ""
		}
		if c.name != "crash in this boot" {
			if err := os.WriteFile(lock, []byte(c.lock), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		seqs, ds, lost := read()
		if got := fmt.Sprint(seqs[:frozenwriter.Before]) + fmt.Sprint(seqs[frozenwriter.Before:]); got != want {
			t.Fatalf("%s: read %v", c.name, seqs)
		}
		if len(ds) != 1 || ds[0].Seq != frozenwriter.Seq || ds[0].Resume != frozenwriter.Seq+1 {
			t.Fatalf("%s: damage %v; want one range at record %d", c.name, ds, frozenwriter.Seq)
		}
		if !c.lost {
			if ds[0].Kind != tail.DamageUnfinished || lost != 0 {
				t.Fatalf("%s: damage %v, %d lost; want an unfinished write, nothing lost", c.name, ds, lost)
			}
			continue
		}
		if ds[0].Kind != tail.DamageHole || lost != 1 || !errors.Is(ds[0].Err, ring.ErrPowerLoss) {
			t.Fatalf("%s: damage %v (%v), %d lost; want record %d lost to the power loss", c.name, ds, ds[0].Err, lost, frozenwriter.Seq)
		}
	}
}

// TestReaderRolledSegmentAfterPowerLoss: a rolled segment whose writer never
// finished it (its state word open) and whose last records are zeros, with
// the next segment after it: after a crash of the writer's process those
// zeros would be writes never completed; with the lock file naming another
// boot they are records that never reached the disk, and the reader counts
// them lost, for the power loss.
func TestReaderRolledSegmentAfterPowerLoss(t *testing.T) {
	dir := t.TempDir()
	w, err := mmaplog.Open(dir, &mmaplog.Options{SegmentSize: 16 << 10, MaxBackups: -1})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 200; i++ {
		if _, err := w.Write([]byte(fmt.Sprintf("record %03d, padded to a hundred bytes ...................................................", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	first := filepath.Join(dir, rotate.SegmentName(1))
	f, err := os.OpenFile(first, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Its state word back to open, as a writer that never rolled it
	// left it, and its second half zeroed, as pages that never reached
	// the disk.
	if _, err := f.WriteAt(make([]byte, 4), ring.OffState); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(make([]byte, 8<<10), 8<<10); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.WriteFile(filepath.Join(dir, rotate.LockName), []byte("4242 00000000-0000-0000-0000-000000000000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := tail.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	n := uint64(0)
	for r.Next() {
		n++
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	ds := r.Damage()
	if len(ds) != 1 || !errors.Is(ds[0].Err, ring.ErrPowerLoss) || ds[0].Lost == 0 || n+r.Lost() != 200 {
		t.Fatalf("read %d, damage %v, %d lost; want the end of segment 1 lost to the power loss, read and lost adding up to 200", n, ds, r.Lost())
	}
}
