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
// header (ring.OffWake) that the writer wakes after publishing, but only if
// a reader announced itself in ring.OffSleepers: a writer nobody watches
// never pays for a system call. For those two words the Reader maps the
// first page of the segment read-write, and everything else read-only, so a
// reader can never corrupt a record. A timeout (5 ms, growing to 100 ms while
// nothing comes) covers readers without write access to the files, which
// then poll.
//
// A zero length word followed by published records is a record a writer
// goroutine reserved and has not published yet: the follower waits (up to
// HoleWait) while the writer lives, and skips it, reporting it, once the
// writer is dead (it no longer holds DIR/LOCK) and the next record is
// proved. A segment file still being created by the writer's preparer, or
// whose header is zero, is not started yet: the follower waits for it.
//
// # Where to start
//
// Options.FromSeq starts at a sequence number, FromEnd after the newest
// record, and a Cursor (Cursor.Options) where a consumer left off, refusing
// the segments of another log (ErrOtherLog). When retention removed records
// the Reader was asked for, or had not read yet, it reports how many as
// Damage, counted from the sequence numbers, instead of jumping silently.
//
// # Damage
//
// Damage never stops a Reader where it can prove where the next valid record
// is (a later record whose checksum is right and whose sequence number fits,
// or the header of the next segment): it skips the damaged range and reports
// it through Damage, with the number of records lost, which the sequence
// numbers prove. Memory faults on a mapping (a segment file truncated by
// another process while mapped) become damage, never a crash.
//
// # Cursors
//
// A Cursor is a consumer's durable position: the log id and the first
// sequence number not yet delivered, saved atomically (temporary file,
// fsync, rename, fsync of the directory). By default cursors live in
// DIR/cursors, which readers of the log ignore and Cursors lists.
//
// Verify checks a whole log directory and reports every finding; End
// measures what a log holds, for lag.
package tail
