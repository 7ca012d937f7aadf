package cursorfile

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

// DirName is the directory, inside a log directory, where cursors are kept
// by default: DIR/cursors/NAME.
const DirName = "cursors"

// tmpExt marks a cursor being saved; listings skip it.
const tmpExt = ".tmp"

// Cursor is the content of a cursor file.
type Cursor struct {
	LogID   [16]byte
	NextSeq uint64 // first record not yet delivered
	Segment uint64 // where the record NextSeq-1 ended, and when it was written
	Offset  int64
	Time    int64
	Lost    uint64 // records the consumer could not deliver
	Saved   int64  // when the cursor was saved (Unix ns)
	// CursorFile is set in a registration (see the package comment): the
	// path of the cursor it stands for, kept outside the log directory.
	CursorFile string
}

// file is the format: JSON, so that an operator can read it.
type file struct {
	Log        string `json:"log_id"`
	NextSeq    uint64 `json:"next_seq"`
	Segment    uint64 `json:"segment,omitempty"`
	Offset     int64  `json:"offset,omitempty"`
	Time       int64  `json:"record_time_ns,omitempty"`
	Lost       uint64 `json:"lost,omitempty"`
	Saved      int64  `json:"saved_ns"`
	CursorFile string `json:"cursor_file,omitempty"`
}

// ErrNoCursor is wrapped by Load's error when the file does not exist.
var ErrNoCursor = errors.New("no cursor saved yet")

// ErrCursorPath is wrapped by the errors of Load, Save, List and OpenDir
// when the cursor file, or the directory that holds it, is a symbolic link
// or not a file of the right type (a named pipe, a device).
var ErrCursorPath = errors.New("unsafe cursor path")

// Path returns the default place of the cursor called name for the log in
// dir.
func Path(dir, name string) string { return filepath.Join(dir, DirName, name) }

// Load reads a cursor file. A missing file gives an error wrapping
// ErrNoCursor (and fs.ErrNotExist); a damaged one an error naming it; a
// symbolic link or something else than a regular file (at the file, or at
// the directory holding it) an error wrapping ErrCursorPath. It never
// blocks: a named pipe there is an error, not a wait for a writer.
func Load(path string) (Cursor, error) {
	d, err := OpenDir(path, false)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Cursor{}, fmt.Errorf("cursor %s: %w: %w", path, ErrNoCursor, err)
		}
		return Cursor{}, err
	}
	defer d.Close()
	return loadAt(d, path)
}

// loadAt is Load of the file named like path in the directory open as d.
func loadAt(d *os.File, path string) (Cursor, error) {
	var c Cursor
	f, err := openFileAt(d, path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return c, fmt.Errorf("cursor %s: %w: %w", path, ErrNoCursor, err)
		}
		return c, err
	}
	defer f.Close()
	var cf file
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
	c.NextSeq, c.Segment, c.Offset, c.Time, c.Lost, c.Saved, c.CursorFile = cf.NextSeq, cf.Segment, cf.Offset, cf.Time, cf.Lost, cf.Saved, cf.CursorFile
	return c, nil
}

// Save writes the cursor to path atomically: to a temporary file in the same
// directory, fsynced, renamed over path, and the directory fsynced. A crash
// at any point leaves the old cursor or the new one, never a mix. The
// directory is created (0700) if needed; it is never reached through a
// symbolic link (see OpenDir), and the files in it are created and renamed
// relative to it, so that nothing is written through a link planted there.
// A zero Saved is set to the time now.
func (c Cursor) Save(path string) error { return c.save(path, true) }

// SaveInLog is Save for a registration, DIR/cursors/NAME: it creates the
// directory cursors if needed, but never DIR (a log directory removed
// meanwhile is not made again).
func (c Cursor) SaveInLog(path string) error { return c.save(path, false) }

func (c Cursor) save(path string, parents bool) error {
	d, err := openDir(path, true, parents)
	if err != nil {
		return err
	}
	defer d.Close()
	if c.Saved == 0 {
		c.Saved = time.Now().UnixNano()
	}
	b, err := json.Marshal(file{Log: hex.EncodeToString(c.LogID[:]), NextSeq: c.NextSeq, Segment: c.Segment, Offset: c.Offset,
		Time: c.Time, Lost: c.Lost, Saved: c.Saved, CursorFile: c.CursorFile})
	if err != nil {
		return err
	}
	b = append(b, '\n')
	dfd := int(d.Fd())
	name := filepath.Base(path)
	tmp := name + tmpExt
	_ = unix.Unlinkat(dfd, tmp, 0) // a leftover of a crash
	fd, err := unix.Openat(dfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("cursor: save %s: create %s: %w", path, tmp, err)
	}
	f := os.NewFile(uintptr(fd), path+tmpExt)
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

// Remove removes the cursor file at path, relative to its directory opened
// as OpenDir does (never through a symbolic link). A missing file or
// directory is no error.
func Remove(path string) error {
	d, err := OpenDir(path, false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer d.Close()
	if err := unix.Unlinkat(int(d.Fd()), filepath.Base(path), 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("cursor: remove %s: %w", path, err)
	}
	return d.Sync()
}

// OpenDir opens the directory that holds the cursor file at path
// (DIR/cursors for the default cursors), creating it (0700), and the
// directories above it, if create is set. It never follows a symbolic link
// there: a link, or a file that is not a directory, gives an error wrapping
// ErrCursorPath that names it (the directories above it are the operator's
// to choose, links included).
func OpenDir(path string, create bool) (*os.File, error) { return openDir(path, create, create) }

func openDir(path string, create, parents bool) (*os.File, error) {
	dir := filepath.Dir(path)
	parent, base := filepath.Dir(dir), filepath.Base(dir)
	if parents {
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

// openFileAt opens the cursor file named like path in the directory open
// as d for reading, never through a symbolic link, and only if it is a
// regular file.
func openFileAt(d *os.File, path string) (*os.File, error) {
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

// Entry is a cursor file found by List.
type Entry struct {
	Name   string
	Path   string
	Cursor Cursor
	Err    error // the file could not be read
}

// List returns the cursors kept under DIR/cursors, by name: every regular
// file there but those being saved (a file removed meanwhile is left out).
// A missing DIR/cursors is no error (no cursors); a symbolic link there
// gives an error wrapping ErrCursorPath. It costs a directory listing and
// the reading of each (small) file: cheap enough for every retention pass
// of a writer.
func List(dir string) ([]Entry, error) {
	d, err := OpenDir(Path(dir, "x"), false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer d.Close()
	ents, err := d.ReadDir(-1)
	if err != nil {
		return nil, fmt.Errorf("cursors: %w", err)
	}
	var out []Entry
	for _, e := range ents {
		if !e.Type().IsRegular() || strings.HasSuffix(e.Name(), tmpExt) {
			continue
		}
		p := Path(dir, e.Name())
		c, err := loadAt(d, p)
		if errors.Is(err, ErrNoCursor) {
			continue // removed since the listing
		}
		out = append(out, Entry{Name: e.Name(), Path: p, Cursor: c, Err: err})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
