// Package vcs reads counter segments in the layout of the VCS monitoring
// design, so that services already writing them can be collected by
// mmaptail without any change to their producers.
//
// A VCS segment is a SysV shared-memory segment (key 0x3eeff00 by default)
// holding, between two inaccessible guard pages: magic1 (0x650a218), an
// index word, two maps of 131072 rules x 128 uint32 entries (64 MiB each),
// 64 reserved words and magic2 (0x138a4f2). Producers load the index and
// atomically add to map[index][rule][metric]. Attach validates the size and
// both magics and protects the guard pages in this process too.
//
// Source collects a segment: it switches the index, so that producers move
// to the other map, waits a grace period, and then empties the old map
// entry by entry with atomic swaps. The original design zeroed the old map
// instead, losing every increment that a late producer made between the
// read and the zeroing; a swap takes exactly what is there, and anything
// added afterwards stays in the map for its next collection. The scan skips
// zero blocks of 16 entries with eight 64-bit loads, so an almost empty
// 64 MiB map costs a few milliseconds.
//
// Values are uint32, as the producers write them: an entry that receives
// more than 2^32-1 in one interval wraps (in the producer, before the
// collector can see it).
package vcs
