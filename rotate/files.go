package rotate

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// File name parts.
const (
	// SegmentExt is the extension of a segment file.
	SegmentExt = ".mlog"
	// CompressedExt is appended to SegmentExt for a zstd-compressed segment.
	CompressedExt = ".zst"
	// LockName is the name of the writer's lock file in the log directory.
	LockName = "LOCK"
	// tmpExt marks a file being written (compression); leftovers are removed.
	tmpExt = ".tmp"
	digits = 16
)

// SegmentName returns the file name of segment n.
func SegmentName(n uint64) string {
	return fmt.Sprintf("%0*d%s", digits, n, SegmentExt)
}

// FileInfo describes one segment file found in a log directory.
type FileInfo struct {
	Num        uint64
	Path       string
	Compressed bool
	Size       int64 // bytes on disk
	ModTime    int64 // Unix nanoseconds; set to the roll time for rolled segments
}

// ParseName returns the segment number of a segment file name, and whether
// it is compressed. ok is false for any other name.
func ParseName(name string) (n uint64, compressed, ok bool) {
	base := name
	if strings.HasSuffix(base, SegmentExt+CompressedExt) {
		base = strings.TrimSuffix(base, CompressedExt)
		compressed = true
	}
	if !strings.HasSuffix(base, SegmentExt) {
		return 0, false, false
	}
	num := strings.TrimSuffix(base, SegmentExt)
	if len(num) != digits {
		return 0, false, false
	}
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil {
		return 0, false, false
	}
	return n, compressed, true
}

// Listing is what List found in a log directory.
type Listing struct {
	Segments []FileInfo // by number; where a segment exists both plain and compressed, the plain file
	// Duplicates are compressed copies of segments that also exist
	// uncompressed (a compression between its rename and its unlink, or
	// interrupted there).
	Duplicates []FileInfo
	Temp       []string // leftover temporary files
	Foreign    []string // files that are not the log's
	// Obstacles are entries that are not regular files (symbolic links,
	// directories, devices) at names the writer creates: segment names,
	// compressed names and their temporary names. A writer refuses to open
	// a log that has any.
	Obstacles []string
}

// Oldest returns the lowest segment number listed, and false if there is
// none.
func (l Listing) Oldest() (uint64, bool) {
	if len(l.Segments) == 0 {
		return 0, false
	}
	return l.Segments[0].Num, true
}

// Find returns the listed segment numbered n.
func (l Listing) Find(n uint64) (FileInfo, bool) {
	i := sort.Search(len(l.Segments), func(i int) bool { return l.Segments[i].Num >= n })
	if i < len(l.Segments) && l.Segments[i].Num == n {
		return l.Segments[i], true
	}
	return FileInfo{}, false
}

// After returns the first listed segment numbered above n.
func (l Listing) After(n uint64) (FileInfo, bool) {
	i := sort.Search(len(l.Segments), func(i int) bool { return l.Segments[i].Num > n })
	if i < len(l.Segments) {
		return l.Segments[i], true
	}
	return FileInfo{}, false
}

// maxLookups bounds the segments List looks up by name to fill gaps in one
// directory listing; a larger gap is a real one.
const maxLookups = 64

// List reads a log directory: the one view of a log's segment set that
// readers, Verify, retention and recovery share. A directory listing taken
// while the writer compresses a segment can miss it under both its names
// (the compressed file is renamed into place and then the plain one
// unlinked, and readdir may pass the first name before the rename and the
// second after the unlink). So a number missing between two listed segments
// is looked up by name, both names, before List believes it is gone, and
// the directory is read again when a lookup finds nothing; a gap that
// survives that is real (a segment deleted by someone else). A missing
// directory is an error wrapping fs.ErrNotExist.
func List(dir string) (Listing, error) {
	var l Listing
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if l, err = listOnce(dir); err != nil {
			return l, err
		}
		if l.fillGaps(dir) {
			break
		}
	}
	return l, nil
}

// fillGaps looks up the numbers missing between listed segments and adds
// those it finds. It reports whether no gap is left.
func (l *Listing) fillGaps(dir string) bool {
	var found []FileInfo
	complete, looked := true, 0
	for i := 1; i < len(l.Segments); i++ {
		for n := l.Segments[i-1].Num + 1; n < l.Segments[i].Num; n++ {
			if looked++; looked > maxLookups {
				return false
			}
			fi, err := Lookup(dir, n)
			if err != nil {
				complete = false
				continue
			}
			found = append(found, fi)
		}
	}
	if len(found) > 0 {
		l.Segments = append(l.Segments, found...)
		sort.Slice(l.Segments, func(i, j int) bool { return l.Segments[i].Num < l.Segments[j].Num })
	}
	return complete
}

// Lookup finds segment n by name: the plain file, then the compressed one.
// That order is the reverse of compression's (rename of the compressed file
// into place, then unlink of the plain one), so a segment that exists under
// either name throughout is always found. A segment under neither name gives
// an error wrapping fs.ErrNotExist; a name that is not a regular file gives
// another error.
func Lookup(dir string, n uint64) (FileInfo, error) {
	plain := filepath.Join(dir, SegmentName(n))
	for _, c := range []bool{false, true} {
		path := plain
		if c {
			path += CompressedExt
		}
		st, err := os.Lstat(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return FileInfo{}, err
		}
		if !st.Mode().IsRegular() {
			return FileInfo{}, fmt.Errorf("%s is not a regular file (%v)", path, st.Mode().Type())
		}
		return FileInfo{Num: n, Path: path, Compressed: c, Size: st.Size(), ModTime: st.ModTime().UnixNano()}, nil
	}
	return FileInfo{}, fmt.Errorf("segment %d in %s: %w", n, dir, fs.ErrNotExist)
}

// writerName reports whether name is one the writer creates: a segment
// name, a compressed name or a temporary name of either.
func writerName(name string) bool {
	_, _, ok := ParseName(strings.TrimSuffix(name, tmpExt))
	return ok
}

func listOnce(dir string) (Listing, error) {
	var l Listing
	ents, err := os.ReadDir(dir)
	if err != nil {
		return l, err
	}
	byNum := map[uint64]int{}
	for _, e := range ents {
		name := e.Name()
		path := filepath.Join(dir, name)
		if name == LockName {
			continue
		}
		if !e.Type().IsRegular() {
			if writerName(name) {
				l.Obstacles = append(l.Obstacles, path)
			} else if !e.IsDir() {
				l.Foreign = append(l.Foreign, path)
			}
			continue
		}
		if strings.HasSuffix(name, tmpExt) {
			l.Temp = append(l.Temp, path)
			continue
		}
		n, compressed, ok := ParseName(name)
		if !ok {
			l.Foreign = append(l.Foreign, path)
			continue
		}
		info, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed while we listed
		} else if err != nil {
			return l, err
		}
		fi := FileInfo{Num: n, Path: path, Compressed: compressed, Size: info.Size(), ModTime: info.ModTime().UnixNano()}
		if i, dup := byNum[n]; dup {
			if compressed {
				l.Duplicates = append(l.Duplicates, fi)
				continue
			}
			l.Duplicates = append(l.Duplicates, l.Segments[i])
			l.Segments[i] = fi
			continue
		}
		byNum[n] = len(l.Segments)
		l.Segments = append(l.Segments, fi)
	}
	sort.Slice(l.Segments, func(i, j int) bool { return l.Segments[i].Num < l.Segments[j].Num })
	return l, nil
}

// DiskUsage returns the bytes the segment files of a listing take.
func (l Listing) DiskUsage() int64 {
	var n int64
	for _, s := range l.Segments {
		n += s.Size
	}
	for _, s := range l.Duplicates {
		n += s.Size
	}
	return n
}
