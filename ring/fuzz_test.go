package ring

import (
	"encoding/binary"
	"testing"
)

// FuzzDecode feeds arbitrary bytes and offsets to Decode: it must never
// panic or read out of bounds, and whatever it calls a record must be
// self-consistent.
func FuzzDecode(f *testing.F) {
	b, r := newRegion(f, 512, 1)
	r.Append(1, 2, []byte("seed record"))
	r.Append(0, 0, nil)
	f.Add(b[HeaderSize:], 0)
	f.Add([]byte{0, 0, 0, 0x80}, 0)
	f.Add(make([]byte, 64), 8)
	f.Fuzz(func(t *testing.T, data []byte, off int) {
		rec, kind, err := Decode(data, off)
		switch kind {
		case KindRecord, KindPadding:
			if err != nil || off < 0 || rec.Size < RecordHeaderSize || off+rec.Size > len(data) || rec.Size%Align != 0 {
				t.Fatalf("inconsistent %v: %+v err=%v len=%d", kind, rec, err, len(data))
			}
			if kind == KindRecord && RecordSize(len(rec.Payload)) != rec.Size {
				t.Fatalf("payload %d for size %d", len(rec.Payload), rec.Size)
			}
			lw := binary.LittleEndian.Uint32(data[off:])
			if lw&Committed == 0 {
				t.Fatal("accepted a record without the committed bit")
			}
		case KindCorrupt:
			if err == nil {
				t.Fatal("corrupt without an error")
			}
		}
	})
}

// FuzzScan runs the whole-region scanner (and with it Resync) over
// arbitrary regions: it must terminate without panicking, report ranges
// inside the region, and deliver only records that Decode accepts.
func FuzzScan(f *testing.F) {
	b, r := newRegion(f, 1024, 5)
	for i := 0; i < 6; i++ {
		r.Append(uint8(i), int64(i), []byte("fuzz seed payload"))
	}
	r.Seal(true, 0)
	f.Add(b, uint64(5))
	c := append([]byte(nil), b...)
	c[HeaderSize+50] ^= 0xff
	f.Add(c, uint64(5))
	f.Add(make([]byte, 300), uint64(0))
	f.Fuzz(func(t *testing.T, data []byte, first uint64) {
		res := Scan(data, first, func(rec Record) bool {
			if _, kind, err := Decode(data, int(rec.Offset)); kind != KindRecord || err != nil {
				t.Fatalf("scan delivered a record Decode rejects at %d", rec.Offset)
			}
			return true
		})
		if res.End > len(data) || res.DataEnd > res.End {
			t.Fatalf("end out of range: %+v len=%d", res, len(data))
		}
		for _, d := range res.Damage {
			if d.From < 0 || d.To > int64(len(data)) || d.From >= d.To {
				t.Fatalf("bad damage range %+v", d)
			}
		}
	})
}

// FuzzParseHeader: arbitrary headers are rejected cleanly or accepted
// consistently.
func FuzzParseHeader(f *testing.F) {
	b := make([]byte, HeaderSize)
	PutHeader(b, Header{Segment: 1, FirstSeq: 1, Size: HeaderSize})
	f.Add(b)
	f.Add(make([]byte, 10))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := ParseHeader(data, false)
		if err == nil && (h.Version != Version || h.Size < HeaderSize || h.Size > MaxRegionSize) {
			t.Fatalf("accepted %+v", h)
		}
	})
}
