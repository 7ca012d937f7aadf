//go:build !linux

package region

import "errors"

// errUnsupported is returned by every constructor off Linux: the backends
// rely on Linux's /dev/shm, SHM_REMAP and MAP_FIXED semantics.
var errUnsupported = errors.New("region: shared-memory regions are only supported on Linux")

// Create is only supported on Linux.
func Create(url string, l Layout, dataSize int, opts *Options) (*Region, error) {
	return nil, errUnsupported
}

// Open is only supported on Linux.
func Open(url string, l Layout, opts *Options) (*Region, error) { return nil, errUnsupported }

// CreateRaw is only supported on Linux.
func CreateRaw(url string, size int, opts *Options) (*Region, error) { return nil, errUnsupported }

// OpenRaw is only supported on Linux.
func OpenRaw(url string, opts *Options) (*Region, error) { return nil, errUnsupported }

// Remove is only supported on Linux.
func Remove(url string) error { return errUnsupported }

// Exists is only supported on Linux.
func Exists(url string) (bool, error) { return false, errUnsupported }

// Detach does nothing: no Region can be made off Linux.
func (r *Region) Detach() error { return nil }

// Remove is only supported on Linux.
func (r *Region) Remove() error { return errUnsupported }

// Protect is only supported on Linux.
func (r *Region) Protect(off, n int) error { return errUnsupported }
