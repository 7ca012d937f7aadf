// Package mmaplog is a log writer that appends records into a file-backed
// shared memory mapping instead of calling write(2) for each line.
//
// A Writer owns a log directory of preallocated segment files. Write copies
// a record into the mapping of the active segment after reserving space with
// a single atomic add, so any number of goroutines write at once without a
// lock, an allocation or a system call. Once Write returns, the record is in
// the kernel's page cache: readers in other processes (the tail package,
// mmaptail) see it at once, and it survives the writer being killed.
//
// When a segment is full the writer rolls over to the next one, which a
// background goroutine has already created, fallocated, mapped and
// pre-faulted; rolled segments are then finished, flushed as the flush
// policy asks, optionally compressed, and removed by the retention rules.
// With the defaults a log never takes more than 640 MiB of disk.
//
// # Sinks
//
// A *Writer is an io.Writer with Sync and Close. One call of Write is one
// record; one trailing newline is dropped. Each logger gets the event's
// level stored in the record's type byte, for readers to filter by:
// zerolog through the Writer itself (it is a zerolog.LevelWriter),
// log/slog through SlogHandler (slog.JSONHandler's output, without its
// lock), and zap through the core of package mmapzap.
//
// # Crashes
//
// Records are framed with a length word stored last and a CRC-32C, and
// numbered with a sequence number that grows by one across segments. Open
// after a crash finds the true end of the data and turns torn records and
// holes left by goroutines that died mid-write into padding, so that every
// record whose Write returned is kept; Recovery reports what was repaired.
//
// The on-disk format is described in docs/FORMAT.md.
package mmaplog
