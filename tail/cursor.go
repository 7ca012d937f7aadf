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

	"github.com/mmaplog/mmaplog/internal/fileutil"
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

// CursorPath returns the default place of the cursor called name for the log
// in dir.
func CursorPath(dir, name string) string { return filepath.Join(dir, CursorDir, name) }

// LoadCursor reads a cursor file. A missing file gives an error wrapping
// ErrNoCursor (and fs.ErrNotExist); a damaged one an error naming it.
func LoadCursor(path string) (Cursor, error) {
	var c Cursor
	f, err := fileutil.OpenNoFollow(path, false)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return c, fmt.Errorf("cursor %s: %w: %w", path, ErrNoCursor, err)
		}
		return c, fmt.Errorf("cursor: %w", err)
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
// directory (never through a symbolic link), fsynced, renamed over path, and
// the directory fsynced. A crash at any point leaves the old cursor or the
// new one, never a mix. The directory is created (0700) if needed.
func (c Cursor) Save(path string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("cursor: %w", err)
	}
	if c.Saved == 0 {
		c.Saved = time.Now().UnixNano()
	}
	b, err := json.Marshal(cursorFile{Log: hex.EncodeToString(c.LogID[:]), NextSeq: c.NextSeq, Segment: c.Segment, Offset: c.Offset, Time: c.Time, Lost: c.Lost, Saved: c.Saved})
	if err != nil {
		return err
	}
	b = append(b, '\n')
	tmp := path + ".tmp"
	_ = os.Remove(tmp) // a leftover of a crash
	f, err := fileutil.CreateExclusive(tmp, 0o600)
	if err != nil {
		return fmt.Errorf("cursor: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("cursor: save %s: %w", path, err)
	}
	return fileutil.SyncDir(dir)
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

// Cursors returns the cursors kept under DIR/cursors, by name.
func Cursors(dir string) ([]NamedCursor, error) {
	ents, err := os.ReadDir(filepath.Join(dir, CursorDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []NamedCursor
	for _, e := range ents {
		if !e.Type().IsRegular() || strings.HasSuffix(e.Name(), ".tmp") {
			continue
		}
		p := filepath.Join(dir, CursorDir, e.Name())
		c, err := LoadCursor(p)
		out = append(out, NamedCursor{Name: e.Name(), Path: p, Cursor: c, Err: err})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
