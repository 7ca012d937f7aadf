package tail

import (
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"

	"github.com/mmaplog/mmaplog/internal/fault"
	"github.com/mmaplog/mmaplog/internal/fileutil"
	"github.com/mmaplog/mmaplog/ring"
	"github.com/mmaplog/mmaplog/rotate"
)

// peekHeader reads and validates the header of a segment file without
// mapping it (or decompressing more than the header of a compressed one).
// A prepared segment gives ring.ErrNotStarted.
func peekHeader(fi rotate.FileInfo) (ring.Header, error) {
	f, err := fileutil.OpenNoFollow(fi.Path, false)
	if err != nil {
		return ring.Header{}, err
	}
	defer f.Close()
	var src io.Reader = f
	if fi.Compressed {
		dec, err := zstd.NewReader(f, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
		if err != nil {
			return ring.Header{}, err
		}
		defer dec.Close()
		src = dec
	}
	b := make([]byte, ring.HeaderSize)
	if _, err := io.ReadFull(src, b); err != nil {
		return ring.Header{}, &ring.CorruptionError{Path: fi.Path, Offset: 0, Err: fmt.Errorf("%w: reading the header: %v", ring.ErrShort, err)}
	}
	h, err := ring.ParseHeader(b, false)
	setPath(err, fi.Path)
	return h, err
}

// nextSeqOf returns the sequence number that follows the last record of a
// segment (for starting at the end of a log).
func nextSeqOf(fi rotate.FileInfo) (next uint64, err error) {
	v, err := rotate.OpenView(fi)
	if err != nil {
		return 0, err
	}
	defer v.Close()
	defer func() {
		if p := recover(); p != nil {
			err = fault.Error(p, v.Path)
		}
	}()
	defer fault.Catch()()
	return ring.Scan(v.Data, v.Header.FirstSeq, nil).NextSeq, nil
}
