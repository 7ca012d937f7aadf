package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// A Stream is the pre-generated record stream that every sink of a group
// is given: the same records, in the same order, so that only the sink
// differs. Records end with a newline, as zerolog's do.
type Stream struct {
	Name    string   // "64 B", "~200 B zerolog JSON", "4 KiB"
	Size    int      // nominal record size in bytes
	Records [][]byte // slices of one arena
	Mean    float64  // mean record length in bytes
}

// Record returns the i-th record, cycling through the stream.
func (s *Stream) Record(i int) []byte { return s.Records[i&(len(s.Records)-1)] }

// Sizes the harness knows: Size values of groups.
const (
	SizeSmall  = 64
	SizeJSON   = 200
	SizeLarge  = 4096
	streamRecs = 4096 // records per stream; a power of two
)

// NewStream generates the stream of nominal size n: 64-byte and 4 KiB
// records of exactly that length, or, for 200, realistic zerolog JSON
// events of about 200 bytes (an HTTP access log line and a few other event
// kinds, with varying field values). The generator is seeded: every run
// writes the same bytes.
func NewStream(n int) (*Stream, error) {
	rng := rand.New(rand.NewPCG(uint64(n), 42))
	var lines [][]byte
	var name string
	switch n {
	case SizeSmall:
		name = "64 B"
		lines = fixedRecords(rng, SizeSmall, streamRecs)
	case SizeLarge:
		name = "4 KiB"
		lines = fixedRecords(rng, SizeLarge, 1024)
	case SizeJSON:
		name = "~200 B zerolog JSON"
		var err error
		if lines, err = zerologEvents(rng, streamRecs); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("no record stream of size %d: sizes are %d, %d and %d", n, SizeSmall, SizeJSON, SizeLarge)
	}
	// Copy into one arena so that the stream is compact and cache-friendly
	// in the same way for every sink.
	total := 0
	for _, l := range lines {
		total += len(l)
	}
	arena := make([]byte, 0, total)
	s := &Stream{Name: name, Size: n, Records: make([][]byte, len(lines))}
	for i, l := range lines {
		off := len(arena)
		arena = append(arena, l...)
		s.Records[i] = arena[off:len(arena):len(arena)]
	}
	s.Mean = float64(total) / float64(len(lines))
	return s, nil
}

// zerologEvents logs n events through zerolog into a buffer and splits it
// into lines: real zerolog output, encoded once before any sink runs.
func zerologEvents(rng *rand.Rand, n int) ([][]byte, error) {
	var buf bytes.Buffer
	t := time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)
	log := zerolog.New(&buf).With().Str("service", "checkout").Str("host", "web-7f9c4").Logger()
	methods := []string{"GET", "GET", "GET", "POST", "PUT", "DELETE"}
	paths := []string{"/api/v1/orders", "/api/v1/cart/items", "/healthz", "/api/v1/users/profile", "/api/v1/payments/authorize"}
	for i := 0; i < n; i++ {
		t = t.Add(time.Duration(rng.IntN(3000)) * time.Microsecond)
		ts := t.Format("2006-01-02T15:04:05.000000Z07:00")
		switch rng.IntN(8) {
		case 0:
			log.Warn().Str("time", ts).Str("user", fmt.Sprintf("u-%d", rng.IntN(100000))).
				Int("attempt", 1+rng.IntN(3)).Dur("backoff", time.Duration(rng.IntN(500))*time.Millisecond).
				Str("err", "upstream timeout: payments-gw:8443").Msg("retrying payment authorization")
		case 1:
			log.Debug().Str("time", ts).Str("cache", "sessions").Str("key", fmt.Sprintf("sess:%016x", rng.Uint64())).
				Bool("hit", rng.IntN(4) != 0).Int("size", rng.IntN(4096)).Msg("cache lookup")
		default:
			log.Info().Str("time", ts).Str("req_id", fmt.Sprintf("%08x-%04x", rng.Uint32(), rng.IntN(65536))).
				Str("method", methods[rng.IntN(len(methods))]).Str("path", paths[rng.IntN(len(paths))]).
				Int("status", []int{200, 200, 200, 201, 204, 304, 404, 500}[rng.IntN(8)]).
				Int("bytes", rng.IntN(20000)).Float64("ms", float64(rng.IntN(250000))/1000).
				Msg("request")
		}
	}
	lines := bytes.SplitAfter(buf.Bytes(), []byte("\n"))
	if len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	if len(lines) != n {
		return nil, fmt.Errorf("zerolog wrote %d lines for %d events", len(lines), n)
	}
	return lines, nil
}

// fixedRecords returns n JSON lines of exactly size bytes, newline
// included: a short event padded with a "stack" or "note" field.
func fixedRecords(rng *rand.Rand, size, n int) [][]byte {
	const letters = "abcdefghijklmnopqrstuvwxyz0123456789 /._:"
	out := make([][]byte, n)
	for i := range out {
		head := fmt.Sprintf(`{"level":"info","n":%d,"msg":"`, rng.IntN(1000000))
		pad := size - len(head) - len(`"}`) - 1
		var b strings.Builder
		b.Grow(size)
		b.WriteString(head)
		for j := 0; j < pad; j++ {
			b.WriteByte(letters[rng.IntN(len(letters))])
		}
		b.WriteString("\"}\n")
		out[i] = []byte(b.String())
	}
	return out
}
