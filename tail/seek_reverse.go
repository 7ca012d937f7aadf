package tail

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/mmaplog/mmaplog/rotate"
)

// ReverseReader reads the records of a log newest first, as far back as its
// Options say: from the newest record present at Open (or the last one
// stamped at or before Until) back to the oldest (or the first stamped at or
// after Since, or FromSeq, or the Last-th newest), keeping those MinLevel
// and Match keep. The log is read forward a chunk at a time, each chunk
// found by a binary search by sequence number, and the chunk given back
// newest first: memory holds one chunk's records. It is not safe for
// concurrent use.
type ReverseReader struct {
	base       *Reader // the listing, the search's state and the options
	start, end uint64  // the range read, [start, end)
	hi         uint64  // the next chunk ends before this
	k          uint64  // records in the next chunk
	chunk      []chunkRec
	arena      []byte
	i          int
	rec        Record
	err        error
	damage     []Damage
	lost       uint64
	seen       map[damageKey]bool
	closed     bool
}

type chunkRec struct {
	rec  Record
	from int // its payload in the arena
}

type damageKey struct {
	path     string
	from, to int64
	seq      uint64
}

const (
	firstChunk = 256
	maxChunk   = 16384
)

// OpenReverse opens the log in dir for reading newest first. Follow and
// FromEnd are errors; Since and FromSeq together too.
func OpenReverse(dir string, o *Options) (*ReverseReader, error) {
	if o != nil && (o.Follow || o.FromEnd) {
		return nil, errors.New("tail: a ReverseReader reads what is there: Follow and FromEnd do not apply")
	}
	if o != nil && o.Last < 0 {
		return nil, fmt.Errorf("tail: Last %d: want 0 (all) or more", o.Last)
	}
	if o != nil && o.FromSeq != 0 && !o.Since.IsZero() {
		return nil, errors.New("tail: Since cannot be combined with FromSeq")
	}
	base := newReader(dir, o)
	l, err := rotate.List(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("tail: no log directory %s: %w", dir, fs.ErrNotExist)
	case err != nil:
		return nil, fmt.Errorf("tail: %w", err)
	case len(l.Segments) == 0:
		return nil, notLog(dir)
	}
	base.list = l
	rr := &ReverseReader{base: base, k: firstChunk, seen: map[damageKey]bool{}}
	opts := &base.opts
	if !opts.Until.IsZero() {
		rr.end, err = base.firstAtOrAfter(opts.Until.UnixNano() + 1)
	} else {
		rr.end, err = base.logEnd()
	}
	if err != nil {
		return nil, err
	}
	rr.start = max(opts.FromSeq, base.oldestSeq())
	if !opts.Since.IsZero() {
		if rr.start, err = base.firstAtOrAfter(opts.Since.UnixNano()); err != nil {
			return nil, err
		}
	}
	if opts.Last > 0 && rr.start < rr.end {
		p, err := base.countBack(rr.end, rr.start, opts.Last)
		if err != nil {
			return nil, err
		}
		rr.start = max(rr.start, p)
	}
	rr.hi = rr.end
	return rr, nil
}

// Next advances to the next record, newest first, and reports whether there
// is one; false at the oldest record asked for and on an error (Err).
func (rr *ReverseReader) Next() bool {
	for rr.i == 0 {
		if rr.err != nil || rr.closed || rr.hi <= rr.start {
			return false
		}
		rr.readChunk()
	}
	rr.i--
	c := rr.chunk[rr.i]
	rr.rec = c.rec
	rr.rec.Payload = rr.arena[c.from : c.from+len(c.rec.Payload) : c.from+len(c.rec.Payload)]
	return true
}

// readChunk reads the records of [hi-k, hi) forward.
func (rr *ReverseReader) readChunk() {
	a := rr.start
	if rr.hi-rr.start > rr.k {
		a = rr.hi - rr.k
	}
	rr.chunk, rr.arena = rr.chunk[:0], rr.arena[:0]
	s := rr.base.sub(a, rr.hi, rr.report)
	defer s.Close()
	for s.Next() {
		rec := s.Record()
		if rec.Seq >= rr.hi {
			break
		}
		if !rr.base.wanted(rec) {
			continue
		}
		c := chunkRec{rec: rec, from: len(rr.arena)}
		rr.arena = append(rr.arena, rec.Payload...)
		c.rec.Payload = rec.Payload[:len(rec.Payload):len(rec.Payload)]
		rr.chunk = append(rr.chunk, c)
	}
	if err := s.Err(); err != nil {
		rr.err = err
		return
	}
	rr.hi, rr.k = a, min(2*rr.k, maxChunk)
	rr.i = len(rr.chunk)
}

// report collects a damaged range once: neighbouring chunks may both walk
// it.
func (rr *ReverseReader) report(d Damage) {
	k := damageKey{d.Path, d.From, d.To, d.Seq}
	if rr.seen[k] {
		return
	}
	rr.seen[k] = true
	rr.damage = append(rr.damage, d)
	rr.lost += d.Lost
	if rr.base.opts.OnDamage != nil {
		rr.base.opts.OnDamage(d)
	}
}

// Record returns the current record (after Next returned true). Its payload
// is valid until the next call to Next or Close.
func (rr *ReverseReader) Record() Record { return rr.rec }

// Err returns the error that stopped the reader, or nil.
func (rr *ReverseReader) Err() error { return rr.err }

// Damage returns the damaged ranges met so far (in the order met: chunks are
// read forward, newest chunk first).
func (rr *ReverseReader) Damage() []Damage { return rr.damage }

// Lost returns the number of records the damage met so far cost.
func (rr *ReverseReader) Lost() uint64 { return rr.lost }

// Close releases the reader's memory.
func (rr *ReverseReader) Close() error {
	rr.closed = true
	rr.chunk, rr.arena, rr.i = nil, nil, 0
	return nil
}
