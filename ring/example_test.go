package ring_test

import (
	"fmt"

	"github.com/mmaplog/mmaplog/ring"
)

// What a hole (a zero length word where a record was reserved, records
// proved after it) is, by what a reader knows of the segment and its
// writer: the one classification readers, Verify and crash recovery share.
func ExampleFacts_Classify() {
	hole := ring.Damage{Path: "/var/log/app/0000000000000007.mlog", From: 4096, To: 4160, Seq: 1234, Resume: 1235, Hole: true,
		Err: &ring.CorruptionError{Path: "/var/log/app/0000000000000007.mlog", Offset: 4096, Err: ring.ErrHole}}
	for _, c := range []struct {
		when  string
		facts ring.Facts
	}{
		{"sealed segment", ring.Facts{Finished: true}},
		{"writer crashed", ring.Facts{}},
		{"power lost", ring.Facts{PowerLoss: true}},
	} {
		d := c.facts.Classify(hole)
		fmt.Printf("%s: %v, %d lost\n", c.when, d.Kind, d.Lost)
	}
	// Output:
	// sealed segment: hole, 1 lost
	// writer crashed: unfinished write, 0 lost
	// power lost: hole, 1 lost
}
