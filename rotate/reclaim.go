package rotate

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/mmaplog/mmaplog/internal/fileutil"
)

// ErrInUse is returned by Reclaim for a segment file that a live reader
// still has open: Reclaim removed it instead of handing it out.
var ErrInUse = errors.New("segment file is in use by a reader")

// Reclaim takes the rolled plain segment file fi away from its name so that
// a writer can reuse it for a new segment, but only if no live reader has it
// open. It renames the file to tmp (a temporary name in the same directory,
// which must not exist), so that no reader can open it by its segment name
// any more, and then tries to take an exclusive flock on it. Every reader
// holds a shared flock on each plain segment file it has open (View, and
// with it tail.Reader, Verify and the compressor), taken after it opened the
// file by name and checked before it trusts a byte of it; the kernel drops
// a reader's locks when it dies, so a dead reader never keeps a file.
//
// If the lock is taken, Reclaim returns the file, locked, open read-write:
// the caller clears it, gives it its new segment's name (with a temporary
// name of that segment in between, never straight to the segment name), and
// only then closes it or calls fileutil.Unlock, in that order. If a reader
// holds the file, Reclaim removes it (the reader keeps its mapping of the
// unlinked file and reads on) and returns an error wrapping ErrInUse. The
// caller fsyncs the directory.
//
// Why that is safe: a reader that opened the file did so by its segment
// name, hence before the rename. Either it took its shared lock before
// Reclaim's exclusive attempt, which then fails; or after Reclaim got the
// lock, and then its shared attempt fails while the writer clears the file,
// or (once the writer let go) it finds that the segment name no longer
// refers to the file, and in each case it treats the segment as gone under
// that name, never reading a byte of the file.
func Reclaim(fi FileInfo, tmp string) (*os.File, error) {
	if fi.Compressed {
		return nil, fmt.Errorf("reclaim %s: only plain segment files are reused", fi.Path)
	}
	if filepath.Dir(tmp) != filepath.Dir(fi.Path) {
		return nil, fmt.Errorf("reclaim %s: %s is not in the same directory", fi.Path, tmp)
	}
	if err := fileutil.RenameNoReplace(fi.Path, tmp); err != nil {
		return nil, fmt.Errorf("reclaim: %w", err)
	}
	f, err := fileutil.OpenNoFollow(tmp, true)
	if err != nil {
		return nil, fmt.Errorf("reclaim %s: %w", fi.Path, err)
	}
	err = fileutil.LockExclusive(f)
	if err == nil {
		return f, nil
	}
	f.Close()
	if rerr := os.Remove(tmp); rerr != nil {
		return nil, fmt.Errorf("reclaim %s: %w; removing it: %w", fi.Path, err, rerr)
	}
	if errors.Is(err, fileutil.ErrLockBusy) {
		return nil, fmt.Errorf("reclaim %s: %w (removed instead)", fi.Path, ErrInUse)
	}
	return nil, fmt.Errorf("reclaim %s: %w (removed instead)", fi.Path, err)
}

// InUse reports whether a live reader has the segment file at path open (it
// holds a shared flock on it). On its own the answer is only a snapshot: a
// reader may open the file a moment later. Reclaim, which renames the file
// away first, is the safe way to take a file for reuse; InUse is for
// diagnostics and tests.
func InUse(path string) (bool, error) {
	f, err := fileutil.OpenNoFollow(path, false)
	if err != nil {
		return false, err
	}
	defer f.Close()
	err = fileutil.LockExclusive(f)
	if errors.Is(err, fileutil.ErrLockBusy) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return false, fileutil.Unlock(f)
}
