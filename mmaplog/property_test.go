package mmaplog_test

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/mmaplog/mmaplog/mmaplog"
	"github.com/mmaplog/mmaplog/tail"
)

// TestConcurrentWritersAcrossRotations: many goroutines append records of
// random sizes through many rotations; every record must come back exactly
// once, intact, in per-goroutine order, with sequence numbers without gaps.
func TestConcurrentWritersAcrossRotations(t *testing.T) {
	const (
		goroutines = 16
		perG       = 3000
	)
	dir := t.TempDir()
	w, err := mmaplog.Open(dir, &mmaplog.Options{SegmentSize: 64 << 10, MaxBackups: -1, MaxRecordSize: 4000})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			buf := make([]byte, 4000)
			for i := 0; i < perG; i++ {
				n := 16 + rng.IntN(200)
				if rng.IntN(50) == 0 {
					n = 16 + rng.IntN(3900)
				}
				binary.LittleEndian.PutUint32(buf[0:], uint32(g))
				binary.LittleEndian.PutUint32(buf[4:], uint32(i))
				binary.LittleEndian.PutUint32(buf[8:], uint32(n))
				for j := 16; j < n; j++ {
					buf[j] = byte(g*31 + i + j)
				}
				if _, err := w.Append(mmaplog.LevelInfo, buf[:n]); err != nil {
					t.Errorf("goroutine %d record %d: %v", g, i, err)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	st := w.Stats()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if st.Rotations < 100 {
		t.Errorf("only %d rotations; the test wants many", st.Rotations)
	}
	r, err := tail.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	next := make([]int, goroutines)
	var seq uint64
	n := 0
	for r.Next() {
		rec := r.Record()
		if seq != 0 && rec.Seq != seq+1 {
			t.Fatalf("sequence %d after %d", rec.Seq, seq)
		}
		seq = rec.Seq
		p := rec.Payload
		g := int(binary.LittleEndian.Uint32(p[0:]))
		i := int(binary.LittleEndian.Uint32(p[4:]))
		size := int(binary.LittleEndian.Uint32(p[8:]))
		if g >= goroutines || size != len(p) {
			t.Fatalf("record %d: bad payload header g=%d len=%d want %d", rec.Seq, g, len(p), size)
		}
		if i != next[g] {
			t.Fatalf("goroutine %d: record %d read where %d was expected", g, i, next[g])
		}
		next[g]++
		for j := 16; j < len(p); j++ {
			if p[j] != byte(g*31+i+j) {
				t.Fatalf("record %d (goroutine %d #%d): byte %d corrupt", rec.Seq, g, i, j)
			}
		}
		if rec.Type != uint8(mmaplog.LevelInfo) {
			t.Fatalf("record %d: type %d", rec.Seq, rec.Type)
		}
		n++
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if len(r.Damage()) > 0 {
		t.Fatalf("damage: %v", r.Damage())
	}
	if n != goroutines*perG {
		t.Fatalf("read %d records, wrote %d", n, goroutines*perG)
	}
	t.Log(fmt.Sprintf("%d records, %d rotations, max rotation wait %v", n, st.Rotations, st.MaxRotationWait))
}
