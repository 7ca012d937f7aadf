package tail

import (
	"fmt"
	"strconv"
)

// Start is where a Reader without a cursor starts: the oldest record
// (StartBegin, the zero value), after the newest one (StartEnd), or at a
// sequence number (StartAt). ParseStart reads the form the command line
// takes; Apply puts it into Options.
type Start struct {
	end bool
	seq uint64
}

// StartBegin starts at the oldest record present.
var StartBegin = Start{}

// StartEnd starts after the newest record present at Open.
var StartEnd = Start{end: true}

// StartAt starts at the record with sequence number seq (at least 1).
func StartAt(seq uint64) Start { return Start{seq: seq} }

// ParseStart reads "begin", "end" or a sequence number (1 or more).
func ParseStart(s string) (Start, error) {
	switch s {
	case "begin", "":
		return StartBegin, nil
	case "end":
		return StartEnd, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 {
		return Start{}, fmt.Errorf("start %q: want begin, end or a sequence number (1 or more)", s)
	}
	return StartAt(n), nil
}

// String returns the form ParseStart reads.
func (s Start) String() string {
	switch {
	case s.end:
		return "end"
	case s.seq > 0:
		return strconv.FormatUint(s.seq, 10)
	}
	return "begin"
}

// IsEnd reports whether s starts after the newest record.
func (s Start) IsEnd() bool { return s.end }

// Seq returns the sequence number s starts at (0: the oldest record, or
// the end).
func (s Start) Seq() uint64 { return s.seq }

// Apply sets o's FromSeq and FromEnd to start at s.
func (s Start) Apply(o *Options) { o.FromSeq, o.FromEnd = s.seq, s.end }
