package tail

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// CursorDir is the directory, inside a log directory, where cursors are kept
// by default: DIR/cursors/NAME. Readers of the log ignore it; `mmaptail
// stat` lists the cursors there with their lag.
const CursorDir = "cursors"

// Cursor is how far a consumer of a log has got, saved in a small file so
// that it survives crashes: the log's identity and the sequence number of
// the first record not yet delivered. A shipper saves it only after its
// output acknowledged every record before NextSeq.
type Cursor struct {
	LogID   [16]byte
	NextSeq uint64 // first record not yet delivered
	// Segment and Offset say where the record NextSeq-1 ended, and Time
	// when it was written (Unix ns): for measuring the lag in bytes and
	// seconds. Zero when nothing was delivered yet.
	Segment uint64
	Offset  int64
	Time    int64
	// Lost counts the records the consumer could not deliver because
	// they were damaged or removed by retention before it read them.
	Lost uint64
	// Saved is when the cursor was saved (Unix ns).
	Saved int64
}

// cursorFile is the file format: JSON, so that an operator can read it.
type cursorFile struct {
	Log     string `json:"log_id"`
	NextSeq uint64 `json:"next_seq"`
	Segment uint64 `json:"segment,omitempty"`
	Offset  int64  `json:"offset,omitempty"`
	Time    int64  `json:"record_time_ns,omitempty"`
	Lost    uint64 `json:"lost,omitempty"`
	Saved   int64  `json:"saved_ns"`
}

// ErrNoCursor is wrapped by LoadCursor's error when the file does not exist.
var ErrNoCursor = errors.New("no cursor saved yet")

// ErrCursorPath is wrapped by the errors of LoadCursor, Save, Cursors and
// OpenCursorDir when the cursor file, or the directory that holds it, is a
// symbolic link or not a file of the right type (a named pipe, a device):
// cursors are never read or written through a symbolic link, and never
// wait on a pipe.
var ErrCursorPath = errors.New("unsafe cursor path")

// CursorPath returns the default place of the cursor called name for the log
// in dir.
func CursorPath(dir, name string) string { return filepath.Join(dir, CursorDir, name) }

// LoadCursor reads a cursor file. A missing file gives an error wrapping
// ErrNoCursor (and fs.ErrNotExist); a damaged one an error naming it; a
// symbolic link or something else than a regular file (at the file, or at
// the directory holding it) an error wrapping ErrCursorPath. It never
// blocks: a named pipe there is an error, not a wait for a writer.
func LoadCursor(path string) (Cursor, error) {
	var c Cursor
	f, err := openCursorFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return c, fmt.Errorf("cursor %s: %w: %w", path, ErrNoCursor, err)
		}
		return c, err
	}
	defer f.Close()
	var cf cursorFile
	dec := json.NewDecoder(f)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cf); err != nil {
		return c, fmt.Errorf("cursor %s is damaged (%v): delete it to start over (from --from)", path, err)
	}
	id, err := hex.DecodeString(cf.Log)
	if err != nil || len(id) != 16 || cf.NextSeq == 0 {
		return c, fmt.Errorf("cursor %s is damaged (log id %q, next_seq %d): delete it to start over (from --from)", path, cf.Log, cf.NextSeq)
	}
	copy(c.LogID[:], id)
	c.NextSeq, c.Segment, c.Offset, c.Time, c.Lost, c.Saved = cf.NextSeq, cf.Segment, cf.Offset, cf.Time, cf.Lost, cf.Saved
	return c, nil
}

// Save writes the cursor to path atomically: to a temporary file in the same
// directory, fsynced, renamed over path, and the directory fsynced. A crash
// at any point leaves the old cursor or the new one, never a mix. The
// directory is created (0700) if needed; it is never reached through a
// symbolic link (see OpenCursorDir), and the files in it are created and
// renamed relative to it, so that nothing is written through a link planted
// there.
func (c Cursor) Save(path string) error {
	d, err := OpenCursorDir(path, true)
	if err != nil {
		return err
	}
	defer d.Close()
	if c.Saved == 0 {
		c.Saved = time.Now().UnixNano()
	}
	b, err := json.Marshal(cursorFile{Log: hex.EncodeToString(c.LogID[:]), NextSeq: c.NextSeq, Segment: c.Segment, Offset: c.Offset, Time: c.Time, Lost: c.Lost, Saved: c.Saved})
	if err != nil {
		return err
	}
	b = append(b, '\n')
	dfd := int(d.Fd())
	name := filepath.Base(path)
	tmp := name + ".tmp"
	_ = unix.Unlinkat(dfd, tmp, 0) // a leftover of a crash
	fd, err := unix.Openat(dfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("cursor: save %s: create %s: %w", path, tmp, err)
	}
	f := os.NewFile(uintptr(fd), path+".tmp")
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = unix.Renameat(dfd, tmp, dfd, name)
	}
	if err != nil {
		_ = unix.Unlinkat(dfd, tmp, 0)
		return fmt.Errorf("cursor: save %s: %w", path, err)
	}
	if err := d.Sync(); err != nil {
		return fmt.Errorf("cursor: save %s: fsync its directory: %w", path, err)
	}
	return nil
}

// OpenCursorDir opens the directory that holds the cursor file at path
// (DIR/cursors for the default cursors), creating it (0700), and the
// directories above it, if create is set. It never follows a symbolic link
// there: a link, or a file that is not a directory, gives an error wrapping
// ErrCursorPath that names it (the directories above it are the operator's
// to choose, links included). Whoever keeps files next to a cursor (a
// lock) creates and opens them relative to it.
func OpenCursorDir(path string, create bool) (*os.File, error) {
	dir := filepath.Dir(path)
	parent, base := filepath.Dir(dir), filepath.Base(dir)
	if create {
		if err := os.MkdirAll(parent, 0o700); err != nil {
			return nil, fmt.Errorf("cursor: %w", err)
		}
	}
	p, err := os.Open(parent)
	if err != nil {
		return nil, fmt.Errorf("cursor: %w", err)
	}
	defer p.Close()
	pfd := int(p.Fd())
	if create {
		if err := unix.Mkdirat(pfd, base, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
			return nil, fmt.Errorf("cursor: mkdir %s: %w", dir, err)
		}
	}
	fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if kind := typeAt(pfd, base); kind != "" && kind != "a directory" {
			return nil, fmt.Errorf("cursor directory %s: %w: it is %s, not a directory; remove it (it is created when a cursor is saved), or keep cursors elsewhere", dir, ErrCursorPath, kind)
		}
		return nil, fmt.Errorf("cursor: open directory %s: %w", dir, err)
	}
	return os.NewFile(uintptr(fd), dir), nil
}

// openCursorFile opens the cursor file at path for reading, never through
// a symbolic link, and only if it is a regular file.
func openCursorFile(path string) (*os.File, error) {
	d, err := OpenCursorDir(path, false)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	dfd, name := int(d.Fd()), filepath.Base(path)
	notRegular := func(kind string) error {
		return fmt.Errorf("cursor %s: %w: it is %s, not a regular file; remove it, or give the cursor another path", path, ErrCursorPath, kind)
	}
	// Look first, so that a device is never opened; then open without
	// waiting (a pipe put there meanwhile), and look at what was opened.
	if kind := typeAt(dfd, name); kind != "" && kind != "a regular file" {
		return nil, notRegular(kind)
	}
	fd, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return nil, notRegular("a symbolic link")
		}
		return nil, fmt.Errorf("cursor: open %s: %w", path, err)
	}
	f := os.NewFile(uintptr(fd), path)
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("cursor: %w", err)
		}
		return nil, notRegular(fileKind(st.Mode()))
	}
	return f, nil
}

// typeAt says what name, in the directory open as dirfd, is (without
// following a symbolic link): "" if it cannot be looked at.
func typeAt(dirfd int, name string) string {
	var st unix.Stat_t
	if unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) != nil {
		return ""
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		return "a regular file"
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFLNK:
		return "a symbolic link"
	case unix.S_IFIFO:
		return "a named pipe"
	case unix.S_IFSOCK:
		return "a socket"
	case unix.S_IFCHR, unix.S_IFBLK:
		return "a device"
	}
	return "a special file"
}

// fileKind names the type of a file mode the way typeAt does.
func fileKind(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "a regular file"
	case m.IsDir():
		return "a directory"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "a special file"
}

// Check returns an error wrapping ErrOtherLog if the cursor belongs to
// another log than id.
func (c Cursor) Check(id [16]byte, path string) error {
	if c.LogID != id {
		return fmt.Errorf("cursor %s: %w (cursor's log id %x, the log's %x): delete the cursor, or point it at its own log", path, ErrOtherLog, c.LogID, id)
	}
	return nil
}

// Options returns reading options that continue where the cursor stopped,
// refusing segments of another log.
func (c Cursor) Options() Options {
	return Options{FromSeq: c.NextSeq, LogID: c.LogID}
}

// NamedCursor is a cursor file found by Cursors.
type NamedCursor struct {
	Name   string
	Path   string
	Cursor Cursor
	Err    error // the file could not be read
}

// Cursors returns the cursors kept under DIR/cursors, by name. A symbolic
// link at DIR/cursors gives an error wrapping ErrCursorPath.
func Cursors(dir string) ([]NamedCursor, error) {
	d, err := OpenCursorDir(CursorPath(dir, "x"), false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	ents, err := d.ReadDir(-1)
	d.Close()
	if err != nil {
		return nil, fmt.Errorf("cursors: %w", err)
	}
	var out []NamedCursor
	for _, e := range ents {
		if !e.Type().IsRegular() || strings.HasSuffix(e.Name(), ".tmp") {
			continue
		}
		p := CursorPath(dir, e.Name())
		c, err := LoadCursor(p)
		out = append(out, NamedCursor{Name: e.Name(), Path: p, Cursor: c, Err: err})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
