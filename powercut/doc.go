// Package powercut tests what mmaplog keeps when the power goes: writer
// processes append records under each flush policy to a log on lazyfs, a
// FUSE filesystem that keeps every write in memory until it is fsynced
// (package lazyfs); the test cuts the power at points it picks by count,
// mounts what was durable, opens the log (crash recovery) and reads it all
// back, and compares it with what the writer acknowledged.
//
// It is its own module, like bench/, so that the library does not depend
// on go-fuse. It needs root and /dev/fuse (lazyfs mounts with mount(2));
// where they are missing the tests are skipped, saying why.
//
//	cd powercut && go test -count=1 ./...                   # 300 cuts, two to three minutes
//	cd powercut && go test -count=1 -v -run TestPowerCut . -cuts 400 -table cuts.md
//
// # A power cut
//
// The writer process is killed (SIGKILL) where it is; lazyfs is frozen (from
// then on nothing becomes durable, not even the dirty pages the kernel still
// writes back for the dead process) and its daemon killed; the mount goes.
// A new daemon serves what was durable: each file as of its last fsync,
// each directory's entries as of its last fsync.
//
// # What is checked after each cut
//
// The writer reports every record whose Append returned, and every Sync
// before it begins and after it returns, on a FIFO that the lazyfs daemon
// writes its fsyncs to as well: one history, in the order things happened.
// After the cut the log must open; every record read must be exactly one
// that was written (payloads are derived from their identity), at the
// sequence number it was acknowledged with; and each acknowledged record
// that is missing is a loss, which must be reported (by a reader's Damage,
// counting it, or for the records at the end of the log by Open's
// RepairPowerLoss) and never as "no record lost". A loss breaks the
// policy's promise when:
//
//   - the policy is write (every record whose Write returned is kept);
//   - a Sync that began after the record's Write returned had returned;
//   - under bytes=N and interval=D, two flushes of the record's segment
//     completed after its Write returned, with a page written after it, or
//     the segment was flushed after a later segment was (the finisher's
//     flush, which covers a rolled segment whole);
//   - under rotate, its segment was flushed when it was rolled;
//   - it survived an earlier cut.
//
// TestPowerCut prints a table per policy and per configuration (segment
// files reused or not, log directory created by Open or before, one or two
// writing goroutines), and fails on any open failure, corrupt record,
// broken promise or unreported loss.
package powercut
