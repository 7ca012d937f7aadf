package output_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/klauspost/compress/zlib"
	"golang.org/x/sys/unix"

	"github.com/mmaplog/mmaplog/output"
)

// BenchmarkSend publishes batches of 2048 events of about 330 bytes, laid
// out in 64 KiB chunks as the shipper lays them, through one output to a
// receiver in this process, and reports per event: the time, the process's
// CPU time (output and receiver), and with -benchmem the allocations. The
// receivers read what they are sent and allocate nothing per event: beats
// (lumberjack frames, inflated where compressed), tcp (newline-delimited
// JSON read and dropped) and file (appended to a file in a temporary
// directory).
func BenchmarkSend(b *testing.B) {
	for _, c := range []struct {
		name  string
		level int
	}{{"beats", 0}, {"beats-zlib3", 3}, {"tcp", 0}, {"file", 0}} {
		b.Run(c.name, func(b *testing.B) {
			var url string
			switch c.name {
			case "file":
				url = "file://" + filepath.Join(b.TempDir(), "events.ndjson")
			case "tcp":
				url = "tcp://" + startDrain(b, false)
			default:
				url = "beats://" + startDrain(b, true)
			}
			out, err := output.Open(url, &output.Options{Window: 64, CompressionLevel: c.level})
			if err != nil {
				b.Fatal(err)
			}
			var acked, given atomic.Int64
			ack := func() { acked.Add(1) }
			batches := benchBatches(8, 2048, ack)
			src := out.NewSource()
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := processCPU()
			sent, published := 0, int64(0)
			for i := 0; sent < b.N; i++ {
				evs := batches[i%len(batches)]
				var batch output.Batch = evs
				if n := b.N - sent; n < len(evs.events) {
					batch = newLinedBatch(&given, ack, evs.events[:n]...)
				}
				if err := src.Publish(context.Background(), batch); err != nil {
					b.Fatal(err)
				}
				published++
				sent += len(batch.Events())
			}
			if err := out.Close(context.Background()); err != nil {
				b.Fatal(err)
			}
			if acked.Load() != published {
				b.Fatalf("%d of %d batches acknowledged", acked.Load(), published)
			}
			b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/event")
		})
	}
}

// benchBatches returns n batches of size events each, laid out as the
// shipper lays them.
func benchBatches(n, size int, ack func()) []*linedBatch {
	var out []*linedBatch
	for k := 0; k < n; k++ {
		evs := make([][]byte, 0, size)
		for i := 0; i < size; i++ {
			ev := fmt.Appendf(nil, `{"level":"info","service":"checkout","user":"u-%d","amount":42.5,"order":%d,"message":"order placed, padded to about two hundred bytes ..............","@timestamp":"2026-11-23T12:00:00.000000Z","log":{"offset":%d,"file":{"path":"/var/log/app"}},"host":{"name":"web-1"}}`, i, k*size+i, k*size+i)
			evs = append(evs, ev)
		}
		out = append(out, newLinedBatch(new(atomic.Int64), ack, evs...))
	}
	return out
}

// startDrain starts a receiver on a loopback port: lumberjack frames,
// acknowledged window by window (beats), or bytes read and dropped.
func startDrain(b *testing.B, beats bool) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			if beats {
				go serveFrames(c)
			} else {
				go func() { io.Copy(io.Discard, c); c.Close() }()
			}
		}
	}()
	return l.Addr().String()
}

// serveFrames reads lumberjack windows, compressed or not, and
// acknowledges each whole.
func serveFrames(c net.Conn) {
	defer c.Close()
	br := bufio.NewReaderSize(c, 256<<10)
	var hdr [10]byte
	buf := make([]byte, 64<<10)
	var zbuf []byte
	var zr io.ReadCloser
	ack := []byte{'2', 'A', 0, 0, 0, 0}
	for {
		if _, err := io.ReadFull(br, hdr[:6]); err != nil || string(hdr[:2]) != "2W" {
			return
		}
		n := binary.BigEndian.Uint32(hdr[2:6])
		var r io.Reader = br
		if _, err := io.ReadFull(br, hdr[:2]); err != nil {
			return
		}
		if string(hdr[:2]) == "2C" {
			if _, err := io.ReadFull(br, hdr[2:6]); err != nil {
				return
			}
			size := int(binary.BigEndian.Uint32(hdr[2:6]))
			if cap(zbuf) < size {
				zbuf = make([]byte, size)
			}
			zbuf = zbuf[:size]
			if _, err := io.ReadFull(br, zbuf); err != nil {
				return
			}
			var err error
			if zr == nil {
				zr, err = zlib.NewReader(bytes.NewReader(zbuf))
			} else {
				err = zr.(zlib.Resetter).Reset(bytes.NewReader(zbuf), nil)
			}
			if err != nil {
				return
			}
			r = bufio.NewReaderSize(zr, 64<<10)
			if _, err := io.ReadFull(r, hdr[:2]); err != nil {
				return
			}
		}
		for i := uint32(0); i < n; i++ {
			if i > 0 {
				if _, err := io.ReadFull(r, hdr[:2]); err != nil {
					return
				}
			}
			if _, err := io.ReadFull(r, hdr[2:10]); err != nil || hdr[1] != 'J' {
				return
			}
			size := int(binary.BigEndian.Uint32(hdr[6:10]))
			if size > len(buf) {
				buf = make([]byte, size)
			}
			if _, err := io.ReadFull(r, buf[:size]); err != nil {
				return
			}
		}
		binary.BigEndian.PutUint32(ack[2:], n)
		if _, err := c.Write(ack); err != nil {
			return
		}
	}
}

// processCPU returns the CPU time this process has used.
func processCPU() int64 {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
