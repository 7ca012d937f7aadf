package rotate

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/klauspost/compress/zstd"

	"github.com/mmaplog/mmaplog/internal/fault"
	"github.com/mmaplog/mmaplog/internal/fileutil"
	"github.com/mmaplog/mmaplog/ring"
)

// View is a segment opened for reading: a read-only shared mapping of a
// plain segment file, the decompressed bytes of a compressed one, or (see
// OpenStream) a window of them that moves forward as it is read.
//
// While a View of a plain segment is open, its reader holds a shared flock
// on the file: a writer that wants to reuse the file for a new segment
// takes it only if it can lock it exclusively (see Reclaim).
type View struct {
	FileInfo
	Header ring.Header
	// Data holds the segment's bytes from offset Base on: the whole
	// mapping or decompressed content (Base 0), or a stream's window.
	Data []byte
	Base int64
	// Truncated is set for a plain segment whose file is shorter than its
	// header says (someone truncated it): Data holds what is left.
	Truncated bool

	file   *os.File // the plain file, open (and share-locked) while mapped
	mapped bool
	z      *zstream
}

// maxDecompressed bounds what decompressing one segment may allocate.
const maxDecompressed = ring.MaxRegionSize

// ErrReclaimed is wrapped, together with fs.ErrNotExist, by the error of an
// opener that found a segment file renamed away from its name for reuse
// between opening and locking it: the segment is gone under that name.
var ErrReclaimed = errors.New("segment file taken for reuse")

// openPlain opens a plain segment file for reading, takes the shared lock
// that keeps it from being reused, and checks that its name still refers to
// it. A file renamed away meanwhile (for reuse) gives an error wrapping
// fs.ErrNotExist and ErrReclaimed.
func openPlain(path string) (*os.File, error) {
	f, err := fileutil.OpenNoFollow(path, false)
	if err != nil {
		return nil, err
	}
	if err := fileutil.LockShared(f); errors.Is(err, fileutil.ErrLockBusy) {
		// Only a writer reusing the file locks it exclusively, and it
		// renames the file away from this name first.
		f.Close()
		return nil, &fs.PathError{Op: "open", Path: path, Err: errors.Join(fs.ErrNotExist, ErrReclaimed)}
	}
	// Any other error: a filesystem without flock. The reader reads
	// unprotected there, and a writer cannot take a file for reuse
	// (Reclaim's exclusive lock fails the same way: it removes instead).
	same, err := fileutil.SameFile(f, path)
	if err != nil || !same {
		f.Close()
		if err == nil {
			err = &fs.PathError{Op: "open", Path: path, Err: errors.Join(fs.ErrNotExist, ErrReclaimed)}
		}
		return nil, err
	}
	return f, nil
}

// OpenView opens a segment file for reading and validates its header: a
// plain one mapped, a compressed one decompressed whole. A plain segment
// whose writer has not activated it yet gives ring.ErrNotStarted; damage
// gives a *ring.CorruptionError naming the file.
func OpenView(fi FileInfo) (*View, error) {
	if !fi.Compressed {
		return openMapped(fi)
	}
	v, err := OpenStream(fi)
	if err != nil {
		return nil, err
	}
	if err := v.z.ensure(0, maxDecompressed+1); err != nil {
		v.Close()
		return nil, &ring.CorruptionError{Path: fi.Path, Offset: -1, Err: fmt.Errorf("zstd: %w", err)}
	}
	data := v.z.buf
	v.z.close()
	v.z, v.Data = nil, data
	return v, nil
}

// OpenStream opens a segment for reading like OpenView, but a compressed
// segment as a stream: Data is a window of its decompressed bytes that
// Prepare moves forward, so that reading a backlog of large compressed
// segments keeps memory small.
func OpenStream(fi FileInfo) (*View, error) {
	if !fi.Compressed {
		return openMapped(fi)
	}
	f, err := fileutil.OpenNoFollow(fi.Path, false)
	if err != nil {
		return nil, err
	}
	v := &View{FileInfo: fi}
	if st, err := f.Stat(); err == nil {
		v.Size = st.Size()
	}
	z, err := newZstream(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	v.z = z
	if err := z.ensure(0, ring.HeaderSize); err != nil {
		v.Close()
		return nil, &ring.CorruptionError{Path: fi.Path, Offset: -1, Err: fmt.Errorf("zstd: %w", err)}
	}
	h, _, err := ring.CheckSegmentHeader(z.buf, fi.Num, -1)
	if err != nil {
		v.Close()
		return nil, withPath(err, fi.Path)
	}
	v.Header, v.Data = h, z.buf
	z.limit = int(h.Size)
	return v, nil
}

func openMapped(fi FileInfo) (*View, error) {
	f, err := openPlain(fi.Path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	v := &View{FileInfo: fi, file: f}
	v.Size = st.Size()
	if st.Size() < ring.HeaderSize {
		f.Close()
		return nil, &ring.CorruptionError{Path: fi.Path, Offset: st.Size(), Err: fmt.Errorf("%w: file is %d bytes, a segment header alone is %d (truncated, or still being created)", ring.ErrShort, st.Size(), ring.HeaderSize)}
	}
	if st.Size() > ring.MaxRegionSize {
		f.Close()
		return nil, &ring.CorruptionError{Path: fi.Path, Offset: 0, Err: fmt.Errorf("%w: file is %d bytes, larger than any segment", ring.ErrBadLength, st.Size())}
	}
	if v.Data, err = fileutil.Map(f, int(st.Size()), false); err != nil {
		f.Close()
		return nil, err
	}
	v.mapped = true
	err = fault.Guard(fi.Path, func() error {
		var err error
		v.Header, v.Truncated, err = ring.CheckSegmentHeader(v.Data, fi.Num, st.Size())
		return err
	})
	if err != nil {
		v.Close()
		return nil, withPath(err, fi.Path)
	}
	return v, nil
}

// OpenSegment looks segment n of dir up by name (Lookup) and opens it with
// OpenStream, or with OpenView if whole is set. A segment compressed between
// the lookup and the open is looked up again.
func OpenSegment(dir string, n uint64, whole bool) (*View, error) {
	open := OpenStream
	if whole {
		open = OpenView
	}
	var err error
	for tries := 0; tries < 3; tries++ {
		var fi FileInfo
		if fi, err = Lookup(dir, n); err != nil {
			return nil, err
		}
		var v *View
		if v, err = open(fi); !errors.Is(err, fs.ErrNotExist) {
			return v, err
		}
	}
	return nil, err
}

// Prepare makes Data hold the record at segment offset pos: for a stream,
// the whole record when its length word is sound, and the rest of the
// segment when it is padding, a hole or damage (the decoder then looks past
// it). Offsets never go backwards. For other views it does nothing.
func (v *View) Prepare(pos int64) error {
	if v.z == nil {
		return nil
	}
	if err := v.z.prepare(int(pos)); err != nil {
		return &ring.CorruptionError{Path: v.Path, Offset: pos, Err: fmt.Errorf("zstd: %w", err)}
	}
	v.Data, v.Base = v.z.buf, int64(v.z.base)
	return nil
}

// PrepareRest makes Data hold everything from segment offset pos to the end
// of the segment: for a decoder that met damage in a stream's window and
// must look past it. For other views it does nothing.
func (v *View) PrepareRest(pos int64) error {
	if v.z == nil {
		return nil
	}
	if err := v.z.ensure(int(pos), maxDecompressed); err != nil {
		return &ring.CorruptionError{Path: v.Path, Offset: pos, Err: fmt.Errorf("zstd: %w", err)}
	}
	v.Data, v.Base = v.z.buf, int64(v.z.base)
	return nil
}

// Partial reports whether Data may end before the end of the segment: a
// stream's window that has not reached the end of the decompressed bytes.
func (v *View) Partial() bool { return v.z != nil && !v.z.eof }

// Stream reports whether the view is a moving window of a compressed
// segment.
func (v *View) Stream() bool { return v.z != nil }

// Close releases the view's memory and file (and with it the shared lock).
func (v *View) Close() error {
	var err error
	if v.mapped {
		v.mapped = false
		err = fileutil.Unmap(v.Data)
	}
	v.Data = nil
	if v.z != nil {
		v.z.close()
		v.z = nil
	}
	if v.file != nil {
		if cerr := v.file.Close(); err == nil {
			err = cerr
		}
		v.file = nil
	}
	return err
}

// PeekHeader reads and validates the header of a segment file without
// mapping it (or decompressing more than the header of a compressed one). A
// prepared segment gives ring.ErrNotStarted, a file still being created
// (shorter than a header) ring.ErrShort.
func PeekHeader(fi FileInfo) (ring.Header, error) {
	var f *os.File
	var err error
	if fi.Compressed {
		f, err = fileutil.OpenNoFollow(fi.Path, false)
	} else {
		f, err = openPlain(fi.Path)
	}
	if err != nil {
		return ring.Header{}, err
	}
	defer f.Close()
	var src io.Reader = f
	size := int64(-1)
	if fi.Compressed {
		dec, err := zstd.NewReader(f, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxMemory(maxDecompressed))
		if err != nil {
			return ring.Header{}, err
		}
		defer dec.Close()
		src = dec
	} else if st, err := f.Stat(); err == nil {
		size = st.Size()
	}
	b := make([]byte, ring.HeaderSize)
	if _, err := io.ReadFull(src, b); err != nil {
		return ring.Header{}, &ring.CorruptionError{Path: fi.Path, Offset: 0, Err: fmt.Errorf("%w: reading the header: %v", ring.ErrShort, err)}
	}
	h, _, err := ring.CheckSegmentHeader(b, fi.Num, size)
	return h, withPath(err, fi.Path)
}

// PeekState reads the state word of a plain segment's header (ring.State)
// without mapping it.
func PeekState(fi FileInfo) (ring.State, error) {
	f, err := openPlain(fi.Path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	b := make([]byte, ring.HeaderSize)
	if _, err := f.ReadAt(b, 0); err != nil {
		return 0, err
	}
	return ring.LoadState(b), nil
}

// withPath names the file in a *ring.CorruptionError that has no path yet.
func withPath(err error, path string) error {
	var ce *ring.CorruptionError
	if errors.As(err, &ce) && ce.Path == "" {
		ce.Path = path
	}
	return err
}

// MapControl maps the first page of a plain segment read-write, for a
// follower's futex wait on the control area of its header (ring.WakeWord,
// ring.ArmWake): the one place where a reader writes. It fails for a reader
// without write access to the file, which then polls, and for a file that
// no longer is the one the view has open.
func (v *View) MapControl() ([]byte, error) {
	if v.file == nil {
		return nil, fmt.Errorf("%s: no control area to map (compressed segment)", v.Path)
	}
	f, err := fileutil.OpenNoFollow(v.Path, true)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if same, err := fileutil.SameOpenFile(f, v.file); err != nil || !same {
		return nil, fmt.Errorf("%s: the name no longer refers to the segment being read", v.Path)
	}
	return fileutil.Map(f, fileutil.PageSize(), true)
}
