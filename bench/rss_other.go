//go:build !linux

package main

// residentBytes is only measured on Linux; elsewhere the RSS column is 0.
func residentBytes() int64 { return 0 }

// dirtyBytes is only measured on Linux.
func dirtyBytes() int64 { return 0 }
