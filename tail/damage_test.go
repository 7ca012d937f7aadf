package tail_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/mmaplog/mmaplog/mmaplog"
	"github.com/mmaplog/mmaplog/ring"
	"github.com/mmaplog/mmaplog/rotate"
	"github.com/mmaplog/mmaplog/tail"
)

// damagedLog writes n records into one segment, closes the log, and flips
// a bit in the payload of every other record but the last: (n-1)/2 corrupt
// records, each a record lost. It returns the directory and the number of
// corrupt records.
func damagedLog(t *testing.T, n int) (string, int) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "log")
	w, err := mmaplog.Open(dir, &mmaplog.Options{SegmentSize: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if _, err := w.Append(mmaplog.LevelInfo, []byte("a record of a log damaged all over")); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, rotate.SegmentName(1))
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var offs []int64
	ring.Scan(b, 1, func(r ring.Record) bool { offs = append(offs, r.Offset); return true })
	if len(offs) != n {
		t.Fatalf("%d records in the segment, want %d", len(offs), n)
	}
	holes := 0
	for i := 1; i < n-1; i += 2 {
		b[offs[i]+ring.RecordHeaderSize] ^= 1
		holes++
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, holes
}

// TestDamageListBounded: a Reader, following or not, keeps the last
// DamageKept damaged ranges it met, however many it meets, and counts them
// all (DamageCount, Lost), exactly; OnDamage sees every one.
func TestDamageListBounded(t *testing.T) {
	dir, holes := damagedLog(t, 2*(tail.DamageKept+500)+1)
	for _, follow := range []bool{false, true} {
		seen := 0
		r, err := tail.Open(dir, &tail.Options{Follow: follow, OnDamage: func(tail.Damage) { seen++ }})
		if err != nil {
			t.Fatal(err)
		}
		read := 0
		for r.Next() {
			read++
		}
		if err := r.Err(); err != nil {
			t.Fatal(err)
		}
		ds := r.Damage()
		switch {
		case len(ds) != tail.DamageKept:
			t.Errorf("follow %v: %d damaged ranges kept, want the last %d of %d", follow, len(ds), tail.DamageKept, holes)
		case r.DamageCount() != uint64(holes) || r.Lost() != uint64(holes) || seen != holes:
			t.Errorf("follow %v: %d damaged ranges counted, %d records lost, %d told; want %d", follow, r.DamageCount(), r.Lost(), seen, holes)
		case ds[len(ds)-1].Seq != uint64(2*holes) || ds[0].Seq != uint64(2*(holes-tail.DamageKept+1)):
			t.Errorf("follow %v: kept the holes at %d to %d, want the last ones", follow, ds[0].Seq, ds[len(ds)-1].Seq)
		case read+holes != 2*holes+1:
			t.Errorf("follow %v: read %d records and %d lost of %d", follow, read, holes, 2*holes+1)
		}
		r.Close()
	}
}
