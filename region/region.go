package region

import (
	"errors"
	"os"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/mmaplog/mmaplog/internal/header"
)

// Options for Create, Open, CreateRaw and OpenRaw. A nil *Options means
// the zero value: permissions 0600, guard pages on, read-write, a one-second
// wait for a region being created.
type Options struct {
	// Perm is the permission bits of a new file, POSIX object or SysV
	// segment. Zero means 0600: only the owner's processes can attach.
	Perm os.FileMode
	// NoGuard leaves out the inaccessible guard page this process maps
	// before and after the region. With guards (the default) a stray
	// access just past either end raises SIGSEGV in the offending process
	// instead of corrupting a neighbouring mapping.
	NoGuard bool
	// ReadOnly attaches the region read-only: a store into it faults.
	ReadOnly bool
	// Wait is how long Open waits for a region whose creator has not
	// published its header yet. Zero means one second; negative: no wait.
	Wait time.Duration
}

func (o *Options) perm() os.FileMode {
	if o == nil || o.Perm == 0 {
		return 0o600
	}
	return o.Perm & 0o777
}

func (o *Options) guard() bool    { return o == nil || !o.NoGuard }
func (o *Options) writable() bool { return o == nil || !o.ReadOnly }
func (o *Options) wait() time.Duration {
	switch {
	case o == nil || o.Wait == 0:
		return time.Second
	case o.Wait < 0:
		return 0
	}
	return o.Wait
}

// ErrDetached is returned by methods of a Region that was detached.
var ErrDetached = errors.New("region: detached")

// Region is one process's mapping of a shared-memory object. Several
// processes (or several Regions of one process) may map the same object;
// what one stores, the others see at once.
//
// The methods are safe for concurrent use, but the memory returned by Bytes
// and Data must not be touched after Detach or Remove: it is unmapped, and
// an access then faults.
type Region struct {
	addr     Addr
	url      string
	info     Info
	headed   bool // has a region header (Create/Open), not raw
	writable bool

	base  unsafe.Pointer // start of the address range reserved for the mapping
	total int            // bytes reserved, guard pages included
	mem   []byte         // the object, mapped
	sysv  []byte         // the SysV attachment (to shmdt); nil for other kinds
	id    int            // SysV segment id
	guard int            // bytes of guard before and after mem (0 or a page)

	detached atomic.Bool
}

// Addr returns the region's address.
func (r *Region) Addr() Addr { return r.addr }

// String returns the region's URL.
func (r *Region) String() string { return r.url }

// Info returns what the region's header says (zero for a raw region).
func (r *Region) Info() Info { return r.info }

// Bytes returns the whole mapped object, header included.
func (r *Region) Bytes() []byte { return r.mem }

// Data returns the bytes after the region header: the part a layout owns.
// For a raw region (CreateRaw, OpenRaw) it is the whole object.
func (r *Region) Data() []byte {
	if r.headed {
		return r.mem[HeaderSize:]
	}
	return r.mem
}

// Size returns the size of the object in bytes.
func (r *Region) Size() int { return len(r.mem) }

// Guarded reports whether guard pages surround the mapping.
func (r *Region) Guarded() bool { return r.guard > 0 }

// SysvID returns the SysV segment id (-1 for other kinds).
func (r *Region) SysvID() int {
	if r.addr.Kind != Sysv {
		return -1
	}
	return r.id
}

// Publish stores the header's magic, which makes a region made by Create
// visible to Open in other processes. Call it once the layout's own data is
// initialised.
func (r *Region) Publish() error {
	if r.detached.Load() {
		return ErrDetached
	}
	if !r.headed {
		return nil
	}
	regionHeader.Publish(r.mem)
	return nil
}

// published reports whether the magic is there; bad reports a magic that
// is neither zero nor ours.
func published(b []byte) (ok, bad bool) {
	m := regionHeader.Load(b)
	return m == header.Present, m == header.Foreign
}
