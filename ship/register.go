package ship

import (
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/mmaplog/mmaplog/internal/cursorfile"
	"github.com/mmaplog/mmaplog/tail"
)

// A writer that keeps rolled segments until they are shipped (the mmaplog
// option KeepUnshipped) knows its consumers by the cursors under
// DIR/cursors. A cursor kept elsewhere (Config.CursorDir, CursorPath) is
// registered there: a copy of it, under DIR/cursors/NAME@HASH (NAME the
// cursor's name, HASH from its path), naming the cursor it stands for
// (cursor_file). It is saved when the cursor is loaded and after each save
// of the cursor, never before: it is never ahead of the cursor, so that
// the writer keeps at least what the shipper still needs. It lives as long
// as the cursor does: kept when the shipper stops or stops shipping the
// log (as the cursor is), gone with the log directory. Deleting it
// unregisters the shipper until its next save. A registration that cannot
// be saved (the shipper may not write into the log directory) is reported
// once, and shipping goes on.

// registration is the registration of a log's cursor kept elsewhere.
type registration struct {
	path   string // "" when the cursor needs none
	warned atomic.Bool
}

// registrationPath returns where the cursor cpath of the log in dir is
// registered, or "" if it needs no registration (none, or one the writer
// sees: directly under DIR/cursors).
func registrationPath(dir, cpath string, in *input) string {
	if cpath == "" {
		return ""
	}
	abs, err := filepath.Abs(cpath)
	if err != nil {
		abs = filepath.Clean(cpath)
	}
	if d, err := filepath.Abs(filepath.Join(dir, tail.CursorDir)); err == nil && filepath.Dir(abs) == d {
		return ""
	}
	name := filepath.Base(abs)
	if in.cursorPath == "" && in.cursorDir != "" {
		name = filepath.Base(filepath.Dir(abs)) // CursorDir/NAME/<the log's path>
	}
	name = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, name)
	if len(name) > 64 {
		name = name[:64]
	}
	sum := sha256.Sum256([]byte(abs))
	return tail.CursorPath(dir, name+"@"+hex.EncodeToString(sum[:6]))
}

// register saves c, the cursor just loaded or saved, as the log's
// registration, if it needs one.
func (l *logShipper) register(c tail.Cursor) {
	if l.reg.path == "" || l.gone.Load() || l.dirGone() {
		return
	}
	abs, err := filepath.Abs(l.cpath)
	if err != nil {
		abs = l.cpath
	}
	rc := cursorfile.Cursor{LogID: c.LogID, NextSeq: c.NextSeq, Segment: c.Segment, Offset: c.Offset, Time: c.Time, Lost: c.Lost, CursorFile: abs}
	if err := rc.SaveInLog(l.reg.path); err != nil && !l.reg.warned.Swap(true) {
		l.s.cfg.Logf("%s: note: cannot register cursor %s as %s (%v): a writer keeping records until they are shipped (KeepUnshipped) does not see this shipper; give it write access to %s, or keep the cursor there (no --cursor-dir)",
			l.dir, l.cpath, l.reg.path, err, filepath.Dir(l.reg.path))
	}
}

// saveCursor saves c as the log's cursor, then its registration.
func (l *logShipper) saveCursor(c tail.Cursor) error {
	if err := c.Save(l.cpath); err != nil {
		return err
	}
	l.register(c)
	return nil
}
