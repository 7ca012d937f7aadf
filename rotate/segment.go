package rotate

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

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
	// ctl is its first page mapped once more by the preparer for the
	// Appends' wake words (fileutil.MapControl); nil: none. A Live
	// segment takes it over.
	ctl []byte
}

// Create creates segment num in dir: a file of exactly size bytes,
// preallocated on disk, mapped and, if prefault is set, pre-faulted for
// writing. Its header is left zero: the writer activates it with
// ring.PutHeader. The file is made under a temporary name (never through a
// symbolic link) and renamed into place only once fully allocated, without
// replacing anything, so a crash never leaves a half-made segment under a
// segment's name. A full disk is reported here, naming the file.
func Create(dir string, num uint64, size int64, perm os.FileMode, prefault bool) (*Segment, error) {
	seg, _, err := CreateFrom(nil, dir, num, size, perm, prefault)
	return seg, err
}

// CreateFrom is Create, but makes the segment from a file of pool if it
// holds one (reused reports it): renamed to the segment's temporary name,
// mapped and cleared through the mapping, renamed into place. A reused file
// needs no new page-cache pages and no disk allocation. With an empty pool
// (or nil), or if the pooled file is no longer whole, it creates a new file.
func CreateFrom(pool *Pool, dir string, num uint64, size int64, perm os.FileMode, prefault bool) (seg *Segment, reused bool, err error) {
	return createFrom(pool, dir, num, size, perm, prefault, false)
}

// createFrom is CreateFrom; with fillNew (and prefault), a new file's pages
// are filled through the write path before the mapping is pre-faulted
// (fileutil.WriteZeros): the write path makes them, in large folios where
// the filesystem has them, several times faster than pre-faulting does one
// page at a time (64 MiB on ext4, Linux 6.18: 13-17 ms of writes and 6 ms
// of pre-faulting, against 30-128 ms of pre-faulting alone), which decides
// whether a new log's first segments are ready in time. But msync writes a
// dirty folio back whole, so a per-record msync costs more on such a file
// (about 2.2x here): flush policies that msync while the writer writes go
// without.
func createFrom(pool *Pool, dir string, num uint64, size int64, perm os.FileMode, prefault, fillNew bool) (seg *Segment, reused bool, err error) {
	if size < ring.HeaderSize+ring.RecordHeaderSize || size > ring.MaxRegionSize || size%int64(fileutil.PageSize()) != 0 {
		return nil, false, fmt.Errorf("segment size %d: must be a multiple of the page size (%d) between %d and %d bytes", size, fileutil.PageSize(), fileutil.PageSize(), ring.MaxRegionSize)
	}
	path := filepath.Join(dir, SegmentName(num))
	tmp := path + tmpExt
	var f *os.File
	var reuseErr error
	if pf, ok := pool.take(); ok && pool.size == size {
		f, data, err := reuse(pf, path, tmp, size, perm, prefault)
		if err == nil {
			return &Segment{Num: num, Path: path, File: f, Data: data}, true, nil
		}
		// The pooled file is gone (truncated by another process, say):
		// a new file instead, so that the writer does not see the error.
		reuseErr = err
	} else if ok {
		closePooled(pf)
		os.Remove(pf.path)
	}
	if f, err = createNew(path, tmp, size, perm); err != nil {
		return nil, false, errors.Join(err, reuseErr)
	}
	if prefault && fillNew {
		if err := fileutil.WriteZeros(f, size); err != nil {
			f.Close()
			os.Remove(path)
			return nil, false, fmt.Errorf("pre-fault new segment file %s: %w", path, err)
		}
	}
	data, err := mapWritable(f, size, prefault)
	if err != nil {
		f.Close()
		os.Remove(path)
		return nil, false, err
	}
	return &Segment{Num: num, Path: path, File: f, Data: data}, false, nil
}

// mapWritable maps the first size bytes of f read-write and, if prefault,
// pre-faults the mapping for writing.
func mapWritable(f *os.File, size int64, prefault bool) ([]byte, error) {
	data, err := fileutil.Map(f, int(size), true)
	if err != nil {
		return nil, err
	}
	if prefault {
		if err := fileutil.PrefaultWrite(data); err != nil {
			fileutil.Unmap(data)
			return nil, fmt.Errorf("pre-fault segment file %s: %w", f.Name(), err)
		}
	}
	return data, nil
}

// createNew makes a new segment file at tmp, preallocated (its blocks
// reserved, reading as zeros), and renames it to path.
func createNew(path, tmp string, size int64, perm os.FileMode) (*os.File, error) {
	f, err := fileutil.CreateExclusive(tmp, perm)
	if errors.Is(err, os.ErrExist) {
		// A leftover of a crash during an earlier preparation.
		os.Remove(tmp)
		f, err = fileutil.CreateExclusive(tmp, perm)
	}
	if err != nil {
		return nil, fmt.Errorf("create segment: %w", err)
	}
	fail := func(err error) (*os.File, error) {
		f.Close()
		os.Remove(tmp)
		return nil, err
	}
	if err := fileutil.Preallocate(f, size); err != nil {
		return fail(fmt.Errorf("preallocate segment %s (%d bytes): %w (free disk space, or lower SegmentSize or the retention bounds)", path, size, err))
	}
	if err := fileutil.RenameNoReplace(tmp, path); err != nil {
		return fail(fmt.Errorf("create segment: %w", err))
	}
	return f, nil
}

// OpenWritable maps an existing segment file read-write and validates its
// header (a truncated file is accepted). See OpenRepair.
func OpenWritable(path string, num uint64) (*Segment, error) {
	seg, _, _, err := OpenRepair(FileInfo{Num: num, Path: path})
	return seg, err
}

// OpenRepair maps an existing segment file read-write, for a writer that
// continues or repairs it after a restart, and validates its header (see
// ring.CheckSegmentHeader). A file shorter than its header says is returned
// with truncated set; damage gives a *ring.CorruptionError naming the file.
func OpenRepair(fi FileInfo) (seg *Segment, h ring.Header, truncated bool, err error) {
	f, err := fileutil.OpenNoFollow(fi.Path, true)
	if err != nil {
		return nil, h, false, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, h, false, err
	}
	if st.Size() < ring.HeaderSize || st.Size() > ring.MaxRegionSize {
		f.Close()
		return nil, h, false, &ring.CorruptionError{Path: fi.Path, Offset: 0, Err: fmt.Errorf("%w: file is %d bytes", ring.ErrShort, st.Size())}
	}
	data, err := fileutil.Map(f, int(st.Size()), true)
	if err != nil {
		f.Close()
		return nil, h, false, err
	}
	seg = &Segment{Num: fi.Num, Path: fi.Path, File: f, Data: data}
	err = fault.Guard(fi.Path, func() error {
		var err error
		h, truncated, err = ring.CheckSegmentHeader(data, fi.Num, st.Size())
		return err
	})
	if err != nil {
		seg.Close()
		return nil, h, false, withPath(err, fi.Path)
	}
	return seg, h, truncated, nil
}

// Close unmaps the segment and closes its file.
func (s *Segment) Close() error {
	if s.ctl != nil {
		fileutil.ReleaseControl(s.ctl)
		s.ctl = nil
	}
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
