package powercut

import (
	"fmt"
	"math/rand/v2"
)

// Policies are the flush policies the scenarios cycle through.
var Policies = []string{"none", "rotate", "interval=2ms", "bytes=8KiB", "write"}

// SegmentSizes are the segment sizes they cycle through: small, so that a
// few thousand records roll many segments (and, with retention, reuse
// their files).
var SegmentSizes = []int64{64 << 10, 256 << 10}

// Scenarios returns scenarios with cuts power cuts in all, cycling through
// every combination of policy, segment size, retention on and off, and one
// or two writing goroutines; seed picks the rest (writer lives per log,
// Sync calls, where each cut falls).
func Scenarios(cuts int, seed uint64) []Scenario {
	rng := rand.New(rand.NewPCG(seed, 0x9c))
	var out []Scenario
	total := 0
	for i := 0; total < cuts; i++ {
		c := i
		policy := Policies[c%len(Policies)]
		c /= len(Policies)
		seg := SegmentSizes[c%len(SegmentSizes)]
		c /= len(SegmentSizes)
		retention := c%2 == 0
		c /= 2
		gor := 1 + c%2
		s := Scenario{Policy: policy, SegmentSize: seg, Retention: retention, Goroutines: gor, Seed: rng.Uint64()}
		if rng.IntN(2) == 0 {
			s.SyncEvery = 50 + rng.IntN(400)
		}
		s.DirExists = rng.IntN(2) == 0
		lives := 1 + rng.IntN(2)
		if total+lives > cuts {
			lives = cuts - total
		}
		perSegment := int(seg / 360) // records of about 360 bytes on average
		for range lives {
			s.CutAfter = append(s.CutAfter, perSegment*2+rng.IntN(perSegment*10))
		}
		s.Name = fmt.Sprintf("#%d %s seg=%dKiB retention=%v goroutines=%d sync=%d dirExists=%v cuts=%v", i, policy, seg>>10, retention, gor, s.SyncEvery, s.DirExists, s.CutAfter)
		out = append(out, s)
		total += lives
	}
	return out
}
