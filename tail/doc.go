// Package tail reads an mmaplog log: it maps the segment files read-only
// (or decompresses rolled, compressed ones) and returns the records in
// sequence order, validating every length, offset and checksum on the way.
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
// Damage never stops a Reader where it can prove where the next valid record
// is (a later record whose checksum is right and whose sequence number fits,
// or the header of the next segment): it skips the damaged range and reports
// it through Damage, with the number of records lost, which the sequence
// numbers prove. Memory faults on a mapping (a segment file truncated by
// another process while mapped) become errors, never a crash.
//
// Verify checks a whole log directory and reports every finding.
package tail
