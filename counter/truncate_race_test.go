//go:build linux && race

package counter_test

import "os"

// truncatedChild is the child of TestProducersSurviveTruncation, which race
// builds leave out (see truncate_test.go).
func truncatedChild() { os.Exit(2) }
