// Package rotate manages the files of a log: preallocated segment files, the
// background pipeline that has the next segment created, fallocated, mapped
// and pre-faulted before the writer needs it, retention by count, total size
// and age, and zstd compression of rolled segments.
//
// # Files
//
// A log is a directory. Segment n lives in a file named by its number,
// zero-padded to 16 digits ("0000000000000007.mlog"); once rolled it may be
// compressed to "0000000000000007.mlog.zst", holding the segment's bytes up to
// the padding record that closed it. The directory also holds the writer's
// lock file ("LOCK"). Other names are foreign: they are left alone and
// reported by List.
//
// # Rotation as a pipeline
//
// A Preparer goroutine creates segment n+1 while the writer fills segment n:
// the file is created with O_EXCL|O_NOFOLLOW (0600 by default), preallocated
// with fallocate so that a full disk is an error here and never a SIGBUS
// later, filled with zeros through pwrite (the page cache then holds it in
// large folios, the first page in a folio of its own; only under the none
// and rotate flush policies: an msync while the writer writes would write
// back, and write-protect, the whole folio it is in),
// mapped MAP_SHARED and pre-faulted with MADV_POPULATE_WRITE, its first page
// mapped once more for the Appends' wake words, and the directory is
// fsynced. Rolling over is then a pointer swap in the writer: no system
// call, no page fault.
//
// A Lifecycle runs that pipeline for a writer, and the rest of a segment's
// life around the one the writer appends to: Take activates the next
// segment (writes its header), Roll hands the rolled one to a finisher
// goroutine that waits for its last records, seals, flushes and unmaps it,
// then applies the retention and compresses. Files that retention or
// compression take away are kept in a Pool and cleared for the next
// segments instead of allocating new ones. The writer keeps only the append
// path; the Lifecycle reports to it through callbacks and Stats.
//
// # One view of the segment set
//
// List, Lookup and OpenSegment are how every part of mmaplog sees a log's
// segments while the writer changes them: a number missing from a directory
// listing between two listed segments is looked up by name (the plain name,
// then the compressed one: the reverse of compression's rename and unlink)
// before it is believed gone, and the directory is listed again. Views of
// plain segments hold a shared flock on their file; Reclaim takes a rolled
// segment file for reuse only when no live reader holds one.
//
// # Retention
//
// Retention mirrors lumberjack's options: MaxBackups rolled segments are
// kept, rolled segments older than MaxAge are removed, Compress compresses
// rolled segments, and MaxTotalSize bounds the whole directory. The oldest
// rolled segments go first; the active and the prepared segment are never
// removed. KeepUnshipped keeps the rolled segments holding records a
// consumer has not passed (State.Keep) from MaxBackups and MaxAge, so that
// only MaxTotalSize removes them.
package rotate
