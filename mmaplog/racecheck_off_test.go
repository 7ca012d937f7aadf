//go:build !race

package mmaplog_test

const raceOn = false
