package tail_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/mmaplog/mmaplog/ring"
	"github.com/mmaplog/mmaplog/rotate"
	"github.com/mmaplog/mmaplog/tail"
)

// FuzzSeek: a log of two segments, the first of 64 KiB with arbitrary bytes
// written over part of it (after its header), the second valid. Since,
// Last and MinLevel, forward and newest first, must not panic nor stop on
// an error, must deliver records in sequence order (newest first: reversed),
// and forward and newest first must deliver the same records; Last delivers
// at most its count, the newest record among them.
func FuzzSeek(f *testing.F) {
	const size = 64 << 10
	seg := func(num, first uint64, n int) []byte {
		b := make([]byte, size)
		ring.PutHeader(b, ring.Header{Segment: num, FirstSeq: first, Size: size, LogID: [16]byte{1}})
		r, _ := ring.New(b, ring.HeaderSize, first, 0)
		for i := 0; i < n; i++ {
			seq := first + uint64(i)
			r.Append(uint8(seq%8), int64(seq)*1000, payload(int(seq), 20+int(seq%300)))
		}
		r.Seal(true, 0)
		ring.StoreState(b, ring.StateSealed)
		return b
	}
	good := seg(1, 1, 300)
	second := seg(2, 301, 100)
	f.Add([]byte{}, uint16(0), int64(150_000), uint16(0), uint8(0), uint8(0))
	f.Add([]byte{}, uint16(0), int64(299_500), uint16(20), uint8(3), uint8(1))
	f.Add(make([]byte, 1000), uint16(20000), int64(100_000), uint16(5), uint8(0), uint8(2))
	f.Add([]byte{0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01}, uint16(30000), int64(200_000), uint16(0), uint8(5), uint8(0))
	f.Add(append([]byte(nil), good[40000:42000]...), uint16(10000), int64(250_000), uint16(7), uint8(0), uint8(1))
	f.Fuzz(func(t *testing.T, patch []byte, at uint16, since int64, last uint16, level uint8, mode uint8) {
		if len(patch) > 4096 {
			patch = patch[:4096]
		}
		dir := t.TempDir()
		first := append([]byte(nil), good...)
		copy(first[ring.HeaderSize+int(at)%(size-ring.HeaderSize):], patch)
		os.WriteFile(filepath.Join(dir, rotate.SegmentName(1)), first, 0o600)
		os.WriteFile(filepath.Join(dir, rotate.SegmentName(2)), second, 0o600)
		o := tail.Options{MinLevel: ring.Level(level % 8), Last: int(last % 400)}
		switch mode % 3 {
		case 0:
			o.Since = time.Unix(0, since)
		case 1:
			o.Last = max(o.Last, 1)
		case 2:
			o.Since, o.Last = time.Unix(0, since), 0
		}
		r, err := tail.Open(dir, &o)
		if err != nil {
			t.Fatal(err)
		}
		var fwd []uint64
		for r.Next() {
			rec := r.Record()
			if len(fwd) > 0 && rec.Seq <= fwd[len(fwd)-1] {
				t.Fatalf("record %d after %d", rec.Seq, fwd[len(fwd)-1])
			}
			fwd = append(fwd, rec.Seq)
		}
		if err := r.Err(); err != nil {
			t.Fatalf("reader stopped: %v", err)
		}
		r.Close()
		rr, err := tail.OpenReverse(dir, &o)
		if err != nil {
			t.Fatal(err)
		}
		var back []uint64
		for rr.Next() {
			back = append(back, rr.Record().Seq)
		}
		if err := rr.Err(); err != nil {
			t.Fatalf("reverse reader stopped: %v", err)
		}
		rr.Close()
		slices.Reverse(back)
		if !slices.Equal(fwd, back) {
			t.Fatalf("%+v: forward %v, newest first (reversed) %v", o, fwd, back)
		}
		if o.Last > 0 && len(fwd) > o.Last {
			t.Fatalf("Last %d delivered %d records", o.Last, len(fwd))
		}
		if o.Last > 0 && o.MinLevel == 0 && len(fwd) > 0 && fwd[len(fwd)-1] != 400 {
			t.Fatalf("Last %d ends at record %d, the newest is 400", o.Last, fwd[len(fwd)-1])
		}
	})
}
