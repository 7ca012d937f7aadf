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
