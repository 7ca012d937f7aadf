package ship

import (
	"bytes"
	"hash/maphash"
	"strconv"
)

// labelSet is the set of label names an event's labels member has so far,
// kept as spans of the Encoder's arena, with a hash table over them: a
// record with thousands of labels, or repeating a member thousands of times
// (each displaced value a label), costs time in proportion to its size.
// For a displaced value whose name is taken, each name remembers the
// number to try next after it (name_2, name_3, ...), so that the thousandth
// copy of a member does not try the 999 names before it again.
type labelSet struct {
	seed  maphash.Seed
	names []labelName
	table []int32 // index+1 into names; 0: free. Its length is a power of two.
}

type labelName struct {
	s    span
	hash uint64
	next int // the number to try first for a name made from this one
}

func (ls *labelSet) reset() {
	if ls.table == nil {
		ls.seed = maphash.MakeSeed()
		ls.table = make([]int32, 64)
	}
	ls.names = ls.names[:0]
	clear(ls.table)
}

// find returns the index of name in names, or -1.
func (ls *labelSet) find(arena, name []byte) int {
	h := maphash.Bytes(ls.seed, name)
	return ls.lookup(arena, name, h)
}

func (ls *labelSet) lookup(arena, name []byte, h uint64) int {
	mask := uint64(len(ls.table) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		k := ls.table[i]
		if k == 0 {
			return -1
		}
		n := &ls.names[k-1]
		if n.hash == h && bytes.Equal(arena[n.s.off:n.s.off+n.s.n], name) {
			return int(k - 1)
		}
	}
}

// add adds the name s (of arena), which is not in the set.
func (ls *labelSet) add(arena []byte, s span) {
	h := maphash.Bytes(ls.seed, arena[s.off:s.off+s.n])
	ls.names = append(ls.names, labelName{s: s, hash: h, next: 2})
	if 2*len(ls.names) > len(ls.table) {
		ls.table = make([]int32, 2*len(ls.table))
		for i := range ls.names {
			ls.insert(ls.names[i].hash, int32(i+1))
		}
		return
	}
	ls.insert(h, int32(len(ls.names)))
}

func (ls *labelSet) insert(h uint64, k int32) {
	mask := uint64(len(ls.table) - 1)
	i := h & mask
	for ls.table[i] != 0 {
		i = (i + 1) & mask
	}
	ls.table[i] = k
}

// claim adds the label name s (of the Encoder's arena) to the set and
// returns it, or, where it is taken, the first of s_2, s_3, ... that is
// not, made at the arena's end.
func (e *Encoder) claim(s span) span {
	ls := &e.labelSet
	base := ls.find(e.arena, e.bytes(s))
	if base < 0 {
		ls.add(e.arena, s)
		return s
	}
	for n := ls.names[base].next; ; n++ {
		off := len(e.arena)
		e.arena = append(e.arena, e.arena[s.off:s.off+s.n]...)
		e.arena = append(e.arena, '_')
		e.arena = strconv.AppendInt(e.arena, int64(n), 10)
		c := span{off, len(e.arena) - off}
		if ls.find(e.arena, e.bytes(c)) < 0 {
			ls.names[base].next = n + 1
			ls.add(e.arena, c)
			return c
		}
		e.arena = e.arena[:off]
	}
}
