//go:build race

package ship_test

const raceEnabled = true
