package tail_test

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/mmaplog/mmaplog/ring"
	"github.com/mmaplog/mmaplog/rotate"
	"github.com/mmaplog/mmaplog/tail"
)

// FuzzLoadCursor: a cursor file of arbitrary content is loaded or refused
// with an error, never a panic, and what loads names a log and a record.
func FuzzLoadCursor(f *testing.F) {
	f.Add([]byte(`{"log_id":"00112233445566778899aabbccddeeff","next_seq":6,"segment":1,"offset":1000,"saved_ns":1}` + "\n"))
	f.Add([]byte(`{"log_id":"zz","next_seq":0}`))
	f.Add([]byte(`{"log_id":"00112233445566778899aabbccddeeff","next_seq":6,"extra":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "cursor")
		os.WriteFile(p, data, 0o600)
		c, err := tail.LoadCursor(p)
		if err == nil && c.NextSeq == 0 {
			t.Fatalf("loaded a cursor without a next record: %+v", c)
		}
	})
}

// FuzzReaderAndVerify: a log of two segments, the first with arbitrary
// bytes after a valid header, compressed or not. The Reader and Verify must
// not panic, must deliver only records whose checksum holds, and must count
// the same records lost; a valid second segment is always read.
func FuzzReaderAndVerify(f *testing.F) {
	const size = 8192
	seg := func(num, first uint64, n int) []byte {
		b := make([]byte, size)
		ring.PutHeader(b, ring.Header{Segment: num, FirstSeq: first, Size: size, LogID: [16]byte{1}})
		r, _ := ring.New(b, ring.HeaderSize, first, 0)
		for i := 0; i < n; i++ {
			r.Append(0, 0, []byte("fuzzed record payload"))
		}
		r.Seal(true, 0)
		ring.StoreState(b, ring.StateSealed)
		return b
	}
	good := seg(1, 1, 100)
	f.Add(good[ring.HeaderSize:], false, uint16(0))
	f.Add(good[ring.HeaderSize:], true, uint16(777))
	hole := append([]byte(nil), good[ring.HeaderSize:]...)
	binary.LittleEndian.PutUint32(hole[5*56:], 0)
	f.Add(hole, false, uint16(0))
	f.Fuzz(func(t *testing.T, body []byte, compressed bool, flip uint16) {
		if len(body) > size-ring.HeaderSize {
			body = body[:size-ring.HeaderSize]
		}
		dir := t.TempDir()
		first := make([]byte, size)
		copy(first, good[:ring.HeaderSize])
		copy(first[ring.HeaderSize:], body)
		if int(flip) < len(first) && flip >= ring.HeaderSize {
			first[flip] ^= 0x10
		}
		p1 := filepath.Join(dir, rotate.SegmentName(1))
		os.WriteFile(p1, first, 0o600)
		if compressed {
			if _, err := rotate.CompressSegment(rotate.FileInfo{Num: 1, Path: p1}); err != nil {
				return
			}
		}
		os.WriteFile(filepath.Join(dir, rotate.SegmentName(2)), seg(2, 101, 50), 0o600)

		r, err := tail.Open(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		var read, fromSecond int
		for r.Next() {
			rec := r.Record()
			if string(rec.Payload) != "fuzzed record payload" && rec.Segment == 2 {
				t.Fatalf("record %d of the valid segment is %q", rec.Seq, rec.Payload)
			}
			read++
			if rec.Segment == 2 {
				fromSecond++
			}
		}
		if r.Err() != nil {
			t.Fatalf("reader stopped: %v", r.Err())
		}
		r.Close()
		if fromSecond != 50 {
			t.Fatalf("read %d records of the valid second segment, want 50 (damage %v)", fromSecond, r.Damage())
		}
		rep, err := tail.Verify(dir)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Lost() != r.Lost() || rep.Records != uint64(read) {
			t.Fatalf("verify: %d records, %d lost; the reader %d records, %d lost (findings %v)", rep.Records, rep.Lost(), read, r.Lost(), rep.Findings)
		}
	})
}
