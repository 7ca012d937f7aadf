package ship

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// A log is let go (released) when its directory is removed or replaced by
// another, when no input names it any more, or when its input's settings
// changed (it then starts again with the new ones). Letting go frees
// everything the log held: its reader's mappings and files, its
// goroutines, its cursor's lock, its source of the output, its place in
// the shipper's lists; a shipper following logs that come and go (a
// directory per job, per deployment) holds only those that are there.
//
// A removed directory: the segment being read stays readable after its
// files are unlinked, so the log is read to the end of what is still
// there and what was read is shipped and acknowledged first; later
// segments went with the directory. Its cursor, when it is under the
// directory, went with it, and is never saved again (that would make the
// directory again, or write into a new log's directory at the same path).
// A cursor kept elsewhere (CursorDir, CursorPath) is removed, with its
// lock, once everything read was acknowledged: the log it describes is no
// more, and a new log made at the same path would be refused for it; it is
// kept, with how far the log got, if the shipper stops first.

// releaseReason is why a log is let go.
type releaseReason int

const (
	releaseNone    releaseReason = iota
	releaseGone                  // its directory was removed or replaced
	releaseRemoved               // no input names it any more
	releaseChanged               // its input's settings changed: it starts again
)

// stopLog lets the log go for why: a log whose directory is gone is read
// to its end first, any other stops at once. Its goroutine then waits for
// the acknowledgements and lets it go (release); one that had stopped
// already (on an error) is let go by a goroutine of its own.
func (s *Shipper) stopLog(l *logShipper, why releaseReason) {
	s.mu.Lock()
	if l.why != releaseNone || s.stopping {
		s.mu.Unlock()
		return
	}
	l.why = why
	exited := l.exited
	if exited {
		s.wg.Add(1)
	}
	s.mu.Unlock()
	if why == releaseGone {
		l.gone.Store(true)
		if l.cursorInDir {
			l.noSave.Store(true)
		}
		l.wake()
	} else {
		l.cancel()
	}
	if exited {
		go func() {
			defer s.wg.Done()
			s.release(l)
		}()
	}
}

// release lets go of l, whose run has returned, once what it published is
// acknowledged. If Run stops first, Run's own drain and finish see to it.
func (s *Shipper) release(l *logShipper) {
	s.mu.Lock()
	runCtx, why := s.runCtx, l.why
	s.mu.Unlock()
	for l.inflight.Load() > 0 {
		select {
		case <-l.acksIdle:
		case <-runCtx.Done():
			return
		}
	}
	if c, ok := l.src.(interface{ Close() }); ok {
		c.Close()
	}
	serr := l.finish()
	removed := ""
	if why == releaseGone && l.drained && serr == nil && l.failed() == nil && l.cpath != "" && !l.cursorInDir {
		removed = l.cpath
		removeCursor(l.cpath)
	}
	st := l.stats()
	s.mu.Lock()
	delete(s.logs, l.dir)
	s.order = slices.DeleteFunc(s.order, func(x *logShipper) bool { return x == l })
	r := &s.released
	r.Released++
	r.Read += st.Read
	r.Acked += st.Acked
	r.Lost += st.Lost
	r.Batches += st.Batches
	r.CursorSaves += st.CursorSaves
	if serr != nil {
		s.failed = append(s.failed, &LogError{Dir: l.dir, Err: serr})
	}
	s.mu.Unlock()
	switch why {
	case releaseGone:
		what := "its cursor went with it"
		switch {
		case l.cpath == "":
			what = "no cursor"
		case removed != "":
			what = "cursor " + removed + " removed"
		case !l.cursorInDir:
			what = "cursor " + l.cpath + " kept"
		}
		s.cfg.Logf("%s: removed: shipped up to record %d, what was still readable; let go (%s)", l.dir, st.AckedSeq, what)
	case releaseRemoved:
		s.cfg.Logf("%s: no input names it any more: stopped at record %d (cursor %s), let go", l.dir, st.AckedSeq, orNone(l.cpath))
	case releaseChanged:
		s.cfg.Logf("%s: its input changed: stopped at record %d (cursor %s), starting again with the new settings", l.dir, st.AckedSeq, orNone(l.cpath))
	}
	if serr != nil {
		s.cfg.Logf("%s: %s", l.dir, serr)
	}
	s.kick() // a changed log starts again; a log at the same path may be new
}

// removeCursor removes a cursor file of a log that is no more, and its
// lock (see lockCursor).
func removeCursor(path string) {
	_ = os.Remove(path)
	_ = os.Remove(filepath.Join(path+".lock", "pid"))
	_ = os.Remove(path + ".lock")
}

// dirGone reports whether the log's directory was removed, or replaced by
// another one (a directory of the same name made since), since run
// opened it.
func (l *logShipper) dirGone() bool {
	if l.ino == 0 {
		return false // not opened yet
	}
	var st unix.Stat_t
	if err := unix.Stat(l.dir, &st); err != nil {
		return errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR)
	}
	return uint64(st.Dev) != l.dev || st.Ino != l.ino
}

// dirID returns the device and inode of dir (0, 0 if it cannot be read).
func dirID(dir string) (dev, ino uint64) {
	var st unix.Stat_t
	if unix.Stat(dir, &st) != nil {
		return 0, 0
	}
	return uint64(st.Dev), st.Ino
}

// within reports whether path is under dir.
func within(path, dir string) bool {
	p, err1 := filepath.Abs(path)
	d, err2 := filepath.Abs(dir)
	if err1 != nil || err2 != nil {
		return false
	}
	return strings.HasPrefix(p, d+string(filepath.Separator))
}
