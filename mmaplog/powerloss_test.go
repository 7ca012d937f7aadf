package mmaplog_test

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/mmaplog/mmaplog/internal/fileutil"
	"github.com/mmaplog/mmaplog/mmaplog"
	"github.com/mmaplog/mmaplog/ring"
	"github.com/mmaplog/mmaplog/rotate"
	"github.com/mmaplog/mmaplog/tail"
)

// The tests here build, from a cleanly written log, what a disk holds
// after a power loss or after a crash of the writer process: the same
// bytes (zeros where records were reserved, nothing after some record), but
// a different lock file. A writer fills the lock file with its pid and the
// boot id and never fsyncs it: after a crash of the process it names this
// boot; after the machine restarted it names another one, or nothing.

// crashed makes the log in dir look as if its writer died without closing
// it, in a boot named boot ("" leaves the lock file empty).
func crashed(t *testing.T, dir, boot string) {
	t.Helper()
	last := segPath(dir, lastSegment(t, dir))
	patchFile(t, last, ring.OffState, func(b []byte) { binary.LittleEndian.PutUint32(b, uint32(ring.StateOpen)) })
	content := ""
	if boot != "" {
		content = "4242 " + boot + "\n"
	}
	if err := os.WriteFile(filepath.Join(dir, rotate.LockName), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func repairsOf(w *mmaplog.Writer, k mmaplog.RepairKind) []mmaplog.Repair {
	var out []mmaplog.Repair
	for _, r := range w.Recovery() {
		if r.Kind == k {
			out = append(out, r)
		}
	}
	return out
}

func damageAt(res readResult, seq uint64) (tail.Damage, bool) {
	for _, d := range res.damage {
		if d.Seq <= seq && seq < max(d.Resume, d.Seq+d.Lost) {
			return d, true
		}
	}
	return tail.Damage{}, false
}

// TestHolesAfterPowerLossAreLost: zeros where a record was, followed by
// records, are a write that never completed after a crash of the writer
// process (no record lost), but after a power loss they are a record whose
// page never reached the disk: Open reports it as lost (ErrPowerLoss), and
// so do readers. After a power loss Open also says where the log ends:
// records written after that and not flushed are lost, however many.
func TestHolesAfterPowerLossAreLost(t *testing.T) {
	for _, c := range []struct {
		name      string
		boot      string
		powerLoss bool
	}{
		{"power loss", "1e5a8c2e-0000-4000-8000-000000000000", true},
		{"power loss, lock file lost", "", true},
		{"writer process killed", fileutil.BootID(), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if !c.powerLoss && c.boot == "" {
				t.Fatal("this platform has no boot id")
			}
			dir := writeTestLog(t)
			last := segPath(dir, lastSegment(t, dir))
			offs, seqs := recordOffsets(t, last)
			k := len(offs) / 2
			hole := seqs[k]
			end := seqs[len(seqs)-3]
			patchFile(t, last, offs[k], func(b []byte) { clear(b[:4]) })
			patchFile(t, last, offs[len(offs)-3], func(b []byte) { clear(b) })
			crashed(t, dir, c.boot)

			w, err := mmaplog.Open(dir, &mmaplog.Options{SegmentSize: 64 << 10, MaxBackups: -1})
			if err != nil {
				t.Fatal(err)
			}
			holes := repairsOf(w, mmaplog.RepairHole)
			ends := repairsOf(w, mmaplog.RepairPowerLoss)
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if len(holes) != 1 || holes[0].Seq != hole || holes[0].Lost != 1 {
				t.Fatalf("hole repairs %v, want one at sequence %d", holes, hole)
			}
			if got := errors.Is(holes[0].Err, mmaplog.ErrPowerLoss); got != c.powerLoss {
				t.Errorf("the hole's cause %v: ErrPowerLoss %v, want %v", holes[0].Err, got, c.powerLoss)
			}
			switch {
			case c.powerLoss && (len(ends) != 1 || ends[0].Seq != end || !errors.Is(ends[0].Err, mmaplog.ErrPowerLoss)):
				t.Errorf("after a power loss Open reports %v, want where the log ends: sequence %d", ends, end)
			case !c.powerLoss && len(ends) != 0:
				t.Errorf("after a crash of the process Open reports a power loss: %v", ends)
			}

			res := readAll(t, dir)
			d, ok := damageAt(res, hole)
			switch {
			case !ok:
				t.Fatalf("the reader reports nothing at sequence %d: %v", hole, res.damage)
			case c.powerLoss && (d.Kind == tail.DamageUnfinished || d.Lost != 1):
				t.Fatalf("after a power loss the reader calls the hole %v with %d lost: %v", d.Kind, d.Lost, d)
			case !c.powerLoss && d.Kind != tail.DamageUnfinished:
				t.Fatalf("after a crash of the process the reader calls the hole %v: %v", d.Kind, d)
			}
		})
	}
}

// TestRolledSegmentEndAfterPowerLoss: a rolled segment whose last records
// did not reach the disk (a power loss before the finisher flushed it)
// lost as many records as the next segment's header says, and Open and
// readers count them; after a crash of the writer process the same zeros
// are writes that never completed.
func TestRolledSegmentEndAfterPowerLoss(t *testing.T) {
	for _, powerLoss := range []bool{true, false} {
		dir := writeTestLog(t)
		p := segPath(dir, 2)
		offs, seqs := recordOffsets(t, p)
		patchFile(t, p, ring.OffState, func(b []byte) { binary.LittleEndian.PutUint32(b, uint32(ring.StateOpen)) })
		patchFile(t, p, offs[len(offs)-3], func(b []byte) { clear(b) })
		boot := "1e5a8c2e-0000-4000-8000-000000000000"
		if !powerLoss {
			boot = fileutil.BootID()
		}
		crashed(t, dir, boot)
		w, err := mmaplog.Open(dir, &mmaplog.Options{SegmentSize: 64 << 10, MaxBackups: -1})
		if err != nil {
			t.Fatal(err)
		}
		unclosed := repairsOf(w, mmaplog.RepairUnclosed)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		first := seqs[len(seqs)-3]
		if len(unclosed) != 1 || unclosed[0].Seq != first {
			t.Fatalf("power loss %v: unclosed repairs %v, want one at sequence %d", powerLoss, unclosed, first)
		}
		wantLost := uint64(0)
		if powerLoss {
			wantLost = 3
		}
		if unclosed[0].Lost != wantLost || errors.Is(unclosed[0].Err, mmaplog.ErrPowerLoss) != powerLoss {
			t.Errorf("power loss %v: %v, want %d lost", powerLoss, unclosed[0], wantLost)
		}
		res := readAll(t, dir)
		d, ok := damageAt(res, first)
		switch {
		case !ok:
			t.Fatalf("power loss %v: the reader reports nothing at sequence %d: %v", powerLoss, first, res.damage)
		case powerLoss && (d.Kind == tail.DamageUnfinished || d.Lost != 3):
			t.Fatalf("after a power loss the reader calls the end of segment 2 %v with %d lost", d.Kind, d.Lost)
		case !powerLoss && d.Kind != tail.DamageUnfinished:
			t.Fatalf("after a crash of the process the reader calls the end of segment 2 %v", d.Kind)
		}
	}
}

// TestOpenAfterStaleReuse: the last segment's file holds the header of an
// older segment of the log: the file of a segment that retention removed,
// reused for the new last segment, whose header never reached the disk
// before the power went. Open removes it and goes on: nothing of the new
// segment is in it.
func TestOpenAfterStaleReuse(t *testing.T) {
	dir := writeTestLog(t)
	n := lastSegment(t, dir)
	old, err := os.ReadFile(segPath(dir, 1))
	if err != nil {
		t.Fatal(err)
	}
	_, prevSeqs := recordOffsets(t, segPath(dir, n-1))
	if err := os.WriteFile(segPath(dir, n), old, 0o600); err != nil {
		t.Fatal(err)
	}
	crashed(t, dir, "")
	if err := os.Remove(segPath(dir, 1)); err != nil { // the file was taken from there
		t.Fatal(err)
	}
	w, err := mmaplog.Open(dir, &mmaplog.Options{SegmentSize: 64 << 10, MaxBackups: -1})
	if err != nil {
		t.Fatalf("Open after a power loss with a reused file at the end: %v", err)
	}
	stale := repairsOf(w, mmaplog.RepairStaleReuse)
	next := prevSeqs[len(prevSeqs)-1] + 1
	seq, err := w.Append(mmaplog.LevelInfo, recordPayload(next))
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil || seq != next {
		t.Fatalf("append after recovery: seq %d, %v; want %d", seq, err, next)
	}
	if len(stale) != 1 || stale[0].Path != segPath(dir, n) || !errors.Is(stale[0].Err, mmaplog.ErrPowerLoss) {
		t.Fatalf("repairs %v, want the stale file reported", stale)
	}
	res := readAll(t, dir)
	if res.err != nil || len(res.seqs) == 0 || res.seqs[len(res.seqs)-1] != next {
		t.Fatalf("read %d records up to %v, %v; want them up to %d", len(res.seqs), res.seqs[len(res.seqs)-1:], res.err, next)
	}
}
