//go:build !race

package mmapzap_test

const raceOn = false
