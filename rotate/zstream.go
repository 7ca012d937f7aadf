package rotate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/klauspost/compress/zstd"

	"github.com/mmaplog/mmaplog/ring"
)

// zstream holds a window of a compressed segment's decompressed bytes,
// [base, base+len(buf)), so that reading a backlog of compressed segments
// keeps memory small whatever the segment size. Damage (a hole or a corrupt
// record met in the middle) makes it load the rest of the segment, for the
// decoder to look for the next record.
type zstream struct {
	f     *os.File
	dec   *zstd.Decoder
	buf   []byte
	base  int
	eof   bool
	limit int // the segment's size (its header's): decompressing more is damage
}

// zWindow is the smallest window the stream reads ahead.
const zWindow = 1 << 20

func newZstream(f *os.File) (*zstream, error) {
	dec, err := zstd.NewReader(f, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxMemory(maxDecompressed))
	if err != nil {
		return nil, err
	}
	return &zstream{f: f, dec: dec, limit: maxDecompressed}, nil
}

// ensure makes the window hold [pos, pos+n), or everything from pos to the
// end of the segment if it is shorter. pos never goes backwards.
func (z *zstream) ensure(pos, n int) error {
	if pos < z.base {
		return fmt.Errorf("read at %d before the window at %d", pos, z.base)
	}
	want := pos + n
	if want <= z.base+len(z.buf) || z.eof {
		return nil
	}
	// Drop what lies before pos (keeping 8-byte alignment).
	if drop := (pos &^ (ring.Align - 1)) - z.base; drop > 0 {
		z.buf = z.buf[:copy(z.buf, z.buf[drop:])]
		z.base += drop
	}
	need := min(want, z.limit+1) - z.base
	if cap(z.buf) < need {
		nb := make([]byte, len(z.buf), max(need, min(zWindow, z.limit+1), 2*cap(z.buf)))
		copy(nb, z.buf)
		z.buf = nb
	}
	for len(z.buf) < need {
		if len(z.buf) == cap(z.buf) {
			nb := make([]byte, len(z.buf), min(2*cap(z.buf), z.limit+1-z.base))
			copy(nb, z.buf)
			z.buf = nb
		}
		m, err := z.dec.Read(z.buf[len(z.buf):cap(z.buf)])
		z.buf = z.buf[:len(z.buf)+m]
		if errors.Is(err, io.EOF) {
			z.eof = true
			break
		}
		if err != nil {
			return err
		}
	}
	if z.base+len(z.buf) > z.limit {
		return fmt.Errorf("%w: decompresses to more than the %d bytes its header says", ring.ErrBadLength, z.limit)
	}
	return nil
}

// prepare makes the window ready for decoding the record at pos: the
// whole record when its length word is sound, the rest of the segment when
// it is padding, a hole or damage (rare: the decoder then needs it all).
func (z *zstream) prepare(pos int) error {
	if err := z.ensure(pos, ring.RecordHeaderSize); err != nil {
		return err
	}
	off := pos - z.base
	if off+ring.RecordHeaderSize > len(z.buf) {
		return nil // the end of the segment
	}
	lw := binary.LittleEndian.Uint32(z.buf[off:])
	if lw&ring.Committed != 0 && lw&ring.Padding == 0 {
		return z.ensure(pos, ring.RecordSize(int(lw&(ring.Padding-1))))
	}
	return z.ensure(pos, maxDecompressed)
}

func (z *zstream) close() {
	z.dec.Close()
	z.f.Close()
	z.buf = nil
}
