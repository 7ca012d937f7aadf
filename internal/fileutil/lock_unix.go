//go:build unix

package fileutil

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// LockedError says that another open file description, in this process or
// another, holds the lock. PID is the holder's process id as it wrote it into
// the lock file (0 when it could not be read).
type LockedError struct {
	Path string
	PID  int
}

func (e *LockedError) Error() string {
	if e.PID > 0 {
		return fmt.Sprintf("%s is locked by process %d", e.Path, e.PID)
	}
	return fmt.Sprintf("%s is locked by another process", e.Path)
}

// Lock is an exclusive advisory lock (flock) on a file, held until Release.
// The kernel releases it when the holder dies, so a crashed writer never
// leaves a stale lock behind.
type Lock struct {
	f    *os.File
	prev Holder
}

// Holder is what a lock holder wrote into the lock file: its pid and the
// boot it ran in (BootID). The file is never fsynced: the boot id is there
// to tell, after the holder died, whether the page cache it wrote into
// survived (the same boot: the process died, the machine did not).
type Holder struct {
	PID  int
	Boot string // "" if unknown
}

// TryLock takes the exclusive lock on path without waiting, creating the file
// (0600, never through a symbolic link) if needed, and writes this process's
// pid and the boot id into it. If the lock is held it returns a
// *LockedError.
func TryLock(path string) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		pid := readHolder(f).PID
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, &LockedError{Path: path, PID: pid}
		}
		return nil, fmt.Errorf("flock %s: %w", path, err)
	}
	l := &Lock{f: f, prev: readHolder(f)}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(fmt.Sprintf("%d %s\n", os.Getpid(), BootID())), 0)
	}
	return l, nil
}

// LockHolder returns what the holder of the lock file at path wrote into
// it (or the last holder, if it died without releasing it), without taking
// the lock or following a symbolic link: a zero Holder for an empty or
// missing file.
func LockHolder(path string) (Holder, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return Holder{}, nil
	}
	if err != nil {
		return Holder{}, err
	}
	defer f.Close()
	return readHolder(f), nil
}

// Previous returns what the last holder before this one wrote into the
// lock file: nothing (a zero Holder) after a clean Release, or if the
// file's contents did not survive.
func (l *Lock) Previous() Holder { return l.prev }

// IsLocked reports whether some process holds the lock on path, and its pid.
// It does not create the file.
func IsLocked(path string) (bool, int, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return false, 0, nil
		}
		return false, 0, err
	}
	defer f.Close()
	err = unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return true, readHolder(f).PID, nil
	}
	if err != nil {
		return false, 0, err
	}
	_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return false, 0, nil
}

// readHolder reads a lock file: "PID BOOT\n" (or "PID\n", as older
// versions wrote it).
func readHolder(f *os.File) Holder {
	buf := make([]byte, 128)
	n, _ := f.ReadAt(buf, 0)
	fields := strings.Fields(string(buf[:n]))
	var h Holder
	if len(fields) == 0 {
		return h
	}
	if pid, err := strconv.Atoi(fields[0]); err == nil {
		h.PID = pid
	}
	if len(fields) > 1 {
		h.Boot = fields[1]
	}
	return h
}

// Release drops the lock. The lock file stays, empty, for the next holder.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	_ = l.f.Truncate(0)
	err := l.f.Close() // closing the descriptor releases the flock
	l.f = nil
	return err
}

// ErrLockBusy is wrapped by the errors of LockShared and LockExclusive when
// another open file description holds a conflicting lock.
var ErrLockBusy = errors.New("file is locked by another open file description")

// LockShared takes a shared flock on f without waiting. It is released when
// f is closed (or its process dies). A conflicting exclusive lock gives an
// error wrapping ErrLockBusy.
func LockShared(f *os.File) error { return flock(f, unix.LOCK_SH) }

// LockExclusive takes an exclusive flock on f without waiting: it fails,
// with an error wrapping ErrLockBusy, while any other open file description
// (in any process) holds a shared or exclusive lock on the file.
func LockExclusive(f *os.File) error { return flock(f, unix.LOCK_EX) }

// Unlock drops the flock held through f.
func Unlock(f *os.File) error {
	if err := unix.Flock(int(f.Fd()), unix.LOCK_UN); err != nil {
		return fmt.Errorf("unlock %s: %w", f.Name(), err)
	}
	return nil
}

func flock(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EWOULDBLOCK):
			return fmt.Errorf("flock %s: %w", f.Name(), ErrLockBusy)
		}
		return fmt.Errorf("flock %s: %w", f.Name(), err)
	}
}

// SameFile reports whether path (not following a symbolic link) names the
// file open as f: the same device and inode. A path that no longer exists
// gives false and no error.
func SameFile(f *os.File, path string) (bool, error) {
	var a, b unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &a); err != nil {
		return false, fmt.Errorf("fstat %s: %w", f.Name(), err)
	}
	if err := unix.Lstat(path, &b); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, fmt.Errorf("lstat %s: %w", path, err)
	}
	return a.Dev == b.Dev && a.Ino == b.Ino, nil
}

// SameOpenFile reports whether a and b are open on the same file (device and
// inode).
func SameOpenFile(a, b *os.File) (bool, error) {
	var x, y unix.Stat_t
	if err := unix.Fstat(int(a.Fd()), &x); err != nil {
		return false, err
	}
	if err := unix.Fstat(int(b.Fd()), &y); err != nil {
		return false, err
	}
	return x.Dev == y.Dev && x.Ino == y.Ino, nil
}
