package main

import (
	"bytes"
	"os"
	"strconv"
)

// residentBytes returns the resident set size of the process (anonymous
// memory and mapped file pages, shared ones included), from
// /proc/self/statm, or 0 if it cannot be read.
func residentBytes() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := bytes.Fields(b)
	if len(f) < 2 {
		return 0
	}
	pages, err := strconv.ParseInt(string(f[1]), 10, 64)
	if err != nil {
		return 0
	}
	return pages * int64(os.Getpagesize())
}

// dirtyBytes returns the page cache waiting to be written to disk, Dirty
// plus Writeback of /proc/meminfo, or 0 if it cannot be read. Writers are
// throttled by the kernel when it grows past vm.dirty_ratio (see
// Machine.Writeback): a throughput that swings between repetitions often
// follows it.
func dirtyBytes() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	var total int64
	for _, line := range bytes.Split(b, []byte("\n")) {
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok || (string(k) != "Dirty" && string(k) != "Writeback") {
			continue
		}
		f := bytes.Fields(v)
		if len(f) == 0 {
			continue
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err == nil {
			total += kb << 10
		}
	}
	return total
}
