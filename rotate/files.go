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
	// uncompressed (a compression interrupted after its rename).
	Duplicates []FileInfo
	Temp       []string // leftover temporary files
	Foreign    []string // files that are not the log's
}

// List reads a log directory. A missing directory is an error wrapping
// fs.ErrNotExist.
func List(dir string) (Listing, error) {
	var l Listing
	ents, err := os.ReadDir(dir)
	if err != nil {
		return l, err
	}
	byNum := map[uint64]int{}
	for _, e := range ents {
		name := e.Name()
		path := filepath.Join(dir, name)
		if e.IsDir() || name == LockName {
			continue
		}
		if strings.HasSuffix(name, tmpExt) {
			l.Temp = append(l.Temp, path)
			continue
		}
		n, compressed, ok := ParseName(name)
		if !ok || !e.Type().IsRegular() {
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
