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

// FuzzWalkWindows walks a region whole, and again as a compressed segment's
// reader does, through a window that starts at each record and holds at
// least the record (the rest of the region at damage): both walks must take
// the same steps, and every record they return must be one Decode accepts.
func FuzzWalkWindows(f *testing.F) {
	b, r := newRegion(f, 2048, 7)
	for i := 0; i < 12; i++ {
		r.Append(uint8(i), int64(i), []byte("a payload of the seed region"))
	}
	r.Seal(true, 0)
	f.Add(b, uint64(7), uint16(64))
	c := append([]byte(nil), b...)
	c[HeaderSize+200] ^= 0x40
	f.Add(c, uint64(7), uint16(8))
	d := append([]byte(nil), b...)
	clear(d[HeaderSize+96 : HeaderSize+100])
	f.Add(d, uint64(7), uint16(300))
	f.Fuzz(walkWindows)
}

func walkWindows(t *testing.T, data []byte, first uint64, win uint16) {
	if len(data) < HeaderSize || len(data) > 1<<14 {
		return // (the walk costs the square of the region's length at worst)
	}
	whole := NewWalker(first)
	part := NewWalker(first)
	for steps := 0; steps < 10000; steps++ {
		a := whole.Next(data, 0, true)
		// The window a stream would hold at part.Pos.
		from := int(part.Pos) &^ (Align - 1)
		to := min(len(data), from+int(win)+RecordHeaderSize)
		if from+8 <= len(data) {
			lw := binary.LittleEndian.Uint32(data[from:])
			if lw&Committed != 0 && lw&Padding == 0 {
				to = max(to, min(len(data), from+RecordSize(int(lw&lengthMask))))
			} else {
				to = len(data)
			}
		}
		if from > len(data) {
			from = len(data)
		}
		saved := part
		p := part.Next(data[from:to], int64(from), true)
		if p.Kind == StepDamage && p.Damage.To < 0 && to < len(data) {
			// What the reader does: look past it in the rest.
			part = saved
			p = part.Next(data[from:], int64(from), true)
		}
		if a.Kind != p.Kind || a.Record.Offset != p.Record.Offset || a.Record.Seq != p.Record.Seq || a.Gap != p.Gap ||
			a.Damage.From != p.Damage.From || a.Damage.Resume != p.Damage.Resume || whole.Pos != part.Pos || whole.Seq != part.Seq {
			t.Fatalf("step %d: whole %v %+v at %d, window [%d,%d) %v %+v at %d", steps, a.Kind, a.Damage, whole.Pos, from, to, p.Kind, p.Damage, part.Pos)
		}
		if a.Kind == StepRecord {
			if _, kind, _ := Decode(data, int(a.Record.Offset)); kind != KindRecord {
				t.Fatalf("walked a record Decode rejects at %d", a.Record.Offset)
			}
		}
		if a.Kind == StepEmpty || a.Kind == StepEnd || a.Kind == StepDamage && a.Damage.To < 0 {
			return
		}
		if a.Kind == StepDamage && (a.Damage.To <= a.Damage.From || a.Damage.Resume < a.Damage.Seq) {
			t.Fatalf("bad damage %+v", a.Damage)
		}
	}
	t.Fatal("the walk did not end")
}

// FuzzCheckSegmentHeader: the header validator accepts only headers that
// name the segment and fit the file.
func FuzzCheckSegmentHeader(f *testing.F) {
	b := make([]byte, HeaderSize)
	PutHeader(b, Header{Segment: 3, FirstSeq: 1, Size: 4096})
	f.Add(b, uint64(3), int64(4096))
	f.Add(b, uint64(4), int64(100))
	f.Fuzz(func(t *testing.T, data []byte, num uint64, n int64) {
		h, truncated, err := CheckSegmentHeader(data, num, n)
		if err != nil {
			return
		}
		if h.Segment != num || n >= 0 && uint64(n) > h.Size || truncated != (n >= 0 && uint64(n) < h.Size) {
			t.Fatalf("accepted %+v for segment %d of %d bytes (truncated %v)", h, num, n, truncated)
		}
	})
}
