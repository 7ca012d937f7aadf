package main

import (
	"slices"
	_ "unsafe" // for go:linkname
)

// nanotime is the runtime's monotonic clock: one vDSO clock_gettime, half
// of what time.Now costs (which also reads the wall clock). phuslu/log and
// others link to it the same way; the runtime keeps it linkable.
//
//go:linkname nanotime runtime.nanotime
func nanotime() int64

// clockCost measures what timing adds to each latency sample: the
// difference of two back-to-back nanotime reads, its minimum and its
// median. A sample is read-Write-read, so it includes about one such
// difference on top of the Write.
func clockCost() (minNs, medianNs int64) {
	const n = 1 << 16
	ds := make([]int64, n)
	for i := range ds {
		a := nanotime()
		b := nanotime()
		ds[i] = b - a
	}
	slices.Sort(ds)
	return ds[0], ds[n/2]
}
