//go:build unix && !linux

package fileutil

import "os"

// Fdatasync falls back to fsync where fdatasync is missing.
func Fdatasync(f *os.File) error { return f.Sync() }
