//go:build !linux

package mmaplog_test

// threadFaults is not counted where RUSAGE_THREAD does not exist.
func threadFaults() int64 { return 0 }
