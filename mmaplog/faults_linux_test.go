package mmaplog_test

import "golang.org/x/sys/unix"

// threadFaults returns the page faults (minor and major) of the calling
// thread so far; lock the goroutine to its thread around the counting.
func threadFaults() int64 {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_THREAD, &ru) != nil {
		return 0
	}
	return ru.Minflt + ru.Majflt
}
