// Package lazyfs is a FUSE filesystem that forgets, at a power cut, what was
// never made durable: the way a disk with a volatile write cache, under a
// filesystem that promises no more than POSIX does, loses data when the
// power goes. It is the test bed of the power-loss harness, in the spirit of
// LazyFS (which etcd runs under Jepsen).
//
// The filesystem lives in the daemon's memory. Every change is visible at
// once to every reader, through the kernel's page cache and the daemon, but
// reaches the durable store (a backing directory) only when it is made
// durable:
//
//   - a file's data, size and mode by fsync or fdatasync of that file
//     (msync with MS_SYNC reaches FUSE as the writes of the dirty pages in
//     its range and an fsync of the file; MS_ASYNC and sync_file_range as
//     writes only);
//   - a directory's entries (create, mkdir, rename, unlink, rmdir) by an
//     fsync of that directory: the durable entries become a snapshot of its
//     current ones.
//
// A power cut is Freeze (every later request fails, nothing more becomes
// durable: the kernel still writes back the dirty pages of a killed
// process after the cut, and they must be lost) followed by killing the
// daemon. A new daemon on the same backing directory (Load) serves exactly
// the durable state: the entries of each directory as of its last fsync,
// and the contents of each file as of its last fsync (a file never fsynced
// is empty, as a new file whose size never reached the journal).
//
// Writes are durable with page granularity: an fsync makes the whole file
// durable as the daemon has it, including pages the kernel wrote back before
// (as a disk cache flush does).
//
// Each fsync can be reported on an event stream (SetEvents): one line per
// file fsync, written before the fsync is answered, naming the file. A test
// that writes its own events to the same pipe gets a single, ordered
// history of what its program did and what became durable.
package lazyfs
