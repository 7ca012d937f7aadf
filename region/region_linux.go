//go:build linux

package region

import (
	"errors"
	"fmt"
	"os"
	"time"
	"unsafe"

	"github.com/mmaplog/mmaplog/internal/fault"
	"github.com/mmaplog/mmaplog/internal/fileutil"
)

// Create makes a new shared-memory object at url holding a region header
// for layout l followed by dataSize bytes of zeros, and maps it. It fails,
// wrapping os.ErrExist, if something is already there: it never reuses,
// truncates or follows (a symbolic link) an existing object.
//
// The region stays invisible to Open until Publish: fill Data first.
func Create(url string, l Layout, dataSize int, opts *Options) (*Region, error) {
	if dataSize < 0 || dataSize > maxSize-HeaderSize {
		return nil, fmt.Errorf("region %s: data size %d out of range (0 to %d)", url, dataSize, maxSize-HeaderSize)
	}
	r, err := create(url, HeaderSize+dataSize, opts)
	if err != nil {
		return nil, err
	}
	r.headed = true
	r.info = Info{Layout: l, Size: len(r.mem), Created: time.Now().UnixNano(), CreatorPID: os.Getpid()}
	putHeader(r.mem, l, len(r.mem), r.info.Created, r.info.CreatorPID)
	return r, nil
}

// Open attaches the existing region at url and validates its header: magic,
// header version and checksum, layout and its version, and size against the
// object's actual size. Each failure is an *Error wrapping a sentinel
// (ErrBadMagic, ErrVersion, ErrLayout, ErrSize, ErrTooSmall, ErrChecksum,
// ErrNotReady, or os.ErrNotExist for a missing region). A region whose
// creator has not published it yet is waited for (Options.Wait).
func Open(url string, l Layout, opts *Options) (r *Region, err error) {
	deadline := time.Now().Add(opts.wait())
	for {
		r, err = OpenRaw(url, opts)
		if !errors.Is(err, errEmpty) {
			break
		}
		// An empty file: its creator has not allocated it yet.
		if !time.Now().Before(deadline) {
			return nil, &Error{Addr: url, Offset: 0, Err: fmt.Errorf("%w (the object is empty)", ErrNotReady),
				Hint: "if no producer is starting right now, remove the region and start the producer again"}
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			r.Detach()
			r = nil
		}
	}()
	defer func() {
		if v := recover(); v != nil {
			err = fault.Error(v, "region "+url)
		}
	}()
	defer fault.Catch()()
	if len(r.mem) < HeaderSize {
		return nil, &Error{Addr: r.url, Offset: 0, Err: fmt.Errorf("%w: %d bytes, less than the %d-byte header", ErrTooSmall, len(r.mem), HeaderSize),
			Hint: "this is not a region made by mmaplog (or it was truncated): check the address"}
	}
	for {
		ok, bad := published(r.mem)
		if bad {
			return nil, &Error{Addr: r.url, Offset: 0, Err: fmt.Errorf("%w (found %q)", ErrBadMagic, r.mem[:8]),
				Hint: "this is not a region made by mmaplog: check the address"}
		}
		if ok {
			break
		}
		if !time.Now().Before(deadline) {
			return nil, &Error{Addr: r.url, Offset: 0, Err: ErrNotReady,
				Hint: "if no producer is starting right now, remove the region and start the producer again"}
		}
		time.Sleep(5 * time.Millisecond)
	}
	info, err := checkHeader(r.url, r.mem, len(r.mem), l)
	if err != nil {
		return nil, err
	}
	r.headed, r.info = true, info
	return r, nil
}

// errEmpty: a file or POSIX object of zero bytes, which is what a region
// looks like between its creation and its allocation.
var errEmpty = fmt.Errorf("%w: the object is empty", ErrTooSmall)

// maxSize bounds the objects this package makes or maps: 1 TiB (1 GiB on
// 32-bit platforms).
const maxSize = 1 << (30 + 10*(^uint(0)>>63))

// CreateRaw makes a new shared-memory object of size bytes at url, zeroed
// and without a region header (for layouts defined elsewhere, such as the
// VCS segment), and maps it. Like Create, it never reuses an existing one.
func CreateRaw(url string, size int, opts *Options) (*Region, error) {
	return create(url, size, opts)
}

func create(url string, size int, opts *Options) (*Region, error) {
	a, err := Parse(url)
	if err != nil {
		return nil, err
	}
	if size <= 0 || size > maxSize {
		return nil, fmt.Errorf("region %s: size %d out of range (1 to %d)", url, size, maxSize)
	}
	r := &Region{addr: a, url: a.String(), writable: true}
	switch a.Kind {
	case File, Shm:
		path := a.Path
		if a.Kind == Shm {
			if path, err = fileutil.ShmPath(a.Name); err != nil {
				return nil, err
			}
		}
		f, err := fileutil.CreateExclusive(path, opts.perm())
		if err != nil {
			return nil, r.osError("create", err)
		}
		defer f.Close()
		undo := func(err error) (*Region, error) {
			os.Remove(path)
			return nil, err
		}
		// The umask must not weaken or widen what was asked for.
		if err := f.Chmod(opts.perm()); err != nil {
			return undo(r.osError("chmod", err))
		}
		// Really allocate the pages, so that running out of memory or disk
		// is this error instead of a SIGBUS when a producer first writes.
		if err := fileutil.Preallocate(f, int64(size)); err != nil {
			return undo(r.osError("allocate", err))
		}
		if err := r.mapIn(size, opts.guard(), func(at unsafe.Pointer) error {
			return fileutil.MapFileAt(f, at, size, true)
		}); err != nil {
			return undo(r.osError("map", err))
		}
	case Sysv:
		id, err := fileutil.SysvCreate(a.Key, size, opts.perm())
		if err != nil {
			return nil, r.osError("create", err)
		}
		r.id = id
		if err := r.mapIn(size, opts.guard(), func(at unsafe.Pointer) (err error) {
			r.sysv, err = fileutil.AttachSysvAt(id, at, true)
			return err
		}); err != nil {
			fileutil.SysvRemove(id)
			return nil, r.osError("attach", err)
		}
	case Anon:
		if err := r.mapIn(size, opts.guard(), func(at unsafe.Pointer) error {
			return fileutil.MapAnonAt(at, size)
		}); err != nil {
			return nil, r.osError("map", err)
		}
	}
	return r, nil
}

// OpenRaw attaches the existing object at url, whole, without looking at
// its contents. An anonymous region cannot be attached: it has no name.
func OpenRaw(url string, opts *Options) (*Region, error) {
	a, err := Parse(url)
	if err != nil {
		return nil, err
	}
	r := &Region{addr: a, url: a.String(), writable: opts.writable()}
	switch a.Kind {
	case File, Shm:
		path := a.Path
		if a.Kind == Shm {
			if path, err = fileutil.ShmPath(a.Name); err != nil {
				return nil, err
			}
		}
		f, err := fileutil.OpenNoFollow(path, r.writable)
		if err != nil {
			return nil, r.osError("open", err)
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return nil, r.osError("stat", err)
		}
		if !st.Mode().IsRegular() {
			return nil, &Error{Addr: r.url, Offset: -1, Err: fmt.Errorf("%s is a %v, not a regular file", path, st.Mode().Type()), Hint: "check the address"}
		}
		size := st.Size()
		if size == 0 {
			return nil, &Error{Addr: r.url, Offset: 0, Err: errEmpty, Hint: "it is being created, or it is not a region: check the address"}
		}
		if size > maxSize {
			return nil, &Error{Addr: r.url, Offset: 0, Err: fmt.Errorf("%w: the object has %d bytes", ErrTooSmall, size),
				Hint: "it is empty (being created, or not a region): check the address"}
		}
		if err := r.mapIn(int(size), opts.guard(), func(at unsafe.Pointer) error {
			return fileutil.MapFileAt(f, at, int(size), r.writable)
		}); err != nil {
			return nil, r.osError("map", err)
		}
	case Sysv:
		id, err := fileutil.SysvLookup(a.Key)
		if err != nil {
			return nil, r.osError("attach", err)
		}
		st, err := fileutil.SysvStat(id)
		if err != nil {
			return nil, r.osError("attach", err)
		}
		if st.Size <= 0 || st.Size > maxSize {
			return nil, &Error{Addr: r.url, Offset: 0, Err: fmt.Errorf("%w: the segment has %d bytes", ErrTooSmall, st.Size), Hint: "check the key"}
		}
		r.id = id
		if err := r.mapIn(st.Size, opts.guard(), func(at unsafe.Pointer) (err error) {
			r.sysv, err = fileutil.AttachSysvAt(id, at, r.writable)
			return err
		}); err != nil {
			return nil, r.osError("attach", err)
		}
	case Anon:
		return nil, &Error{Addr: r.url, Offset: -1, Err: errors.New("an anonymous region has no name and cannot be attached"),
			Hint: "share the *Region made by Create within the process, or use shm: or file: to share between processes"}
	}
	return r, nil
}

// osError wraps an OS error of the given operation with the region's URL
// and advice.
func (r *Region) osError(op string, err error) error {
	hint := ""
	switch {
	case errors.Is(err, os.ErrNotExist):
		hint = "no such region: is the producer running, and is the address right?"
	case errors.Is(err, os.ErrExist):
		hint = "something exists there already: attach it with Open, or remove it first"
	case errors.Is(err, os.ErrPermission):
		hint = "permission denied: run as the region's owner, or create it with wider Options.Perm"
	}
	return &Error{Addr: r.url, Offset: -1, Err: fmt.Errorf("%s: %w", op, err), Hint: hint}
}

// mapIn reserves address space for size bytes (plus a guard page on either
// side when guard is set) and lets place map the object at the start of
// the range after the first guard page.
func (r *Region) mapIn(size int, guard bool, place func(at unsafe.Pointer) error) error {
	pg := fileutil.PageSize()
	body := (size + pg - 1) &^ (pg - 1)
	g := 0
	if guard {
		g = pg
	}
	total := body + 2*g
	base, err := fileutil.ReserveAddress(total)
	if err != nil {
		return err
	}
	at := unsafe.Add(base, g)
	if err := place(at); err != nil {
		fileutil.ReleaseAddress(base, total)
		return err
	}
	r.base, r.total, r.guard = base, total, g
	r.mem = unsafe.Slice((*byte)(at), size)
	return nil
}

// Detach unmaps the region from this process. The object stays for the
// other processes (and for a later Open) until removed. The memory returned
// by Bytes and Data must not be used afterwards. Detach is idempotent.
func (r *Region) Detach() error {
	if r == nil || !r.detached.CompareAndSwap(false, true) {
		return nil
	}
	if r.sysv == nil {
		return fileutil.ReleaseAddress(r.base, r.total)
	}
	// Free the guard pages first and detach the segment last, so that the
	// range is never a hole some other mapping could land in before we
	// unmap it.
	body := r.total - 2*r.guard
	var err error
	if r.guard > 0 {
		err = errors.Join(fileutil.ReleaseAddress(r.base, r.guard),
			fileutil.ReleaseAddress(unsafe.Add(r.base, r.guard+body), r.guard))
	}
	if derr := fileutil.DetachSysv(r.sysv); derr != nil {
		err = errors.Join(err, fmt.Errorf("region %s: shmdt: %w", r.url, derr))
	}
	return err
}

// Remove removes the object (a SysV segment is destroyed once the last
// process detaches it) and detaches it from this process.
func (r *Region) Remove() error {
	var err error
	switch r.addr.Kind {
	case Sysv:
		err = fileutil.SysvRemove(r.id)
	case File, Shm:
		err = removeObject(r.addr)
	}
	return errors.Join(err, r.Detach())
}

// Remove removes the object at url. Processes that have it mapped keep
// their mapping; nobody can attach it any more.
func Remove(url string) error {
	a, err := Parse(url)
	if err != nil {
		return err
	}
	if a.Kind == Sysv {
		id, err := fileutil.SysvLookup(a.Key)
		if err != nil {
			return (&Region{url: a.String()}).osError("remove", err)
		}
		return fileutil.SysvRemove(id)
	}
	return removeObject(a)
}

func removeObject(a Addr) error {
	path := a.Path
	switch a.Kind {
	case Anon:
		return nil
	case Shm:
		var err error
		if path, err = fileutil.ShmPath(a.Name); err != nil {
			return err
		}
	}
	if err := os.Remove(path); err != nil {
		return (&Region{url: a.String()}).osError("remove", err)
	}
	return nil
}

// Protect makes the n bytes at offset off of the object inaccessible
// (mprotect PROT_NONE) in this process: a layout's own guard pages, such as
// the first and last page of a VCS segment. off and n must be multiples of
// the page size.
func (r *Region) Protect(off, n int) error {
	if r.detached.Load() {
		return ErrDetached
	}
	pg := fileutil.PageSize()
	if off < 0 || n < 0 || off%pg != 0 || n%pg != 0 || off+n > (len(r.mem)+pg-1)&^(pg-1) {
		return fmt.Errorf("region %s: protect [%d, %d): not whole pages of the object", r.url, off, off+n)
	}
	if n == 0 {
		return nil
	}
	return fileutil.Protect(unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(r.mem)), off)), n))
}

// Exists reports whether there is an object at url (anonymous: never).
func Exists(url string) (bool, error) {
	a, err := Parse(url)
	if err != nil {
		return false, err
	}
	var serr error
	switch a.Kind {
	case Anon:
		return false, nil
	case Sysv:
		_, serr = fileutil.SysvLookup(a.Key)
	case Shm:
		p, err := fileutil.ShmPath(a.Name)
		if err != nil {
			return false, err
		}
		_, serr = os.Lstat(p)
	case File:
		_, serr = os.Lstat(a.Path)
	}
	if serr == nil {
		return true, nil
	}
	if errors.Is(serr, os.ErrNotExist) {
		return false, nil
	}
	return false, serr
}
