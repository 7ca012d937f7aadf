//go:build linux

package fileutil

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ShmDir is where Linux keeps POSIX shared-memory objects: shm_open(3) is an
// open(2) of a file in this tmpfs mount, which is what ShmPath relies on.
const ShmDir = "/dev/shm"

// ShmPath returns the file behind the POSIX shared-memory object name, with
// or without its leading slash ("name" and "/name" are the same object). A
// name with another slash, an empty name, "." and ".." are refused, so a
// name can never reach outside ShmDir.
func ShmPath(name string) (string, error) {
	n := strings.TrimPrefix(name, "/")
	if n == "" || n == "." || n == ".." || strings.ContainsRune(n, '/') || strings.ContainsRune(n, 0) || len(n) > 255 {
		return "", fmt.Errorf("invalid POSIX shared-memory name %q: want 1 to 255 bytes without '/' (an optional leading '/' is dropped)", name)
	}
	return ShmDir + "/" + n, nil
}

// ReserveAddress reserves size bytes of address space that no access may
// touch (an anonymous PROT_NONE mapping with MAP_NORESERVE: no memory is
// committed). Mappings placed inside it with MapFileAt, MapAnonAt or
// AttachSysvAt replace parts of it; whatever stays PROT_NONE acts as a guard
// page. Release everything with ReleaseAddress.
func ReserveAddress(size int) (unsafe.Pointer, error) {
	p, err := unix.MmapPtr(-1, 0, nil, uintptr(size), unix.PROT_NONE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return nil, fmt.Errorf("reserve %d bytes of address space: %w", size, err)
	}
	return p, nil
}

// ReleaseAddress unmaps [addr, addr+size): the reservation and every mapping
// placed inside it.
func ReleaseAddress(addr unsafe.Pointer, size int) error {
	if addr == nil || size == 0 {
		return nil
	}
	return unix.MunmapPtr(addr, uintptr(size))
}

func prot(writable bool) int {
	if writable {
		return unix.PROT_READ | unix.PROT_WRITE
	}
	return unix.PROT_READ
}

// MapFileAt maps the first size bytes of f with MAP_SHARED at addr, which
// must lie inside a reservation made by ReserveAddress (MAP_FIXED replaces
// that part of it).
func MapFileAt(f *os.File, addr unsafe.Pointer, size int, writable bool) error {
	_, err := unix.MmapPtr(int(f.Fd()), 0, addr, uintptr(size), prot(writable), unix.MAP_SHARED|unix.MAP_FIXED)
	if err != nil {
		return fmt.Errorf("mmap %s (%d bytes): %w", f.Name(), size, err)
	}
	return nil
}

// MapAnonAt maps size bytes of zeroed, shared anonymous memory at addr (inside
// a reservation). It is shared with nothing but this process.
func MapAnonAt(addr unsafe.Pointer, size int) error {
	_, err := unix.MmapPtr(-1, 0, addr, uintptr(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_ANONYMOUS|unix.MAP_FIXED)
	if err != nil {
		return fmt.Errorf("mmap anonymous (%d bytes): %w", size, err)
	}
	return nil
}

// shmRemap is SHM_REMAP from <linux/shm.h>: shmat may replace an existing
// mapping (here: part of a reservation). golang.org/x/sys/unix lacks it.
const shmRemap = 0o40000

// shmDest is SHM_DEST from <linux/shm.h>: the segment is marked for
// destruction (IPC_RMID) and goes when the last process detaches.
const shmDest = 0o1000

// AttachSysvAt attaches SysV segment id at addr (inside a reservation, with
// SHM_REMAP), read-only unless writable, and returns the segment as a slice.
func AttachSysvAt(id int, addr unsafe.Pointer, writable bool) ([]byte, error) {
	flag := shmRemap
	if !writable {
		flag |= unix.SHM_RDONLY
	}
	b, err := unix.SysvShmAttach(id, uintptr(addr), flag)
	if err != nil {
		return nil, fmt.Errorf("shmat segment id %d: %w", id, err)
	}
	return b, nil
}

// AttachSysv attaches SysV segment id wherever the kernel chooses.
func AttachSysv(id int, writable bool) ([]byte, error) {
	flag := 0
	if !writable {
		flag = unix.SHM_RDONLY
	}
	b, err := unix.SysvShmAttach(id, 0, flag)
	if err != nil {
		return nil, fmt.Errorf("shmat segment id %d: %w", id, err)
	}
	return b, nil
}

// DetachSysv detaches a segment attached by AttachSysv or AttachSysvAt.
func DetachSysv(b []byte) error { return unix.SysvShmDetach(b) }

// SysvInfo is what IPC_STAT says about a SysV segment.
type SysvInfo struct {
	ID      int
	Size    int
	Mode    os.FileMode // permission bits
	UID     uint32
	Attach  int // processes attached
	Removed bool
}

// SysvStat returns the state of segment id.
func SysvStat(id int) (SysvInfo, error) {
	var d unix.SysvShmDesc
	if _, err := unix.SysvShmCtl(id, unix.IPC_STAT, &d); err != nil {
		return SysvInfo{}, fmt.Errorf("shmctl(IPC_STAT) segment id %d: %w", id, err)
	}
	return SysvInfo{
		ID:      id,
		Size:    int(d.Segsz),
		Mode:    os.FileMode(d.Perm.Mode & 0o777),
		UID:     d.Perm.Uid,
		Attach:  int(d.Nattch),
		Removed: d.Perm.Mode&shmDest != 0,
	}, nil
}

// SysvLookup returns the id of the existing segment with key, or an error
// wrapping os.ErrNotExist.
func SysvLookup(key int) (int, error) {
	id, err := unix.SysvShmGet(key, 0, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return 0, fmt.Errorf("no SysV shared-memory segment with key %#x: %w", key, os.ErrNotExist)
		}
		return 0, fmt.Errorf("shmget key %#x: %w", key, err)
	}
	return id, nil
}

// SysvCreate creates a new segment of size bytes with key and permission
// bits perm. It fails (wrapping os.ErrExist) if one with that key exists.
func SysvCreate(key, size int, perm os.FileMode) (int, error) {
	id, err := unix.SysvShmGet(key, size, unix.IPC_CREAT|unix.IPC_EXCL|int(perm&0o777))
	if err != nil {
		if errors.Is(err, unix.EEXIST) {
			return 0, fmt.Errorf("a SysV shared-memory segment with key %#x exists already: %w", key, os.ErrExist)
		}
		return 0, fmt.Errorf("shmget(IPC_CREAT) key %#x, %d bytes: %w (see /proc/sys/kernel/shmmax)", key, size, err)
	}
	return id, nil
}

// SysvRemove marks segment id for destruction (IPC_RMID): the kernel frees
// it when the last process detaches, and no new process can attach it.
func SysvRemove(id int) error {
	if _, err := unix.SysvShmCtl(id, unix.IPC_RMID, nil); err != nil {
		return fmt.Errorf("shmctl(IPC_RMID) segment id %d: %w", id, err)
	}
	return nil
}

// Protect makes the whole pages of b inaccessible (mprotect PROT_NONE), so
// that any access to them raises SIGSEGV instead of reading or writing
// memory. b must start on a page boundary and be a whole number of pages.
func Protect(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	if uintptr(unsafe.Pointer(&b[0]))%uintptr(pageSize) != 0 || len(b)%pageSize != 0 {
		return fmt.Errorf("mprotect: %d bytes at %p are not whole pages", len(b), &b[0])
	}
	if err := unix.Mprotect(b, unix.PROT_NONE); err != nil {
		return fmt.Errorf("mprotect(PROT_NONE) %d bytes: %w", len(b), err)
	}
	return nil
}
