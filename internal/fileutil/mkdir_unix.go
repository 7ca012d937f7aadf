//go:build unix

package fileutil

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// MkdirAllSync is os.MkdirAll, but it fsyncs the parent of every directory
// it creates, so that the new directories survive a power loss: a file
// made and fsynced in a directory whose own entry never reached the disk
// is lost with it. It returns the directories it created, outermost first.
func MkdirAllSync(dir string, perm os.FileMode) ([]string, error) {
	dir = filepath.Clean(dir)
	var missing []string
	for d := dir; ; {
		st, err := os.Stat(d)
		if err == nil {
			if !st.IsDir() {
				return nil, fmt.Errorf("%s is not a directory", d)
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		missing = append(missing, d)
		parent := filepath.Dir(d)
		if parent == d {
			break
		}
		d = parent
	}
	var created []string
	for i := len(missing) - 1; i >= 0; i-- {
		d := missing[i]
		if err := os.Mkdir(d, perm); err != nil {
			if errors.Is(err, fs.ErrExist) {
				if st, serr := os.Stat(d); serr == nil && st.IsDir() {
					continue // made meanwhile by someone else, who syncs it
				}
			}
			return created, err
		}
		created = append(created, d)
		if err := SyncDir(filepath.Dir(d)); err != nil {
			return created, err
		}
	}
	return created, nil
}
