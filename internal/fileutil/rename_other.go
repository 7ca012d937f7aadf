//go:build unix && !linux

package fileutil

import (
	"os"

	"golang.org/x/sys/unix"
)

func renameNoReplace(oldpath, newpath string) error {
	if _, err := os.Lstat(newpath); err == nil {
		return unix.EEXIST
	}
	return unix.Rename(oldpath, newpath)
}
