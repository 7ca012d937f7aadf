package lazyfs

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
)

// RootIno is the inode number of the root directory.
const RootIno = 1

// store is the durable state, in a backing directory: meta.json (the
// durable entries of every directory, and the mode of every inode) and
// data/INO (the durable contents of each file). The backing directory is
// on a real filesystem that the test never cuts the power of, so it is
// written without fsync; a file is replaced by renaming a new one over it
// so that killing the daemon never leaves a torn meta.json.
type store struct {
	dir   string
	meta  meta
	files map[uint64]*os.File
}

type meta struct {
	Next   uint64                       `json:"next"`
	Inodes map[uint64]inodeMeta         `json:"inodes"`
	Dirs   map[uint64]map[string]uint64 `json:"dirs"`
}

type inodeMeta struct {
	Mode  uint32 `json:"mode"`
	Mtime int64  `json:"mtime"`
}

func openStore(dir string) (*store, error) {
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
		return nil, err
	}
	s := &store{dir: dir, files: map[uint64]*os.File{}}
	b, err := os.ReadFile(filepath.Join(dir, "meta.json"))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		s.meta = meta{Next: RootIno + 1, Inodes: map[uint64]inodeMeta{RootIno: {Mode: sIFDIR | 0o755}},
			Dirs: map[uint64]map[string]uint64{RootIno: {}}}
	case err != nil:
		return nil, err
	default:
		if err := json.Unmarshal(b, &s.meta); err != nil {
			return nil, fmt.Errorf("lazyfs: %s/meta.json: %w", dir, err)
		}
	}
	return s, nil
}

func (s *store) dataPath(ino uint64) string {
	return filepath.Join(s.dir, "data", strconv.FormatUint(ino, 10))
}

// readData returns the durable contents of file ino (empty if it never
// reached the store).
func (s *store) readData(ino uint64) ([]byte, error) {
	b, err := os.ReadFile(s.dataPath(ino))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

func (s *store) file(ino uint64) (*os.File, error) {
	if f := s.files[ino]; f != nil {
		return f, nil
	}
	f, err := os.OpenFile(s.dataPath(ino), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	s.files[ino] = f
	return f, nil
}

// saveMeta replaces meta.json.
func (s *store) saveMeta() error {
	b, err := json.Marshal(&s.meta)
	if err != nil {
		return err
	}
	tmp := filepath.Join(s.dir, "meta.json.tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(s.dir, "meta.json"))
}

// gc removes the data files of inodes that no durable entry reaches.
func (s *store) gc(reached map[uint64]bool) error {
	ents, err := os.ReadDir(filepath.Join(s.dir, "data"))
	if err != nil {
		return err
	}
	for _, e := range ents {
		ino, err := strconv.ParseUint(e.Name(), 10, 64)
		if err != nil || !reached[ino] {
			if err := os.Remove(filepath.Join(s.dir, "data", e.Name())); err != nil {
				return err
			}
		}
		if ino >= s.meta.Next {
			s.meta.Next = ino + 1
		}
	}
	for ino := range s.meta.Inodes {
		if !reached[ino] {
			delete(s.meta.Inodes, ino)
		}
	}
	for ino := range s.meta.Dirs {
		if !reached[ino] {
			delete(s.meta.Dirs, ino)
		}
	}
	return s.saveMeta()
}

func (s *store) close() {
	for _, f := range s.files {
		f.Close()
	}
	s.files = nil
}
