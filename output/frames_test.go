package output

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"testing"

	"github.com/klauspost/compress/zlib"
)

func testWindow(n int) *window {
	evs := make([][]byte, n)
	for i := range evs {
		evs[i] = []byte(fmt.Sprintf(`{"n":%d,"message":"an event of about a hundred bytes, padded ......................"}`, i))
	}
	w := &window{parts: []*part{{events: evs[:n/2]}, {events: evs[n/2:]}}, events: n}
	return w
}

// TestBeatsFramesAllocationFree: framing a window into lumberjack frames
// (plain or zlib) allocates nothing once the session's buffers have grown,
// however many events the window has: no allocation per event.
func TestBeatsFramesAllocationFree(t *testing.T) {
	for _, level := range []int{0, 3} {
		for _, n := range []int{10, 2000} {
			s := &beatsSession{level: level}
			w := testWindow(n)
			if err := s.frame(w); err != nil {
				t.Fatal(err)
			}
			if a := testing.AllocsPerRun(20, func() { s.frame(w) }); a != 0 {
				t.Errorf("zlib %d, %d events: %v allocations per window", level, n, a)
			}
		}
	}
}

// TestBeatsFrames decodes what frame writes: the window frame, then n JSON
// frames with sequence numbers 1 to n, compressed or not.
func TestBeatsFrames(t *testing.T) {
	for _, level := range []int{0, 6} {
		s := &beatsSession{level: level}
		w := testWindow(100)
		for round := 0; round < 2; round++ { // the second one reuses the buffers and the zlib writer
			if err := s.frame(w); err != nil {
				t.Fatal(err)
			}
			b := s.buf
			if string(b[:2]) != "2W" || binary.BigEndian.Uint32(b[2:6]) != 100 {
				t.Fatalf("window frame % x", b[:6])
			}
			body := b[6:]
			if level > 0 {
				if string(body[:2]) != "2C" || int(binary.BigEndian.Uint32(body[2:6])) != len(body)-6 {
					t.Fatalf("compressed frame % x, %d bytes follow", body[:6], len(body)-6)
				}
				zr, err := zlib.NewReader(bytes.NewReader(body[6:]))
				if err != nil {
					t.Fatal(err)
				}
				if body, err = io.ReadAll(zr); err != nil {
					t.Fatal(err)
				}
			}
			seq := uint32(0)
			w.each(func(ev []byte) {
				seq++
				if string(body[:2]) != "2J" || binary.BigEndian.Uint32(body[2:6]) != seq || int(binary.BigEndian.Uint32(body[6:10])) != len(ev) || !bytes.Equal(body[10:10+len(ev)], ev) {
					t.Fatalf("frame %d: % x", seq, body[:10])
				}
				body = body[10+len(ev):]
			})
			if len(body) != 0 {
				t.Fatalf("%d bytes after the last frame", len(body))
			}
		}
	}
}

func BenchmarkBeatsFrame(b *testing.B) {
	for _, level := range []int{0, 3} {
		b.Run(fmt.Sprint("zlib=", level), func(b *testing.B) {
			s := &beatsSession{level: level}
			w := testWindow(2048)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				s.frame(w)
			}
			b.ReportMetric(float64(b.N*w.events)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
