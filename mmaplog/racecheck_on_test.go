//go:build race

package mmaplog_test

// raceOn: the race detector is on, and its instrumentation (and sync.Pool,
// which then drops items at random) allocates.
const raceOn = true
