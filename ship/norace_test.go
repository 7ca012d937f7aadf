//go:build !race

package ship_test

const raceEnabled = false
