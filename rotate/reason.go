package rotate

import (
	"fmt"
	"time"
)

// Rule is the retention rule, or the clean-up, behind an Action.
type Rule uint8

const (
	// RuleLeftover: a temporary file left by an interrupted compression.
	RuleLeftover Rule = iota + 1
	// RuleCompressedCopy: the plain file of a segment whose compressed
	// copy is complete (a compression interrupted between its rename and
	// its unlink).
	RuleCompressedCopy
	// RuleMaxBackups: more than Retention.MaxBackups rolled segments.
	RuleMaxBackups
	// RuleMaxTotalSize: the log takes more than Retention.MaxTotalSize.
	RuleMaxTotalSize
	// RuleMaxAge: rolled longer ago than Retention.MaxAge.
	RuleMaxAge
	// RuleCompress: Retention.Compress.
	RuleCompress
)

// Reason says why Apply or CompressRolled did an Action: the rule, and the
// figures it compared. String says it for people.
type Reason struct {
	Rule Rule
	// MaxBackups is the bound RuleMaxBackups found exceeded.
	MaxBackups int
	// Bytes is what the log took (segments, and what was about to be
	// added: State.Reserve) when RuleMaxTotalSize removed the segment,
	// over MaxTotalSize.
	Bytes, MaxTotalSize int64
	// MaxAge is the bound RuleMaxAge found exceeded.
	MaxAge time.Duration
	// Keep is set on a removal by RuleMaxTotalSize of a segment kept for
	// a consumer (Action.Unshipped): State.Keep, the lowest record a
	// consumer still needed.
	Keep uint64
	// Pooled: the plain file went to Retention.Pool, to be reused for a
	// new segment, instead of being unlinked.
	Pooled bool
}

func (r Reason) String() string {
	var s string
	switch r.Rule {
	case RuleLeftover:
		s = "leftover temporary file"
	case RuleCompressedCopy:
		s = "compressed copy exists"
	case RuleMaxBackups:
		s = fmt.Sprintf("more than MaxBackups=%d rolled segments", r.MaxBackups)
	case RuleMaxTotalSize:
		s = fmt.Sprintf("log takes %d bytes, over MaxTotalSize=%d", r.Bytes, r.MaxTotalSize)
		if r.Keep != 0 {
			s += fmt.Sprintf(" (records from %d on are kept for a consumer: KeepUnshipped)", r.Keep)
		}
	case RuleMaxAge:
		s = fmt.Sprintf("rolled more than MaxAge=%v ago", r.MaxAge)
	case RuleCompress:
		s = "Compress"
	default:
		s = fmt.Sprintf("Rule(%d)", uint8(r.Rule))
	}
	if r.Pooled {
		s += " (file kept for reuse)"
	}
	return s
}
