package header

import (
	"encoding/binary"
	"hash/crc32"
	"testing"
)

var testFormat = Format{Magic: [8]byte{'T', 'E', 'S', 'T', 0, 0, 0, 1}, Version: 3, Size: 32, CRCFrom: 0, CRCAt: 28}

// TestSealAndPublish: a sealed header reads back, its CRC covers the magic
// Publish stores (CRCFrom 0) or starts after it, and any flipped bit in the
// covered bytes changes it.
func TestSealAndPublish(t *testing.T) {
	for _, from := range []int{0, 8} {
		f := testFormat
		f.CRCFrom = from
		b := make([]byte, f.Size)
		binary.LittleEndian.PutUint64(b[16:], 0x1122334455667788)
		f.Seal(b)
		if f.Load(b) != Absent {
			t.Fatalf("from %d: magic before Publish: %v", from, f.Load(b))
		}
		f.Publish(b)
		if f.Load(b) != Present || VersionOf(b) != 3 || SizeOf(b) != 32 {
			t.Fatalf("from %d: %v, version %d, size %d", from, f.Load(b), VersionOf(b), SizeOf(b))
		}
		want := crc32.Checksum(b[from:28], castagnoli)
		if stored, computed := f.CRC(b); stored != computed || stored != want {
			t.Fatalf("from %d: stored %#x, computed %#x, want %#x", from, stored, computed, want)
		}
		for i := from; i < 28; i++ {
			b[i] ^= 4
			if stored, computed := f.CRC(b); stored == computed && i >= OffVersion {
				t.Fatalf("from %d: a flipped bit at %d goes unnoticed", from, i)
			}
			b[i] ^= 4
		}
		copy(b, "OTHERMAG")
		if f.Load(b) != Foreign {
			t.Fatalf("from %d: another magic reads as %v", from, f.Load(b))
		}
	}
}
