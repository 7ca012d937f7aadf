package output

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/klauspost/compress/zlib"
)

// newBeats returns the beats:// output: Logstash's beats input, through the
// lumberjack v2 protocol. Each window is one lumberjack window; the
// receiver acknowledges it once Logstash's pipeline has taken it.
//
// The frames are written here rather than through go-lumber's client,
// whose Send takes []interface{}: each event would be boxed into an
// interface (an allocation per event) only to be handed back as the bytes
// it already is, and a zlib writer would be allocated per window. Here the
// events, already JSON, are framed into a buffer that is reused, or
// written with their frame headers straight into the zlib writer, which is
// reset rather than made again. The protocol:
//
//	window:      '2' 'W' count:u32                 (big endian)
//	compressed:  '2' 'C' length:u32 zlib(frames)   (optional)
//	JSON event:  '2' 'J' seq:u32 length:u32 JSON   (seq 1..count within the window)
//	ack:         '2' 'A' seq:u32                   (from the receiver; seq = count: all taken)
//
// A receiver still working on a window sends acks of fewer events than it
// has (partial acknowledgements, which are progress) or of none
// (keepalives, which show it is alive but not that it is moving).
func newBeats(name string, hosts []string, opts Options) Output {
	return newEngine(name, opts, hosts, opts.Workers, func(ctx context.Context, addr string) (session, error) {
		c, err := dial(ctx, addr, &opts)
		if err != nil {
			return nil, err
		}
		s := &beatsSession{conn: c, br: bufio.NewReaderSize(c, 512), level: opts.CompressionLevel, timeout: opts.Timeout}
		return s, nil
	})
}

type beatsSession struct {
	conn    net.Conn
	br      *bufio.Reader
	level   int
	timeout time.Duration
	others  func() bool

	buf  []byte // the window's frames as sent
	zw   *zlib.Writer
	zout appendWriter
	hdr  [10]byte // a JSON frame's header, written into zw
}

// appendWriter appends what is written to it to a byte slice.
type appendWriter struct{ b []byte }

func (a *appendWriter) Write(p []byte) (int, error) {
	a.b = append(a.b, p...)
	return len(p), nil
}

// appendFrames appends the JSON data frames of w's events.
func appendFrames(dst []byte, w *window) []byte {
	var seq uint32
	w.each(func(ev []byte) {
		seq++
		dst = append(dst, '2', 'J')
		dst = binary.BigEndian.AppendUint32(dst, seq)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(ev)))
		dst = append(dst, ev...)
	})
	return dst
}

// frame builds the bytes of window w in s.buf: the frames as they are, or
// compressed, the frames then written into the compressor from where the
// events lie (the compressor's own window is their one copy before the
// compressed bytes).
func (s *beatsSession) frame(w *window) error {
	s.buf = append(s.buf[:0], '2', 'W')
	s.buf = binary.BigEndian.AppendUint32(s.buf, uint32(w.events))
	if s.level == 0 {
		s.buf = appendFrames(s.buf, w)
		return nil
	}
	s.buf = append(s.buf, '2', 'C', 0, 0, 0, 0)
	lenAt := len(s.buf)
	s.zout.b = s.buf
	if err := s.resetZlib(); err != nil {
		return err
	}
	hdr := s.hdr[:]
	hdr[0], hdr[1] = '2', 'J'
	var seq uint32
	w.each(func(ev []byte) {
		seq++
		binary.BigEndian.PutUint32(hdr[2:], seq)
		binary.BigEndian.PutUint32(hdr[6:], uint32(len(ev)))
		s.zw.Write(hdr)
		s.zw.Write(ev)
	})
	if err := s.zw.Close(); err != nil { // the writes' error, if any, too
		return err
	}
	s.buf = s.zout.b
	s.zout.b = nil
	binary.BigEndian.PutUint32(s.buf[lenAt-4:], uint32(len(s.buf)-lenAt))
	return nil
}

// resetZlib makes the compressor write to s.zout: made on first use, reset
// after.
func (s *beatsSession) resetZlib() error {
	if s.zw != nil {
		s.zw.Reset(&s.zout)
		return nil
	}
	zw, err := zlib.NewWriterLevel(&s.zout, s.level)
	if err != nil {
		return err
	}
	s.zw = zw
	return nil
}

func (s *beatsSession) send(w *window) error {
	if err := s.frame(w); err != nil {
		return err
	}
	s.conn.SetWriteDeadline(timeNow().Add(s.timeout))
	_, err := s.conn.Write(s.buf)
	if cap(s.buf) > 4<<20 && len(s.buf) < 1<<20 {
		s.buf = nil // do not keep a rare large window's memory
	}
	return err
}

// errStalled is a receiver that sends keepalives and does not acknowledge.
var errStalled = errors.New("stalled: keepalives only, nothing acknowledged")

// await reads acknowledgements until the whole window is acknowledged. Each
// read waits Timeout at most. A receiver that sends only keepalives for
// Timeout is stalled: the window goes to another host if there is one, and
// otherwise the shipper waits on (the receiver is alive, and sending to it
// again would only add duplicates).
func (s *beatsSession) await(w *window) error {
	var acked uint32
	want := uint32(w.events)
	progressAt := timeNow()
	var msg [6]byte
	for acked < want {
		s.conn.SetReadDeadline(timeNow().Add(s.timeout))
		if _, err := io.ReadFull(s.br, msg[:]); err != nil {
			if errors.Is(err, io.EOF) {
				err = errors.New("connection closed by the receiver")
			}
			return err
		}
		if msg[0] != '2' || msg[1] != 'A' {
			return fmt.Errorf("lumberjack protocol error: % x is not an acknowledgement", msg[:2])
		}
		seq := binary.BigEndian.Uint32(msg[2:])
		switch {
		case seq > want:
			return fmt.Errorf("lumberjack protocol error: acknowledgement of %d events in a window of %d", seq, want)
		case seq > acked:
			acked, progressAt = seq, timeNow()
		case s.others != nil && s.others() && timeNow().Sub(progressAt) >= s.timeout:
			return fmt.Errorf("%w for %v (%d of %d events acknowledged)", errStalled, s.timeout, acked, want)
		}
	}
	return nil
}

func (s *beatsSession) close() error { return s.conn.Close() }

func (s *beatsSession) setOthers(f func() bool) { s.others = f }
