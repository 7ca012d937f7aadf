//go:build unix

package fileutil

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// CreateExclusive creates a new file at path with the given permissions. It
// fails if anything (a file or a symbolic link) already exists there, so a
// planted link can never redirect a write elsewhere.
func CreateExclusive(path string, perm os.FileMode) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm)
}

// OpenNoFollow opens an existing file without following a symbolic link in
// the last path element.
func OpenNoFollow(path string, writable bool) (*os.File, error) {
	flag := os.O_RDONLY
	if writable {
		flag = os.O_RDWR
	}
	return os.OpenFile(path, flag|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
}

// SyncDir fsyncs a directory so that the creation, renaming or removal of the
// files in it survives a power loss.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}

// RenameNoReplace renames oldpath to newpath, failing with an error wrapping
// os.ErrExist if newpath exists (where the platform allows checking that
// atomically; elsewhere it checks first).
func RenameNoReplace(oldpath, newpath string) error {
	if err := renameNoReplace(oldpath, newpath); err != nil {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err}
	}
	return nil
}
