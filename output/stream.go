package output

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
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

// openFile opens path for appending, creating it 0600, never through a
// symbolic link.
func openFile(path string) (writeCloser, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
}

// newStreamOutput returns an output writing newline-delimited JSON to what
// open returns (standard output, a file). A batch counts as acknowledged
// once written.
func newStreamOutput(name string, opts Options, open func() (writeCloser, error)) Output {
	return newEngine(name, opts, func(context.Context) (session, error) {
		w, err := open()
		if err != nil {
			return nil, err
		}
		return &streamSession{w: w, bw: bufio.NewWriterSize(w, 64<<10)}, nil
	})
}

// newTCP returns the tcp:// output: newline-delimited JSON on a TCP (or TLS)
// connection, what Logstash's tcp input reads with the json_lines codec. The
// protocol has no acknowledgements: a batch counts as delivered once the
// kernel accepted it, so events in the socket buffers and in the receiver
// when the receiver dies are lost (see the package documentation).
func newTCP(u *url.URL, opts Options) Output {
	addr := hostPort(u)
	return newEngine(redact(u), opts, func(ctx context.Context) (session, error) {
		c, err := dial(ctx, addr, &opts)
		if err != nil {
			return nil, err
		}
		return &streamSession{w: c, bw: bufio.NewWriterSize(c, 64<<10), conn: c, opts: &opts}, nil
	})
}

type streamSession struct {
	w    writeCloser
	bw   *bufio.Writer
	conn net.Conn // for write deadlines; nil for files
	opts *Options
}

func (s *streamSession) send(b *batch) error {
	if s.conn != nil {
		s.conn.SetWriteDeadline(timeNow().Add(s.opts.Timeout))
	}
	for _, ev := range b.events {
		s.bw.Write(ev)
		if err := s.bw.WriteByte('\n'); err != nil {
			return err
		}
	}
	if err := s.bw.Flush(); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// await has nothing to wait for: the protocol has no acknowledgements.
func (s *streamSession) await(*batch) error { return nil }

func (s *streamSession) close() error { return s.w.Close() }
