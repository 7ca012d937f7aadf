package ship_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"net"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mmaplog/mmaplog/mmaplog"
	"github.com/mmaplog/mmaplog/output"
	"github.com/mmaplog/mmaplog/ship"
)

// frameReceiver is a lumberjack v2 receiver that reads the frames of
// uncompressed windows into one buffer and acknowledges each window whole:
// it allocates nothing per event, so that the allocations of a process
// shipping to it are the shipper's.
type frameReceiver struct {
	l      net.Listener
	events atomic.Uint64
}

func startFrameReceiver(t *testing.T) *frameReceiver {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &frameReceiver{l: l}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go r.serve(c)
		}
	}()
	return r
}

func (r *frameReceiver) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReaderSize(c, 64<<10)
	var hdr [10]byte
	buf := make([]byte, 64<<10)
	ack := []byte{'2', 'A', 0, 0, 0, 0}
	for {
		if _, err := io.ReadFull(br, hdr[:6]); err != nil || hdr[0] != '2' || hdr[1] != 'W' {
			return
		}
		n := binary.BigEndian.Uint32(hdr[2:6])
		for i := uint32(0); i < n; i++ {
			if _, err := io.ReadFull(br, hdr[:10]); err != nil || hdr[1] != 'J' {
				return
			}
			size := int(binary.BigEndian.Uint32(hdr[6:10]))
			if size > len(buf) {
				buf = make([]byte, size)
			}
			if _, err := io.ReadFull(br, buf[:size]); err != nil {
				return
			}
		}
		r.events.Add(uint64(n))
		binary.BigEndian.PutUint32(ack[2:], n)
		if _, err := c.Write(ack); err != nil {
			return
		}
	}
}

// TestShipAllocationsPerEvent: the whole beats path, from the log to the
// socket (reading, encoding, batching, the window, lumberjack framing,
// acknowledgements, cursor saves), allocates nothing per event: what it
// allocates is per batch and per save, a few hundredths of an allocation per
// event with batches of 2048.
func TestShipAllocationsPerEvent(t *testing.T) {
	if raceEnabled {
		t.Log("under -race the instrumentation allocates: the count is not checked")
	}
	dir := filepath.Join(t.TempDir(), "log")
	w, err := mmaplog.Open(dir, &mmaplog.Options{MaxBackups: -1})
	if err != nil {
		t.Fatal(err)
	}
	p := []byte(`{"level":"info","service":"checkout","user":"u-1042","amount":42.5,"order":1234567,"message":"order placed, padded so that the record is about two hundred bytes ........."}`)
	warm, n := 100000, 400000
	if raceEnabled {
		warm, n = 10000, 40000
	}
	for i := 0; i < warm+n; i++ {
		if _, err := w.Append(mmaplog.LevelInfo, p); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	rcv := startFrameReceiver(t)
	out, err := output.Open("beats://"+rcv.l.Addr().String(), &output.Options{Window: ship.OutputWindow})
	if err != nil {
		t.Fatal(err)
	}
	s, err := ship.New(ship.Config{Dir: dir, Output: out, CursorName: "alloc", Host: "h"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	waitAcked := func(k int) {
		deadline := time.Now().Add(2 * time.Minute)
		for s.Stats().AckedSeq < uint64(k) {
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d events acknowledged", s.Stats().AckedSeq, k)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitAcked(warm)
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	a0 := s.Stats().AckedSeq
	waitAcked(warm + n)
	runtime.ReadMemStats(&m1)
	a1 := s.Stats().AckedSeq
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	per := float64(m1.Mallocs-m0.Mallocs) / float64(a1-a0)
	t.Logf("%.4f allocations per event over %d events (%d batches in all)", per, a1-a0, s.Stats().Batches)
	if !raceEnabled && per >= 0.1 {
		t.Fatalf("%.4f allocations per event: something allocates per event", per)
	}
}
