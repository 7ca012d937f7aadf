//go:build race

package tail_test

// seekQueries is how many random queries the seek tests make on each log:
// fewer under the race detector, which makes each many times slower.
const seekQueries = 30
