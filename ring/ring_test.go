package ring

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func newRegion(t testing.TB, size int, firstSeq uint64) ([]byte, *Ring) {
	t.Helper()
	b := make([]byte, size)
	PutHeader(b, Header{Segment: 1, FirstSeq: firstSeq, Created: 1, Size: uint64(size)})
	r, err := New(b, HeaderSize, firstSeq, 0)
	if err != nil {
		t.Fatal(err)
	}
	return b, r
}

func TestAppendDecodeRoundTrip(t *testing.T) {
	b, r := newRegion(t, 4096, 10)
	payloads := [][]byte{[]byte("hello"), {}, bytes.Repeat([]byte{0xAB}, 100), []byte("x")}
	var offs []int
	for i, p := range payloads {
		pos, err := r.Append(uint8(i), int64(1000+i), p)
		if err != nil {
			t.Fatal(err)
		}
		if pos.Seq != uint64(10+i) {
			t.Fatalf("seq %d, want %d", pos.Seq, 10+i)
		}
		if pos.Off%Align != 0 || pos.End-pos.Off != RecordSize(len(p)) {
			t.Fatalf("bad position %+v", pos)
		}
		offs = append(offs, pos.Off)
	}
	for i, p := range payloads {
		rec, kind, err := Decode(b, offs[i])
		if kind != KindRecord || err != nil {
			t.Fatalf("record %d: %v %v", i, kind, err)
		}
		if !bytes.Equal(rec.Payload, p) || rec.Seq != uint64(10+i) || rec.Time != int64(1000+i) || rec.Type != uint8(i) {
			t.Fatalf("record %d decoded as %+v", i, rec)
		}
	}
	res := Scan(b, 10, nil)
	if res.Records != 4 || res.NextSeq != 14 || len(res.Damage) != 0 || res.Full || res.TailFrom != 0 {
		t.Fatalf("scan: %+v", res)
	}
}

func TestAppendFillsAndPads(t *testing.T) {
	b, r := newRegion(t, 1024, 1)
	p := make([]byte, 60) // 96-byte records: 9 fit, 32 bytes left for the padding
	n := 0
	for {
		_, err := r.Append(0, 0, p)
		if errors.Is(err, ErrFull) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	end, count, padded := r.WaitSealed()
	if uint64(n) != count || !padded {
		t.Fatalf("n=%d count=%d padded=%v", n, count, padded)
	}
	res := Scan(b, 1, nil)
	if !res.Full || res.Records != uint64(n) || res.Padding != 1 || res.DataEnd != end || res.End != len(b) {
		t.Fatalf("scan: %+v end=%d", res, end)
	}
	if res.NextSeq != uint64(n)+1 {
		t.Fatalf("padding seq: next %d", res.NextSeq)
	}
	if _, err := r.Append(0, 0, p); !errors.Is(err, ErrFull) {
		t.Fatalf("append after seal: %v", err)
	}
}

func TestAppendTooLarge(t *testing.T) {
	_, r := newRegion(t, 1024, 1)
	if _, err := r.Append(0, 0, make([]byte, 1024)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v", err)
	}
	if _, err := r.Append(0, 0, make([]byte, MaxPayloadFor(1024))); err != nil {
		t.Fatalf("largest payload: %v", err)
	}
}

func TestSealWithoutPaddingLeavesRegionOpen(t *testing.T) {
	b, r := newRegion(t, 4096, 1)
	r.Append(0, 0, []byte("a"))
	end, padded := r.Seal(false, 0)
	if padded || end != HeaderSize+RecordSize(1) {
		t.Fatalf("end %d padded %v", end, padded)
	}
	if err := r.WaitReleased(0); err != nil {
		t.Fatal(err)
	}
	res := Scan(b, 1, nil)
	if res.Full || res.End != end || res.NextSeq != 2 {
		t.Fatalf("%+v", res)
	}
	// A new ring continues where the old one stopped.
	r2, err := New(b, res.End, 1, res.NextSeq-1)
	if err != nil {
		t.Fatal(err)
	}
	pos, _ := r2.Append(0, 0, []byte("b"))
	if pos.Seq != 2 || pos.Off != end {
		t.Fatalf("continued at %+v", pos)
	}
}

// TestConcurrentAppend: many goroutines fill a region; every record is
// there once, sequence numbers follow file order, the padding is last.
func TestConcurrentAppend(t *testing.T) {
	b, r := newRegion(t, 1<<20, 100)
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := map[uint64]int{}
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			p := make([]byte, 8+g*13)
			for i := 0; ; i++ {
				binary.LittleEndian.PutUint32(p, uint32(g))
				binary.LittleEndian.PutUint32(p[4:], uint32(i))
				pos, err := r.Append(uint8(g), 0, p)
				if errors.Is(err, ErrFull) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				got[pos.Seq] = pos.Off
				mu.Unlock()
			}
		}(g)
	}
	wg.Wait()
	if err := r.WaitReleased(0); err != nil {
		t.Fatal(err)
	}
	_, count, _ := r.WaitSealed()
	if uint64(len(got)) != count {
		t.Fatalf("%d appends returned, ring counted %d", len(got), count)
	}
	last := map[uint32]uint32{}
	prevOff := 0
	res := Scan(b, 100, func(rec Record) bool {
		if int(rec.Offset) < prevOff || got[rec.Seq] != int(rec.Offset) {
			t.Fatalf("seq %d at %d, Append said %d", rec.Seq, rec.Offset, got[rec.Seq])
		}
		prevOff = int(rec.Offset)
		g := binary.LittleEndian.Uint32(rec.Payload)
		i := binary.LittleEndian.Uint32(rec.Payload[4:])
		if n, ok := last[g]; ok && i != n+1 {
			t.Fatalf("goroutine %d: record %d after %d", g, i, n)
		}
		last[g] = i
		return true
	})
	if res.Records != count || !res.Full || len(res.Damage) != 0 {
		t.Fatalf("scan: %+v", res)
	}
}

func TestHeaderErrors(t *testing.T) {
	b := make([]byte, 4096)
	if _, err := ParseHeader(b, true); !errors.Is(err, ErrNotStarted) {
		t.Fatalf("zero header: %v", err)
	}
	PutHeader(b, Header{Segment: 7, FirstSeq: 9, Created: 3, Size: 4096})
	h, err := ParseHeader(b, true)
	if err != nil || h.Segment != 7 || h.FirstSeq != 9 || h.Size != 4096 {
		t.Fatalf("%+v %v", h, err)
	}
	for _, tc := range []struct {
		name  string
		mod   func([]byte) []byte
		cause error
	}{
		{"magic", func(b []byte) []byte { b[0] = 'X'; return b }, ErrBadMagic},
		{"version", func(b []byte) []byte { b[8] = 2; return b }, ErrVersion},
		{"crc", func(b []byte) []byte { b[20] ^= 1; return b }, ErrChecksum},
		{"short", func(b []byte) []byte { return b[:100] }, ErrShort},
		{"size mismatch", func(b []byte) []byte { return b[:2048] }, ErrShort},
	} {
		c := append([]byte(nil), b...)
		_, err := ParseHeader(tc.mod(c), true)
		var ce *CorruptionError
		if !errors.Is(err, tc.cause) || !errors.As(err, &ce) {
			t.Errorf("%s: got %v, want %v in a CorruptionError", tc.name, err, tc.cause)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	b, r := newRegion(t, 4096, 1)
	pos, _ := r.Append(3, 5, []byte("payload"))
	cases := []struct {
		name  string
		mod   func(b []byte)
		kind  Kind
		cause error
	}{
		{"flipped payload bit", func(b []byte) { b[pos.Off+33] ^= 4 }, KindCorrupt, ErrChecksum},
		{"flipped length", func(b []byte) { b[pos.Off] ^= 1 }, KindCorrupt, ErrBadLength},
		{"flipped length copy", func(b []byte) { b[pos.Off+28] ^= 1 }, KindCorrupt, ErrBadLength},
		{"huge length", func(b []byte) { binary.LittleEndian.PutUint32(b[pos.Off:], Committed|0x3fffffff) }, KindCorrupt, ErrBadLength},
		{"no commit bit", func(b []byte) { b[pos.Off+3] &^= 0x80 }, KindCorrupt, ErrBadFlags},
		{"zeroed", func(b []byte) { clear(b[pos.Off : pos.Off+8]) }, KindEmpty, nil},
		{"seq changed", func(b []byte) { b[pos.Off+8]++ }, KindCorrupt, ErrChecksum},
	}
	for _, tc := range cases {
		c := append([]byte(nil), b...)
		tc.mod(c)
		_, kind, err := Decode(c, pos.Off)
		if kind != tc.kind || (tc.cause != nil && !errors.Is(err, tc.cause)) {
			t.Errorf("%s: got %v %v, want %v %v", tc.name, kind, err, tc.kind, tc.cause)
		}
	}
	if _, kind, err := Decode(b, pos.Off+4); kind != KindCorrupt || !errors.Is(err, ErrBadLength) {
		t.Errorf("misaligned offset: %v %v", kind, err)
	}
	if _, kind, _ := Decode(b, len(b)-8); kind != KindEnd {
		t.Errorf("offset near the end: %v", kind)
	}
	if _, kind, _ := Decode(b, -8); kind != KindCorrupt {
		t.Errorf("negative offset: %v", kind)
	}
}

// TestScanSkipsProvableDamage: a hole and a corrupt record in the middle are
// skipped because valid records with fitting sequence numbers follow; a torn
// tail is reported as garbage, not skipped.
func TestScanSkipsProvableDamage(t *testing.T) {
	b, r := newRegion(t, 8192, 1)
	var pos []Pos
	for i := 0; i < 10; i++ {
		p, _ := r.Append(0, 0, bytes.Repeat([]byte{byte('a' + i)}, 20+i))
		pos = append(pos, p)
	}
	// A hole: record 3's length word never stored (its bytes are there).
	binary.LittleEndian.PutUint32(b[pos[2].Off:], 0)
	// A corrupt record: record 6's payload flipped.
	b[pos[5].Off+40] ^= 0xff
	// A torn tail: record 10 half written, length word zero.
	binary.LittleEndian.PutUint32(b[pos[9].Off:], 0)

	var seqs []uint64
	res := Scan(b, 1, func(rec Record) bool { seqs = append(seqs, rec.Seq); return true })
	want := []uint64{1, 2, 4, 5, 7, 8, 9}
	if !equalU64(seqs, want) {
		t.Fatalf("read %v, want %v", seqs, want)
	}
	if len(res.Damage) != 2 {
		t.Fatalf("damage %+v", res.Damage)
	}
	if d := res.Damage[0]; d.From != int64(pos[2].Off) || d.To != int64(pos[3].Off) || !errors.Is(d.Err, ErrHole) || d.Seq != 3 {
		t.Errorf("hole: %+v", d)
	}
	if d := res.Damage[1]; d.From != int64(pos[5].Off) || d.To != int64(pos[6].Off) || !errors.Is(d.Err, ErrChecksum) {
		t.Errorf("corrupt: %+v", d)
	}
	if res.End != pos[9].Off || res.TailFrom != pos[9].Off || res.TailTo <= res.TailFrom || res.NextSeq != 10 {
		t.Errorf("tail: %+v", res)
	}
}

// TestResyncRequiresFittingSequence: a valid record whose sequence number
// cannot fit the skipped bytes (a stale or foreign record) is not accepted.
func TestResyncRequiresFittingSequence(t *testing.T) {
	b, r := newRegion(t, 4096, 1)
	p0, _ := r.Append(0, 0, []byte("first"))
	r.Append(0, 0, []byte("second"))
	binary.LittleEndian.PutUint32(b[p0.Off:], 0)
	if _, ok, _ := Resync(b, p0.Off, p0.Off, 1); !ok {
		t.Fatal("record 2 after a one-record hole should be provable")
	}
	if _, ok, _ := Resync(b, p0.Off, p0.Off, 50); ok {
		t.Fatal("a record with sequence 2 cannot follow when 50 is expected")
	}
	// Sequence 1000 cannot follow 1 after a hole of one record.
	b2, r2 := newRegion(t, 4096, 1000)
	q, _ := r2.Append(0, 0, []byte("x"))
	copy(b[p0.Off+RecordSize(5)+RecordSize(6):], b2[q.Off:q.End])
	binary.LittleEndian.PutUint32(b[p0.Off+RecordSize(5):], 0) // hide record 2
	if off, ok, _ := Resync(b, p0.Off, p0.Off, 1); ok {
		t.Fatalf("accepted a record at %d whose sequence does not fit", off)
	}
}

// TestGoldenSegment pins the format: a segment built from fixed inputs must
// match testdata/golden-segment.mlog byte for byte. Set
// MMAPLOG_UPDATE_GOLDEN=1 to regenerate it after a deliberate change.
func TestGoldenSegment(t *testing.T) {
	const size = 1024
	b := make([]byte, size)
	PutHeader(b, Header{Segment: 42, FirstSeq: 1000, Created: 1700000000123456789, Size: size,
		LogID: [16]byte{0x6d, 0x6d, 0x61, 0x70, 0x6c, 0x6f, 0x67, 0x2d, 0x67, 0x6f, 0x6c, 0x64, 0x65, 0x6e, 0x21, 0x21}})
	r, err := New(b, HeaderSize, 1000, 0)
	if err != nil {
		t.Fatal(err)
	}
	r.Append(3, 1700000000200000000, []byte(`{"level":"info","msg":"hello"}`))
	r.Append(0, 1700000000300000000, []byte{})
	r.Append(5, 1700000000400000000, []byte("plain text, no level"))
	r.Seal(true, 1700000000500000000)
	path := filepath.Join("testdata", "golden-segment.mlog")
	if os.Getenv("MMAPLOG_UPDATE_GOLDEN") != "" {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with MMAPLOG_UPDATE_GOLDEN=1 to create it)", err)
	}
	if !bytes.Equal(b, want) {
		for i := range b {
			if i >= len(want) || b[i] != want[i] {
				t.Fatalf("format changed: first difference at byte %d; if deliberate, bump ring.Version, update docs/FORMAT.md and regenerate with MMAPLOG_UPDATE_GOLDEN=1", i)
			}
		}
	}
	// And the golden file reads back as written.
	h, err := ParseHeader(want, true)
	if err != nil || h.Segment != 42 || h.FirstSeq != 1000 {
		t.Fatalf("golden header: %+v %v", h, err)
	}
	var got []string
	res := Scan(want, h.FirstSeq, func(rec Record) bool { got = append(got, string(rec.Payload)); return true })
	if len(got) != 3 || got[0] != `{"level":"info","msg":"hello"}` || got[1] != "" || !res.Full || res.NextSeq != 1003 {
		t.Fatalf("golden records %q, %+v", got, res)
	}
}

func equalU64(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
