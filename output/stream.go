package output

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// writeCloser is where a stream output writes.
type writeCloser interface {
	io.Writer
	Close() error
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// newStreamOutput returns an output writing newline-delimited JSON to what
// open returns (standard output). A window counts as acknowledged once
// written.
func newStreamOutput(name string, opts Options, open func() (writeCloser, error)) Output {
	return newEngine(name, opts, []string{name}, 1, func(context.Context, string) (session, error) {
		w, err := open()
		if err != nil {
			return nil, err
		}
		s := &streamSession{w: w}
		if nc, ok := w.(nopCloser); ok {
			if f, ok := nc.Writer.(*os.File); ok {
				s.lines = &lineWriter{writev: fileWritev(f, f.Name())}
			}
		}
		return s, nil
	})
}

// newTCP returns the tcp:// output: newline-delimited JSON on a TCP (or TLS)
// connection, what Logstash's tcp input reads with the json_lines codec. The
// protocol has no acknowledgements: a window counts as delivered once the
// kernel accepted it, so events in the socket buffers and in the receiver
// when the receiver dies are lost (see the package documentation).
func newTCP(name string, hosts []string, opts Options) Output {
	return newEngine(name, opts, hosts, opts.Workers, func(ctx context.Context, addr string) (session, error) {
		c, err := dial(ctx, addr, &opts)
		if err != nil {
			return nil, err
		}
		s := &streamSession{w: c, conn: c, opts: &opts}
		if tc, ok := c.(*net.TCPConn); ok {
			// A TLS connection encrypts from a buffer of its own:
			// only a plain one takes the lines where they lie.
			s.lines = &lineWriter{writev: func(iov [][]byte) (int, error) {
				v := net.Buffers(iov)
				n, err := v.WriteTo(tc)
				return int(n), err
			}}
		}
		return s, nil
	})
}

type streamSession struct {
	w     writeCloser
	conn  net.Conn // for write deadlines; nil for stdout
	opts  *Options
	buf   []byte
	lines *lineWriter // where the destination takes vectored writes; nil otherwise
}

// appendLines appends w's events, each followed by a newline.
func appendLines(dst []byte, w *window) []byte {
	w.each(func(ev []byte) {
		dst = append(dst, ev...)
		dst = append(dst, '\n')
	})
	return dst
}

func (s *streamSession) send(w *window) error {
	if s.conn != nil {
		s.conn.SetWriteDeadline(timeNow().Add(s.opts.Timeout))
	}
	var err error
	if s.lines != nil && w.hasLines() {
		_, err = s.lines.write(w)
	} else {
		s.buf = appendLines(s.buf[:0], w)
		_, err = s.w.Write(s.buf)
		if cap(s.buf) > 4<<20 && len(s.buf) < 1<<20 {
			s.buf = nil
		}
	}
	if err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// await has nothing to wait for: the protocol has no acknowledgements.
func (s *streamSession) await(*window) error { return nil }

func (s *streamSession) close() error { return s.w.Close() }

// newFileOutput returns the file:// output: newline-delimited JSON appended
// to path, which is created 0600, never through a symbolic link. A window
// counts as delivered once write(2) returned.
//
// The file never keeps a torn line, whatever fails: a window is written
// with one write of whole lines; when it is written in part (a full disk)
// or not at all, the file is truncated back to where the window started
// before the window is tried again. A file found ending without a newline
// when the output opens it (the shipper was killed in the middle of a
// write) is truncated back to its last complete line first; the events of
// that line are sent again, since their window was never acknowledged.
func newFileOutput(path string, opts Options) Output {
	name := "file://" + path
	return newEngine(name, opts, []string{name}, 1, func(context.Context, string) (session, error) {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return nil, err
		}
		s := &fileSession{f: f, path: path, lines: &lineWriter{writev: fileWritev(f, path)}}
		if err := s.repair(); err != nil {
			f.Close()
			return nil, err
		}
		return s, nil
	})
}

type fileSession struct {
	f     *os.File
	path  string
	size  int64 // where the next window starts: the end of the last complete line
	buf   []byte
	lines *lineWriter
}

// repair finds the end of the file's last complete line and truncates
// anything after it.
func (s *fileSession) repair() error {
	st, err := s.f.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		s.size = -1 // a pipe or a device: nothing to truncate
		return nil
	}
	size := st.Size()
	end, err := lastLineEnd(s.path, size)
	if err != nil {
		return err
	}
	if end < size {
		if err := s.f.Truncate(end); err != nil {
			return fmt.Errorf("%s ends with a torn line (offsets %d to %d) that could not be removed: %w", s.path, end, size, err)
		}
	}
	s.size = end
	return nil
}

// lastLineEnd returns the offset just after the last newline in the first
// size bytes of path (0 if there is none).
func lastLineEnd(path string, size int64) (int64, error) {
	if size == 0 {
		return 0, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for end := size; end > 0; {
		start := max(end-int64(len(buf)), 0)
		n, err := f.ReadAt(buf[:end-start], start)
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		for i := n - 1; i >= 0; i-- {
			if buf[i] == '\n' {
				return start + int64(i) + 1, nil
			}
		}
		end = start
	}
	return 0, nil
}

// write writes the window's lines with one write: vectored where its
// batches keep their lines and they take one writev, else copied into one
// buffer.
func (s *fileSession) write(w *window) (int, error) {
	if w.hasLines() {
		if n, vectored, err := s.lines.writeOnce(w); vectored {
			return n, err
		}
	}
	s.buf = appendLines(s.buf[:0], w)
	n, err := s.f.Write(s.buf)
	if cap(s.buf) > 4<<20 && len(s.buf) < 1<<20 {
		s.buf = nil
	}
	return n, err
}

func (s *fileSession) send(w *window) error {
	n, err := s.write(w)
	if err == nil {
		if s.size >= 0 {
			s.size += int64(n)
		}
		return nil
	}
	if s.size >= 0 && n > 0 {
		// Part of the window went in: take it out again, so that the
		// file ends with a whole line, before the window is retried.
		if st, serr := s.f.Stat(); serr == nil && st.Size() != s.size+int64(n) {
			return fmt.Errorf("write: %w; %s grew by %d bytes instead of the %d written: another process writes to it, so the torn line is left in place", err, s.path, st.Size()-s.size, n)
		}
		if terr := s.f.Truncate(s.size); terr != nil {
			return fmt.Errorf("write: %w; removing the %d bytes written of the window failed too: %w", err, n, terr)
		}
	}
	return fmt.Errorf("write: %w", err)
}

func (s *fileSession) await(*window) error { return nil }

func (s *fileSession) close() error { return s.f.Close() }
