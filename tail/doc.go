// Package tail reads an mmaplog log: it maps the segment files read-only
// (or decompresses rolled, compressed ones) and returns the records in
// sequence order, validating every length, offset and checksum on the way.
// It reads a log once to its end, or follows it while a writer in another
// process appends.
//
// A Reader is an iterator:
//
//	r, err := tail.Open(dir, nil)
//	...
//	for r.Next() {
//		rec := r.Record()
//		...
//	}
//	if err := r.Err(); err != nil { ... }
//
// # Following a log
//
// With Options.Follow, Next returning false with a nil Err means "no data
// yet": Wait(ctx) waits for more and Next goes on, across rotations into
// new segments and into compressed rolled ones:
//
//	r, err := tail.Open(dir, &tail.Options{Follow: true})
//	for {
//		for r.Next() { ... }
//		if err := r.Err(); err != nil { ... }
//		if r.Wait(ctx) != nil { break } // ctx done
//	}
//
// Wait is adaptive: a brief spin and a few yields, so that a busy log costs
// microseconds of latency, then a sleep on the futex word in the segment
// header (ring.OffWake) that the writer wakes after publishing. Before it
// sleeps the Reader raises the header's "wake me until" deadline to the end
// of its sleep, at most 100 ms ahead (ring.ArmWake); the writer pays for a
// wake-up only for records stamped before the deadline. A writer nobody
// watches never pays for a system call, and a follower killed in its sleep
// costs the writer at most 100 ms of wake-ups. For those words the Reader
// maps the first page of the segment read-write, and everything else
// read-only, so a reader can never corrupt a record. A timeout (5 ms,
// growing to 100 ms while nothing comes) covers readers without write access
// to the files, which then poll.
//
// A zero length word followed by published records is a record a writer
// goroutine reserved and has not published yet. While the writer holds its
// lock on DIR/LOCK, the follower waits for it, however long it takes (a
// writer process stopped with SIGSTOP, a paused container), and reads
// nothing after it: after HoleWait it says so through Options.OnStall (a
// Stall names the writer's pid and the sequence number waited for), and
// again while the wait lasts. It skips the record, reporting it, only once
// the writer is dead (it no longer holds the lock) or has finished the
// segment, and the next record is proved. A segment file still being created by the writer's preparer, or
// whose header is zero, is not started yet: the follower waits for it.
//
// # Where to start
//
// Options.FromSeq starts at a sequence number, FromEnd after the newest
// record (Start, ParseStart: the same as a typed value), and a Cursor
// (Cursor.Options) where a consumer left off, refusing
// the segments of another log (ErrOtherLog). When retention removed records
// the Reader was asked for, or had not read yet, it reports how many as
// Damage, counted from the sequence numbers, instead of jumping silently.
//
// # Segments that change under the Reader
//
// The writer compresses rolled segments (renaming the compressed file into
// place, then unlinking the plain one) and retention removes the oldest.
// The Reader goes from a segment to the next by looking it up by name, under
// both names, and lists the directory again before it believes a segment
// gone (rotate.List, rotate.Lookup), so compression never costs it a record.
// It holds a shared flock on every plain segment file it has open, so that a
// writer reusing segment files takes only those no live reader is in
// (rotate.Reclaim).
//
// # Damage
//
// Damage never stops a Reader where it can prove where the next valid record
// is (a later record whose checksum is right and whose sequence number fits,
// or the header of the next segment): it skips the damaged range and reports
// it through Damage, with its kind (DamageKind), the number of records lost,
// which the sequence numbers prove, and the sequence number at which reading
// resumes. The writes a crashed writer left unfinished are reported as
// DamageUnfinished, with no record lost: their Write never returned; unless
// the machine went down since the writer ran (told by the lock file, which
// names the boot the writer ran in): then the zeros are records whose pages
// never reached the disk, counted lost, with the cause ring.ErrPowerLoss.
// Memory
// faults on a mapping (a segment file truncated by another process while
// mapped) become damage, never a crash; so does a segment overwritten by
// another process while a Reader has it open (its header zeroed or
// changed): reported from where the Reader was, reading goes on with the
// next segment, as a Reader opening the log afterwards does. The reading
// rules are ring.Walker's, the format's one decoder loop, and what a damaged
// range is, ring's damage model says (ring.Damage, ring.Facts), for the
// Reader, Verify and the writer's crash recovery alike; docs/FORMAT.md has
// them. A Reader keeps the last DamageKept damaged ranges (Damage), so that
// a follower that runs for months holds a bounded list; DamageCount and
// Lost count them all.
//
// # Cursors
//
// A Cursor is a consumer's durable position: the log id and the first
// sequence number not yet delivered, saved atomically (temporary file,
// fsync, rename, fsync of the directory). By default cursors live in
// DIR/cursors, which readers of the log ignore and Cursors lists.
//
// Verify checks a whole log directory by walking it as a Reader does (the
// same segment walker, the same events), so that it counts the records lost
// that a Reader counts; End measures what a log holds, for lag.
package tail
