package rotate

import (
	"sync"
)

// SeqCache remembers the first sequence number of segments, by number:
// the header of a segment never changes once written, and a number is
// never used twice in a log. It is safe for concurrent use.
type SeqCache struct {
	mu sync.Mutex
	m  map[uint64]uint64
}

// firstSeq returns the FirstSeq of the listed segment fi, from the cache
// or its header; ok is false if the header cannot be read (not started,
// damaged, gone).
func (c *SeqCache) firstSeq(fi FileInfo) (uint64, bool) {
	if c != nil {
		c.mu.Lock()
		seq, ok := c.m[fi.Num]
		c.mu.Unlock()
		if ok {
			return seq, true
		}
	}
	h, err := PeekHeader(fi)
	if err != nil {
		return 0, false
	}
	if c != nil {
		c.mu.Lock()
		if c.m == nil {
			c.m = map[uint64]uint64{}
		}
		c.m[fi.Num] = h.FirstSeq
		c.mu.Unlock()
	}
	return h.FirstSeq, true
}

// prune forgets the segments numbered below oldest (removed).
func (c *SeqCache) prune(oldest uint64) {
	if c == nil {
		return
	}
	c.mu.Lock()
	for n := range c.m {
		if n < oldest {
			delete(c.m, n)
		}
	}
	c.mu.Unlock()
}

// keeper answers, for one Apply under KeepUnshipped, which rolled segments
// hold records a consumer still needs. A nil keeper holds nothing.
type keeper struct {
	l    Listing
	keep uint64
	seqs *SeqCache
}

func (r Retention) keeper(l Listing, st State) *keeper {
	if !r.KeepUnshipped || st.Keep == 0 {
		return nil
	}
	seqs := r.Seqs
	if seqs == nil {
		seqs = &SeqCache{}
	}
	if oldest, ok := l.Oldest(); ok {
		seqs.prune(oldest)
	}
	return &keeper{l: l, keep: st.Keep, seqs: seqs}
}

// span returns the records segment s holds, FirstSeq to NextSeq-1: its
// header's FirstSeq and the next listed segment's (0, 0 where either
// cannot be read).
func (k *keeper) span(s FileInfo) (first, next uint64) {
	nfi, ok := k.l.After(s.Num)
	if !ok {
		return 0, 0
	}
	first, ok1 := k.seqs.firstSeq(s)
	next, ok2 := k.seqs.firstSeq(nfi)
	if !ok1 || !ok2 || next < first {
		return 0, 0
	}
	return first, next
}

// holds reports whether the rolled segment s holds a record numbered
// keep or later: the next segment starts after keep. A segment whose
// range cannot be read is held (it may).
func (k *keeper) holds(s FileInfo) bool {
	if k == nil {
		return false
	}
	first, next := k.span(s)
	if next == 0 {
		return true
	}
	return next > k.keep && next > first
}
