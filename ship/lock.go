package ship

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/mmaplog/mmaplog/tail"
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
// (0700) as needed. The directories are never reached through a symbolic
// link (tail.OpenCursorDir), and the lock's files are made relative to
// them, so that nothing is written through a link planted there.
func lockCursor(path string) (*cursorLock, error) {
	cdir, err := tail.OpenCursorDir(path, true)
	if err != nil {
		return nil, fmt.Errorf("cursor lock: %w", err)
	}
	defer cdir.Close()
	dir, name := path+".lock", filepath.Base(path)+".lock"
	if err := unix.Mkdirat(int(cdir.Fd()), name, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, fmt.Errorf("cursor lock: mkdir %s: %w", dir, err)
	}
	fd, err := unix.Openat(int(cdir.Fd()), name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("cursor lock %s: %w (a symbolic link or a file where the shipper keeps a directory? remove it)", dir, err)
	}
	f := os.NewFile(uintptr(fd), dir)
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			who := "another process"
			if pid := readLockPID(f); pid > 0 {
				who = "process " + strconv.Itoa(pid)
			}
			return nil, fmt.Errorf("%w: cursor %s is held by %s, another shipper of this log to the same place: stop it, or give this one its own cursor (--cursor-name)", ErrCursorLocked, path, who)
		}
		return nil, fmt.Errorf("cursor lock %s: %w", dir, err)
	}
	// The pid, for the message of the next one who tries.
	lfd := int(f.Fd())
	_ = unix.Unlinkat(lfd, "pid.tmp", 0)
	if pfd, err := unix.Openat(lfd, "pid.tmp", unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600); err == nil {
		pf := os.NewFile(uintptr(pfd), filepath.Join(dir, "pid.tmp"))
		_, werr := pf.WriteString(strconv.Itoa(os.Getpid()) + "\n")
		if cerr := pf.Close(); werr == nil && cerr == nil {
			_ = unix.Renameat(lfd, "pid.tmp", lfd, "pid")
		} else {
			_ = unix.Unlinkat(lfd, "pid.tmp", 0)
		}
	}
	return &cursorLock{f: f}, nil
}

// readLockPID reads the holder's pid from the lock directory open as dir,
// never through a symbolic link and never waiting on a pipe.
func readLockPID(dir *os.File) int {
	fd, err := unix.Openat(int(dir.Fd()), "pid", unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0
	}
	f := os.NewFile(uintptr(fd), "pid")
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return 0
	}
	b := make([]byte, 32)
	n, _ := f.Read(b)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b[:n])))
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
