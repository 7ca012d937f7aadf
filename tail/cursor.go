package tail

import (
	"fmt"
	"os"

	"github.com/mmaplog/mmaplog/internal/cursorfile"
)

// CursorDir is the directory, inside a log directory, where cursors are kept
// by default: DIR/cursors/NAME. Readers of the log ignore it; `mmaptail
// stat` lists the cursors there with their lag.
const CursorDir = cursorfile.DirName

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

// ErrNoCursor is wrapped by LoadCursor's error when the file does not exist.
var ErrNoCursor = cursorfile.ErrNoCursor

// ErrCursorPath is wrapped by the errors of LoadCursor, Save, Cursors and
// OpenCursorDir when the cursor file, or the directory that holds it, is a
// symbolic link or not a file of the right type (a named pipe, a device):
// cursors are never read or written through a symbolic link, and never
// wait on a pipe.
var ErrCursorPath = cursorfile.ErrCursorPath

// CursorPath returns the default place of the cursor called name for the log
// in dir.
func CursorPath(dir, name string) string { return cursorfile.Path(dir, name) }

// LoadCursor reads a cursor file. A missing file gives an error wrapping
// ErrNoCursor (and fs.ErrNotExist); a damaged one an error naming it; a
// symbolic link or something else than a regular file (at the file, or at
// the directory holding it) an error wrapping ErrCursorPath. It never
// blocks: a named pipe there is an error, not a wait for a writer.
func LoadCursor(path string) (Cursor, error) {
	c, err := cursorfile.Load(path)
	return fromFile(c), err
}

// Save writes the cursor to path atomically: to a temporary file in the same
// directory, fsynced, renamed over path, and the directory fsynced. A crash
// at any point leaves the old cursor or the new one, never a mix. The
// directory is created (0700) if needed; it is never reached through a
// symbolic link (see OpenCursorDir), and the files in it are created and
// renamed relative to it, so that nothing is written through a link planted
// there.
func (c Cursor) Save(path string) error { return c.file().Save(path) }

// OpenCursorDir opens the directory that holds the cursor file at path
// (DIR/cursors for the default cursors), creating it (0700), and the
// directories above it, if create is set. It never follows a symbolic link
// there: a link, or a file that is not a directory, gives an error wrapping
// ErrCursorPath that names it (the directories above it are the operator's
// to choose, links included). Whoever keeps files next to a cursor (a
// lock) creates and opens them relative to it.
func OpenCursorDir(path string, create bool) (*os.File, error) {
	return cursorfile.OpenDir(path, create)
}

func (c Cursor) file() cursorfile.Cursor {
	return cursorfile.Cursor{LogID: c.LogID, NextSeq: c.NextSeq, Segment: c.Segment, Offset: c.Offset, Time: c.Time, Lost: c.Lost, Saved: c.Saved}
}

func fromFile(c cursorfile.Cursor) Cursor {
	return Cursor{LogID: c.LogID, NextSeq: c.NextSeq, Segment: c.Segment, Offset: c.Offset, Time: c.Time, Lost: c.Lost, Saved: c.Saved}
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

// Cursors returns the cursors kept under DIR/cursors, by name (a
// registration of a cursor kept elsewhere among them, see ship). A symbolic
// link at DIR/cursors gives an error wrapping ErrCursorPath.
func Cursors(dir string) ([]NamedCursor, error) {
	ents, err := cursorfile.List(dir)
	if err != nil {
		return nil, err
	}
	var out []NamedCursor
	for _, e := range ents {
		out = append(out, NamedCursor{Name: e.Name, Path: e.Path, Cursor: fromFile(e.Cursor), Err: e.Err})
	}
	return out, nil
}
