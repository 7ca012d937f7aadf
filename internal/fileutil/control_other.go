//go:build !linux

package fileutil

import (
	"errors"
	"os"
)

// errNoControl is returned by MapControl where control mappings are not
// supported: the writer then counts its Appends instead.
var errNoControl = errors.New("control mappings are not supported on this system")

// MapControl is supported on Linux only.
func MapControl(f *os.File) ([]byte, error) { return nil, errNoControl }

// ReleaseControl is supported on Linux only.
func ReleaseControl(b []byte) error { return nil }
