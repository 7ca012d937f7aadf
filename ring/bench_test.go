package ring

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// cpuTime is the CPU time this process used so far, user and system: on a
// shared machine it varies less with the load than the wall time does.
func cpuTime() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchRegion is a shared anonymous mapping, every page touched: the
// appender's cost without page faults. 64 MiB is far larger than the
// caches, as a segment is (every record goes to lines not cached); 256 KiB
// stays in them, which leaves the appender's own instructions.
func benchRegion(b *testing.B, size int) []byte {
	buf, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_ANONYMOUS)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { unix.Munmap(buf) })
	for i := 0; i < len(buf); i += 4096 {
		buf[i] = 0
	}
	PutHeader(buf, Header{Segment: 1, FirstSeq: 1, Created: 1, Size: uint64(len(buf))})
	return buf
}

// BenchmarkAppend is Append alone (no clock, no rotation): a 200-byte
// record into a pre-faulted mapping, a new Ring on the same mapping each
// time one fills up. "counted" Appends also count themselves (a second
// atomic, as without a control mapping); the others reach the wake words
// through a control mapping (SetControl), as the writer's do.
func BenchmarkAppend(b *testing.B) {
	b.Run("cold", func(b *testing.B) { benchAppend(b, 64<<20, false) })
	b.Run("cached", func(b *testing.B) { benchAppend(b, 256<<10, false) })
	b.Run("cold-counted", func(b *testing.B) { benchAppend(b, 64<<20, true) })
	b.Run("cached-counted", func(b *testing.B) { benchAppend(b, 256<<10, true) })
}

func benchAppend(b *testing.B, size int, counted bool) {
	buf := benchRegion(b, size)
	p := make([]byte, 200)
	for i := range p {
		p[i] = byte('a' + i%26)
	}
	newRing := func() *Ring {
		r, _ := New(buf, HeaderSize, 1, 0)
		if !counted {
			r.SetControl(buf[:HeaderSize]) // the same memory: what matters is which path Append takes
		}
		return r
	}
	r := newRing()
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := r.Append(3, int64(i), p); err != nil {
			r = newRing()
		}
	}
}

// BenchmarkPutRecord is the record's bytes and CRC alone: no reservation,
// no wake check, no fault guard.
func BenchmarkPutRecord(b *testing.B) {
	b.Run("cold", func(b *testing.B) { benchPutRecord(b, 64<<20) })
	b.Run("cached", func(b *testing.B) { benchPutRecord(b, 256<<10) })
}

func benchPutRecord(b *testing.B, region int) {
	buf := benchRegion(b, region)
	p := make([]byte, 200)
	size := RecordSize(len(p))
	off := HeaderSize
	b.SetBytes(int64(len(p)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if off+size > len(buf) {
			off = HeaderSize
		}
		PutRecord(buf[off:off+size:off+size], uint64(i), int64(i), 3, p)
		off += size
	}
}

// BenchmarkRecordParts is PutRecord taken apart, on the same records and
// regions: "copy" copies the 200-byte payload alone (what the harness's
// memory-copy limit does), "crc32c" checksums the 224 bytes PutRecord
// checksums, from the region, alone. Their sum is the floor under
// PutRecord that the record format sets.
func BenchmarkRecordParts(b *testing.B) {
	for _, c := range []struct {
		name   string
		region int
	}{{"cold", 64 << 20}, {"cached", 256 << 10}} {
		b.Run("copy-"+c.name, func(b *testing.B) { benchRecordPart(b, c.region, false) })
		b.Run("crc32c-"+c.name, func(b *testing.B) { benchRecordPart(b, c.region, true) })
	}
}

var crcSink uint32

func benchRecordPart(b *testing.B, region int, crc bool) {
	buf := benchRegion(b, region)
	p := make([]byte, 200)
	size := RecordSize(len(p))
	off := HeaderSize
	var sum uint32
	b.SetBytes(int64(len(p)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if off+size > len(buf) {
			off = HeaderSize
		}
		if crc {
			sum += recordCRC(buf[off+8 : off+RecordHeaderSize+len(p)])
		} else {
			copy(buf[off+RecordHeaderSize:off+size], p)
		}
		off += size
	}
	crcSink = sum
}

// BenchmarkWalk is the decoder loop alone: a Walker over a 64 MiB region
// of 200-byte records, from the start again at its end; an op is one
// record. "scan" is Scan over the same region, an op one record.
func BenchmarkWalk(b *testing.B) {
	buf := benchRegion(b, 64<<20)
	r, _ := New(buf, HeaderSize, 1, 0)
	p := make([]byte, 200)
	n := 0
	for {
		if _, err := r.Append(3, int64(n), p); err != nil {
			break
		}
		n++
	}
	b.Run("walker", func(b *testing.B) {
		w := NewWalker(1)
		b.ReportAllocs()
		b.ResetTimer()
		cpu := cpuTime()
		for i := 0; i < b.N; i++ {
			if st := w.Next(buf, 0, false); st.Kind != StepRecord {
				w = NewWalker(1)
			}
		}
		b.ReportMetric(float64((cpuTime()-cpu).Nanoseconds())/float64(b.N), "cpu-ns/op")
	})
	b.Run("scan", func(b *testing.B) {
		b.ReportAllocs()
		b.ResetTimer()
		cpu := cpuTime()
		done := 0
		for ; done < b.N; done += n {
			if res := Scan(buf, 1, nil); res.Records != uint64(n) {
				b.Fatalf("scan found %d records of %d", res.Records, n)
			}
		}
		b.ReportMetric(float64((cpuTime()-cpu).Nanoseconds())/float64(done), "cpu-ns/record")
	})
}
