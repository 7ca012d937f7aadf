package tail

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/klauspost/compress/zstd"

	"github.com/mmaplog/mmaplog/internal/fileutil"
	"github.com/mmaplog/mmaplog/ring"
	"github.com/mmaplog/mmaplog/rotate"
)

// zstream reads a compressed segment as a stream, holding only a window of
// its decompressed bytes, [base, base+len(buf)), so that reading a backlog
// of compressed segments keeps the Reader's memory small whatever the
// segment size. Damage (a hole or a corrupt record met in the middle) makes
// it load the rest of the segment, for Resync to look for the next record.
type zstream struct {
	f    *os.File
	dec  *zstd.Decoder
	buf  []byte
	base int
	eof  bool
}

// zWindow is the smallest window the stream reads ahead.
const zWindow = 1 << 20

// openStream opens a compressed segment and reads its header.
func openStream(fi rotate.FileInfo) (*rotate.View, *zstream, error) {
	f, err := fileutil.OpenNoFollow(fi.Path, false)
	if err != nil {
		return nil, nil, err
	}
	dec, err := zstd.NewReader(f, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxMemory(ring.MaxRegionSize))
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	z := &zstream{f: f, dec: dec}
	v := &rotate.View{FileInfo: fi}
	if st, err := f.Stat(); err == nil {
		v.Size = st.Size()
	}
	if err := z.ensure(0, ring.HeaderSize); err != nil {
		z.close()
		return nil, nil, &ring.CorruptionError{Path: fi.Path, Offset: -1, Err: fmt.Errorf("zstd: %w", err)}
	}
	h, err := ring.ParseHeader(z.buf, false)
	setPath(err, fi.Path)
	if err == nil && h.Segment != fi.Num {
		err = &ring.CorruptionError{Path: fi.Path, Offset: 16, Err: fmt.Errorf("header names segment %d, file name says %d (renamed or copied?)", h.Segment, fi.Num)}
	}
	if err != nil {
		z.close()
		return nil, nil, err
	}
	v.Header = h
	v.Data = z.buf
	return v, z, nil
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
	need := want - z.base
	if need > ring.MaxRegionSize {
		need = ring.MaxRegionSize
	}
	if cap(z.buf) < need {
		nb := make([]byte, len(z.buf), max(need, zWindow, 2*cap(z.buf)))
		copy(nb, z.buf)
		z.buf = nb
	}
	for len(z.buf) < need {
		if len(z.buf) == cap(z.buf) {
			if cap(z.buf) >= ring.MaxRegionSize {
				return fmt.Errorf("%w: decompresses to more than %d bytes", ring.ErrBadLength, ring.MaxRegionSize)
			}
			nb := make([]byte, len(z.buf), 2*cap(z.buf))
			copy(nb, z.buf)
			z.buf = nb
		}
		m, err := z.dec.Read(z.buf[len(z.buf):cap(z.buf)])
		z.buf = z.buf[:len(z.buf)+m]
		if errors.Is(err, io.EOF) {
			z.eof = true
			return nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// prepare makes the window ready for decoding the record at pos: the
// whole record when its length word is sound, the rest of the segment when
// it is padding, a hole or damage (rare: Resync then needs it all).
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
	return z.ensure(pos, ring.MaxRegionSize)
}

func (z *zstream) close() {
	z.dec.Close()
	z.f.Close()
	z.buf = nil
}
