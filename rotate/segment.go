package rotate

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/klauspost/compress/zstd"

	"github.com/mmaplog/mmaplog/internal/fault"
	"github.com/mmaplog/mmaplog/internal/fileutil"
	"github.com/mmaplog/mmaplog/ring"
)

// Segment is a segment file open for writing, mapped MAP_SHARED read-write.
type Segment struct {
	Num  uint64
	Path string
	File *os.File
	Data []byte // the mapping of the whole file
}

// Create creates segment num in dir: a file of exactly size bytes,
// preallocated on disk, mapped and, if prefault is set, pre-faulted for
// writing. Its header is left zero: the writer activates it with
// ring.PutHeader. The file is made under a temporary name (never through a
// symbolic link) and renamed into place only once fully allocated, without
// replacing anything, so a crash never leaves a half-made segment under a
// segment's name. A full disk is reported here, naming the file.
func Create(dir string, num uint64, size int64, perm os.FileMode, prefault bool) (*Segment, error) {
	if size < ring.HeaderSize+ring.RecordHeaderSize || size > ring.MaxRegionSize || size%int64(fileutil.PageSize()) != 0 {
		return nil, fmt.Errorf("segment size %d: must be a multiple of the page size (%d) between %d and %d bytes", size, fileutil.PageSize(), fileutil.PageSize(), ring.MaxRegionSize)
	}
	path := filepath.Join(dir, SegmentName(num))
	tmp := path + tmpExt
	f, err := fileutil.CreateExclusive(tmp, perm)
	if errors.Is(err, os.ErrExist) {
		// A leftover of a crash during an earlier preparation.
		os.Remove(tmp)
		f, err = fileutil.CreateExclusive(tmp, perm)
	}
	if err != nil {
		return nil, fmt.Errorf("create segment: %w", err)
	}
	fail := func(err error) (*Segment, error) {
		f.Close()
		os.Remove(tmp)
		return nil, err
	}
	if err := fileutil.Preallocate(f, size); err != nil {
		return fail(fmt.Errorf("preallocate segment %s (%d bytes): %w (free disk space, or lower SegmentSize or the retention bounds)", path, size, err))
	}
	if prefault {
		// Pages of fallocated (unwritten) extents are slow to fault in
		// through a mapping (ext4 converts each one); zeros written
		// with pwrite put them in the page cache far faster, so the
		// mapping below can be populated cheaply.
		if err := fileutil.FillZeros(f, size); err != nil {
			return fail(fmt.Errorf("zero segment %s: %w", path, err))
		}
	}
	if err := fileutil.RenameNoReplace(tmp, path); err != nil {
		return fail(fmt.Errorf("create segment: %w", err))
	}
	data, err := fileutil.Map(f, int(size), true)
	if err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	if prefault {
		if err := fileutil.PrefaultWrite(data); err != nil {
			fileutil.Unmap(data)
			f.Close()
			os.Remove(path)
			return nil, fmt.Errorf("pre-fault segment %s: %w", path, err)
		}
	}
	return &Segment{Num: num, Path: path, File: f, Data: data}, nil
}

// OpenWritable maps an existing segment file read-write, for a writer that
// continues it after a restart. The file's size must be plausible; the caller
// validates the header.
func OpenWritable(path string, num uint64) (*Segment, error) {
	f, err := fileutil.OpenNoFollow(path, true)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if st.Size() < ring.HeaderSize || st.Size() > ring.MaxRegionSize {
		f.Close()
		return nil, &ring.CorruptionError{Path: path, Offset: 0, Err: fmt.Errorf("%w: file is %d bytes", ring.ErrShort, st.Size())}
	}
	data, err := fileutil.Map(f, int(st.Size()), true)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &Segment{Num: num, Path: path, File: f, Data: data}, nil
}

// Close unmaps the segment and closes its file.
func (s *Segment) Close() error {
	err := fileutil.Unmap(s.Data)
	s.Data = nil
	if cerr := s.File.Close(); err == nil {
		err = cerr
	}
	return err
}

// Remove closes the segment and deletes its file (the caller fsyncs the
// directory).
func (s *Segment) Remove() error {
	err := s.Close()
	if rerr := os.Remove(s.Path); err == nil {
		err = rerr
	}
	return err
}

// View is a segment opened for reading: a read-only shared mapping of a
// plain segment file, or the decompressed bytes of a compressed one.
type View struct {
	FileInfo
	Header ring.Header
	Data   []byte
	// Truncated is set for a plain segment whose file is shorter than its
	// header says (someone truncated it): Data holds what is left.
	Truncated bool
	mapped    bool
}

// maxDecompressed bounds what decompressing one segment may allocate.
const maxDecompressed = ring.MaxRegionSize

// OpenView opens a segment file for reading and validates its header. A plain
// segment whose writer has not activated it yet gives ring.ErrNotStarted;
// damage gives a *ring.CorruptionError naming the file.
func OpenView(fi FileInfo) (*View, error) {
	v := &View{FileInfo: fi}
	f, err := fileutil.OpenNoFollow(fi.Path, false)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	v.Size = st.Size()
	if fi.Compressed {
		dec, err := zstd.NewReader(f, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxDecompressed))
		if err != nil {
			return nil, err
		}
		defer dec.Close()
		var buf bytes.Buffer
		if _, err := io.Copy(&buf, io.LimitReader(dec, maxDecompressed+1)); err != nil {
			return nil, &ring.CorruptionError{Path: fi.Path, Offset: -1, Err: fmt.Errorf("zstd: %w", err)}
		}
		v.Data = buf.Bytes()
		if len(v.Data) > maxDecompressed {
			return nil, &ring.CorruptionError{Path: fi.Path, Offset: -1, Err: fmt.Errorf("%w: decompresses to more than %d bytes", ring.ErrBadLength, maxDecompressed)}
		}
	} else {
		if st.Size() < ring.HeaderSize {
			return nil, &ring.CorruptionError{Path: fi.Path, Offset: st.Size(), Err: fmt.Errorf("%w: file is %d bytes, a segment header alone is %d (truncated?)", ring.ErrShort, st.Size(), ring.HeaderSize)}
		}
		if st.Size() > ring.MaxRegionSize {
			return nil, &ring.CorruptionError{Path: fi.Path, Offset: 0, Err: fmt.Errorf("%w: file is %d bytes, larger than any segment", ring.ErrBadLength, st.Size())}
		}
		v.Data, err = fileutil.Map(f, int(st.Size()), false)
		if err != nil {
			return nil, err
		}
		v.mapped = true
	}
	h, err := v.parseHeader()
	if err != nil {
		v.Close()
		return nil, err
	}
	v.Header = h
	return v, nil
}

func (v *View) parseHeader() (h ring.Header, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fault.Error(r, v.Path)
		}
	}()
	defer fault.Catch()()
	h, err = ring.ParseHeader(v.Data, false)
	if err == nil && !v.Compressed && h.Size != uint64(len(v.Data)) {
		if h.Size < uint64(len(v.Data)) {
			err = &ring.CorruptionError{Offset: 40, Err: fmt.Errorf("%w: header says %d bytes, the file has %d (extended by someone else?)", ring.ErrBadLength, h.Size, len(v.Data))}
		} else {
			v.Truncated = true
		}
	}
	var ce *ring.CorruptionError
	if errors.As(err, &ce) {
		ce.Path = v.Path
	}
	if err == nil && h.Segment != v.Num {
		err = &ring.CorruptionError{Path: v.Path, Offset: 16, Err: fmt.Errorf("header names segment %d, file name says %d (renamed or copied?)", h.Segment, v.Num)}
	}
	return h, err
}

// Close releases the view's memory.
func (v *View) Close() error {
	if v.mapped {
		v.mapped = false
		return fileutil.Unmap(v.Data)
	}
	v.Data = nil
	return nil
}
