package ring

import (
	"encoding/binary"
	"hash/crc32"
	"testing"
)

// The record checksum covers the body and then the length word's four
// little-endian bytes; recordCRC folds the latter in by hand to stay off
// the heap. It must equal the plain computation.
func TestRecordCRCMatchesCRC32(t *testing.T) {
	body := []byte("a body of some length, with a timestamp and a type byte in front")
	for _, lw := range []uint32{0, 1, 0x80000000 | 64, 0xffffffff, 0x12345678} {
		var l [4]byte
		binary.LittleEndian.PutUint32(l[:], lw)
		want := crc32.Update(crc32.Update(0, castagnoli, body), castagnoli, l[:])
		if got := recordCRC(lw, body); got != want {
			t.Errorf("recordCRC(%#x) = %#x, want %#x", lw, got, want)
		}
	}
}

// Writing a record must not allocate: Write's zero-allocation promise rests
// on it.
func TestPutRecordDoesNotAllocate(t *testing.T) {
	p := []byte(`{"level":"info","msg":"order placed"}`)
	dst := make([]byte, RecordSize(len(p)))
	if n := testing.AllocsPerRun(1000, func() { PutRecord(dst, 7, 1, 1, p) }); n != 0 {
		t.Fatalf("PutRecord: %v allocations per record, want 0", n)
	}
}
