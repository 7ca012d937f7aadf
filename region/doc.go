// Package region maps shared-memory objects that several processes can
// attach at once: the "regions" that mmaplog's counter map (package counter)
// lives in, and that a VCS monitoring segment is read from.
//
// # Backends
//
// A region is named by a URL, and the same code works on each of Linux's
// shared-memory interfaces:
//
//	file:/var/lib/app/counters   a regular file, mapped MAP_SHARED: durable,
//	                             survives a reboot (written back by the kernel)
//	shm:app-counters             a POSIX shared-memory object (/dev/shm/NAME):
//	                             memory only, gone at reboot
//	sysv:0x3eeff00               a System V segment named by a numeric key
//	anon:                        anonymous shared memory: this process only
//
// Create makes a new object and never reuses one: files and POSIX objects
// are opened with O_CREAT|O_EXCL|O_NOFOLLOW (a planted symbolic link cannot
// redirect them), SysV segments with IPC_CREAT|IPC_EXCL. New objects get
// permissions 0600 unless Options.Perm says otherwise, and their memory is
// allocated at once (fallocate on the file or tmpfs object), so that
// running out of memory is an error from Create rather than a SIGBUS in a
// producer. Open attaches an existing object; Detach unmaps it from this
// process; Remove deletes the object (a SysV segment once the last process
// has detached it).
//
// # Guard pages
//
// Each mapping is placed inside a larger reservation of inaccessible address
// space, so that one PROT_NONE page precedes and one follows it
// (Options.NoGuard turns this off). A stray access just past either end of
// the region kills the offending process with SIGSEGV (or, under
// debug.SetPanicOnFault, panics with the address) instead of silently
// corrupting whatever the kernel happened to map next to it. Guard pages
// belong to one process's mapping, not to the object: they cost address
// space, never memory or file bytes. Layouts that carry their own guard
// pages inside the object, such as the VCS segment, protect them with
// Protect.
//
// # The header
//
// A region made by Create starts with a 64-byte header: magic, header
// version, the layout (what the region holds, and that format's version),
// the object's size, creation time and creator pid, and a CRC-32C. The
// creator fills the layout's data and then calls Publish, which stores the
// magic last, atomically; Open waits briefly for an unpublished region and
// validates everything else, returning an *Error that names the region, the
// byte offset and the cause (ErrBadMagic, ErrVersion, ErrLayout, ErrSize,
// ErrTooSmall, ErrChecksum, ErrNotReady, or an OS error such as
// os.ErrNotExist) with advice. CreateRaw and OpenRaw skip the header, for
// layouts defined by someone else. docs/COUNTERS.md has the byte diagram.
//
// The backends are Linux-only; elsewhere every constructor returns an error.
package region
