//go:build !race

package tail_test

// seekQueries is how many random queries the seek tests make on each log.
const seekQueries = 100
