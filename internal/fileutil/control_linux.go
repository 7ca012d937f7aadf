//go:build linux

package fileutil

import (
	"fmt"
	"os"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// controlSlots are the addresses of control mappings no longer in use:
// each holds a private, writable page of zeros, and MapControl moves the next file's
// first page onto one with MAP_FIXED. They are never unmapped, so that a
// late access through a released control mapping reads zeros (or the
// control words of the segment mapped there since), never faults and never
// reaches memory that something else has been given.
var controlSlots struct {
	mu   sync.Mutex
	free []unsafe.Pointer
}

// MapControl maps the first page of f, shared and read-write, at an address
// that is never unmapped (see ReleaseControl). The writer reaches a
// segment's wake words through it, after it published a record, without
// keeping the whole segment mapped.
func MapControl(f *os.File) ([]byte, error) {
	controlSlots.mu.Lock()
	var addr unsafe.Pointer
	if n := len(controlSlots.free); n > 0 {
		addr = controlSlots.free[n-1]
		controlSlots.free = controlSlots.free[:n-1]
	}
	controlSlots.mu.Unlock()
	if addr == nil {
		p, err := unix.MmapPtr(-1, 0, nil, uintptr(pageSize), unix.PROT_READ, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
		if err != nil {
			return nil, fmt.Errorf("map a control page: %w", err)
		}
		addr = p
	}
	if err := MapFileAt(f, addr, pageSize, true); err != nil {
		releaseSlot(addr)
		return nil, fmt.Errorf("map the control page of %s: %w", f.Name(), err)
	}
	return unsafe.Slice((*byte)(addr), pageSize), nil
}

// ReleaseControl replaces a control mapping made by MapControl with a
// private, writable page of zeros and keeps its address for the next
// MapControl. Accesses through it that were still under way read zeros, or
// the control words of the next file mapped there; a write (a wake-up
// counted by an Append that read the deadline just before) lands in this
// process's private copy and faults nowhere.
func ReleaseControl(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	addr := unsafe.Pointer(&b[0])
	_, err := unix.MmapPtr(-1, 0, addr, uintptr(pageSize), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_FIXED)
	releaseSlot(addr) // even if that failed: the next MapControl replaces whatever is there
	if err != nil {
		return fmt.Errorf("release a control page: %w", err)
	}
	return nil
}

func releaseSlot(addr unsafe.Pointer) {
	controlSlots.mu.Lock()
	controlSlots.free = append(controlSlots.free, addr)
	controlSlots.mu.Unlock()
}
