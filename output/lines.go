package output

import (
	"errors"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// The newline-delimited outputs (tcp://, file://, stdout) write a window
// as it lies in the batches' memory where the batches keep their events as
// lines (Lines, as the shipper's do): one vectored write of a slice per run
// of events lying end to end, a few per 64 KiB of events, so that the
// kernel copies the events from where they were encoded and nothing copies
// them before. Gathering a slice per event instead would cost the kernel
// more than the copy it saves; events of other batches are copied, with
// their newlines, into one buffer that is one more slice of the write.

// maxIOV is the most slices one writev(2) takes (IOV_MAX).
const maxIOV = 1024

// lineWriter writes windows as newline-delimited JSON with vectored writes.
type lineWriter struct {
	writev func(iov [][]byte) (int, error)
	iov    [][]byte
	buf    []byte // lines of the batches that do not keep theirs
}

// hasLines reports whether a batch of w keeps its events as lines.
func (w *window) hasLines() bool {
	for _, p := range w.parts {
		if p.b.lines != nil {
			return true
		}
	}
	return false
}

// write writes w's lines.
func (lw *lineWriter) write(w *window) (int, error) {
	n, err := lw.writev(lw.gather(w))
	lw.reset()
	return n, err
}

// writeOnce writes w's lines with one writev where they take one (at most
// maxIOV slices); vectored is false, and nothing written, where they do
// not.
func (lw *lineWriter) writeOnce(w *window) (n int, vectored bool, err error) {
	iov := lw.gather(w)
	if len(iov) > maxIOV {
		lw.reset()
		return 0, false, nil
	}
	n, err = lw.writev(iov)
	lw.reset()
	return n, true, err
}

// gather returns w's events as newline-delimited JSON: the slices of the
// batches' memory that Lines gives, and the lines of other batches copied
// into lw.buf, consecutive ones as one slice.
func (lw *lineWriter) gather(w *window) [][]byte {
	b := lw.buf[:0]
	for _, p := range w.parts {
		if p.b.lines == nil {
			for _, ev := range p.events {
				b = append(b, ev...)
				b = append(b, '\n')
			}
		}
	}
	lw.buf = b
	iov := lw.iov[:0]
	off, run := 0, -1 // run: the slice of b the next copied part extends
	for _, p := range w.parts {
		if p.b.lines != nil {
			iov = p.b.lines.AppendLines(iov, p.off, p.off+len(p.events))
			run = -1
			continue
		}
		n := 0
		for _, ev := range p.events {
			n += len(ev) + 1
		}
		if run >= 0 {
			iov[run] = b[off-len(iov[run]) : off+n]
		} else {
			iov = append(iov, b[off:off+n])
			run = len(iov) - 1
		}
		off += n
	}
	lw.iov = iov
	return iov
}

// reset drops the slices of the window just written (their memory goes
// back to its batches once acknowledged), and a rare large buffer.
func (lw *lineWriter) reset() {
	clear(lw.iov)
	if cap(lw.buf) > 4<<20 {
		lw.buf = nil
	}
}

// fileWritev returns the vectored write of f: writev(2), maxIOV slices at
// a time, again after a short write, as f.Write does; its errors are
// *os.PathError, as f.Write's.
func fileWritev(f *os.File, name string) func(iov [][]byte) (int, error) {
	return func(iov [][]byte) (int, error) {
		rc, err := f.SyscallConn()
		if err != nil {
			return 0, &os.PathError{Op: "write", Path: name, Err: err}
		}
		total := 0
		for len(iov) > 0 {
			var n int
			var werr error
			if err := rc.Write(func(fd uintptr) bool {
				n, werr = unix.Writev(int(fd), iov[:min(len(iov), maxIOV)])
				return !errors.Is(werr, unix.EAGAIN)
			}); err != nil {
				werr = err
			}
			if errors.Is(werr, unix.EINTR) {
				continue
			}
			total += max(n, 0)
			switch {
			case werr != nil:
				return total, &os.PathError{Op: "write", Path: name, Err: werr}
			case n == 0:
				return total, &os.PathError{Op: "write", Path: name, Err: io.ErrShortWrite}
			}
			iov = consumeIOV(iov, n)
		}
		return total, nil
	}
}

// consumeIOV drops the first n bytes of iov.
func consumeIOV(iov [][]byte, n int) [][]byte {
	for len(iov) > 0 && n >= len(iov[0]) {
		n -= len(iov[0])
		iov = iov[1:]
	}
	if len(iov) > 0 {
		iov[0] = iov[0][n:]
	}
	return iov
}
