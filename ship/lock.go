package ship

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/mmaplog/mmaplog/internal/fileutil"
)

// A cursor is locked by the shipper using it, so that two shippers never
// ship the same log to the same place at once (each would ship everything,
// and their saves would trip over each other). The lock is an exclusive
// flock on a directory next to the cursor file, CURSOR.lock, which holds a
// file with the holder's pid. A directory rather than a file, so that the
// tools that list a log's cursors (every regular file under DIR/cursors)
// do not take it for one; the kernel drops the lock when the holder dies.

// ErrCursorLocked is wrapped by the error of a shipper whose cursor another
// process holds.
var ErrCursorLocked = errors.New("cursor in use")

type cursorLock struct{ f *os.File }

// lockCursor takes the lock of the cursor at path, creating its directory
// (0700) as needed.
func lockCursor(path string) (*cursorLock, error) {
	dir := path + ".lock"
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cursor lock: %w", err)
	}
	f, err := os.OpenFile(dir, os.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("cursor lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			who := "another process"
			if pid := readLockPID(dir); pid > 0 {
				who = "process " + strconv.Itoa(pid)
			}
			return nil, fmt.Errorf("%w: cursor %s is held by %s, another shipper of this log to the same place: stop it, or give this one its own cursor (--cursor-name)", ErrCursorLocked, path, who)
		}
		return nil, fmt.Errorf("cursor lock %s: %w", dir, err)
	}
	// The pid, for the message of the next one who tries.
	pidPath := filepath.Join(dir, "pid")
	tmp := pidPath + ".tmp"
	_ = os.Remove(tmp)
	if pf, err := fileutil.CreateExclusive(tmp, 0o600); err == nil {
		_, werr := pf.WriteString(strconv.Itoa(os.Getpid()) + "\n")
		if cerr := pf.Close(); werr == nil && cerr == nil {
			_ = os.Rename(tmp, pidPath)
		} else {
			_ = os.Remove(tmp)
		}
	}
	return &cursorLock{f: f}, nil
}

func readLockPID(dir string) int {
	b, err := os.ReadFile(filepath.Join(dir, "pid"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0
	}
	return pid
}

// release drops the lock; the directory stays for the next holder.
func (l *cursorLock) release() {
	if l != nil && l.f != nil {
		l.f.Close()
		l.f = nil
	}
}
