package ship

import (
	"fmt"

	"github.com/mmaplog/mmaplog/tail"
)

// Position is where a shipper's next record (a cursor's NextSeq, or --from)
// stands against what a log holds.
type Position int

// Positions.
const (
	// CaughtUp: the next record is the next one the writer writes.
	CaughtUp Position = iota
	// Behind: records are waiting to be shipped.
	Behind
	// BeyondEnd: the next record is past the log's newest one and the one
	// after it: a cursor saved for a log that was since restored from an
	// older copy, or a --from too far. Nothing is shipped until the log
	// has grown past it, and the records in between never are.
	BeyondEnd
)

func (p Position) String() string {
	switch p {
	case CaughtUp:
		return "caught up"
	case Behind:
		return "behind"
	case BeyondEnd:
		return "beyond the end"
	}
	return fmt.Sprintf("Position(%d)", int(p))
}

// Standing says where next stands in a log of extent e.
type Standing struct {
	Position Position
	// Lag is the number of records waiting (Behind), Ahead the number of
	// records the log must grow by before the record next is written
	// (BeyondEnd).
	Lag, Ahead uint64
	// Lost counts the records before the oldest one present that next
	// asks for: removed by retention before they were shipped.
	Lost uint64
	// Newest is the newest record's sequence number (0: none).
	Newest uint64
}

// Locate says where the record next stands in a log of extent e (from
// tail.End): what `mmaptail stat` shows beside each cursor, and what a
// shipper warns about at start.
func Locate(next uint64, e tail.Extent) Standing {
	end := e.NextSeq // the sequence number the writer gives the next record
	if end == 0 {
		end = 1 // no record yet: the first one gets 1
	}
	s := Standing{Newest: end - 1}
	if next == 0 {
		next = 1
	}
	switch {
	case next == end:
		s.Position = CaughtUp
	case next < end:
		s.Position, s.Lag = Behind, end-next
		if e.FirstSeq > next {
			s.Lost = e.FirstSeq - next
			s.Lag = end - e.FirstSeq
		}
	default:
		s.Position, s.Ahead = BeyondEnd, next-end
	}
	return s
}

// String describes the standing in a few words, as stat prints it.
func (s Standing) String() string {
	switch s.Position {
	case Behind:
		if s.Lost > 0 {
			return fmt.Sprintf("lag %d record(s), %d lost to retention", s.Lag, s.Lost)
		}
		return fmt.Sprintf("lag %d record(s)", s.Lag)
	case BeyondEnd:
		return fmt.Sprintf("beyond the end: the newest record is %d, shipping resumes at %d", s.Newest, s.Newest+s.Ahead+1)
	}
	return "caught up"
}
