package tail

import (
	"errors"
	"fmt"
)

// DamageKind says what a Damage is: records lost to damage, or sequence
// numbers that no record ever had.
type DamageKind uint8

const (
	// DamageCorrupt: bytes that fail their checks (checksum, length,
	// header, a truncated file, a segment deleted from the middle of the
	// log, a memory fault). The records there are lost.
	DamageCorrupt DamageKind = iota
	// DamageHole: space reserved and never published in a segment whose
	// writer finished it (or, for a Reader that does not follow, that a
	// live writer left unpublished for longer than HoleWait). The record
	// there is lost.
	DamageHole
	// DamageUnfinished: writes of a crashed writer that never completed
	// (their Write never returned): in a segment it did not finish, after
	// it died. No record is lost; the next writer's Open turns the range
	// into padding.
	DamageUnfinished
	// DamageRemoved: records removed by retention before the Reader got
	// to them (or before the position it was asked to start at).
	DamageRemoved
	// DamageRepaired: a jump in sequence numbers left by an earlier crash
	// recovery (which reported it then): records lost in that crash.
	DamageRepaired
)

var damageNames = [...]string{
	DamageCorrupt:    "corrupt",
	DamageHole:       "hole",
	DamageUnfinished: "unfinished write",
	DamageRemoved:    "removed by retention",
	DamageRepaired:   "repaired earlier",
}

func (k DamageKind) String() string {
	if int(k) < len(damageNames) {
		return damageNames[k]
	}
	return fmt.Sprintf("DamageKind(%d)", uint8(k))
}

// Corruption reports whether the kind is damage to the log's bytes
// (DamageCorrupt, DamageHole): what `mmaptail verify` counts as findings.
func (k DamageKind) Corruption() bool { return k == DamageCorrupt || k == DamageHole }

// Damage is a range that a Reader skipped or could not read, or a jump in
// sequence numbers it met.
type Damage struct {
	Path     string
	From, To int64  // byte range in the segment; To is -1 for "to the end of the file"
	Lost     uint64 // records lost, as the sequence numbers prove (0 if none, or unknown)
	Err      error
	Kind     DamageKind
	// Seq is the sequence number expected at From, Resume the one at which
	// reading resumes (the record at To, or the first of the next segment
	// read); 0 where unknown.
	Seq, Resume uint64
}

// errUnfinished is the cause of a DamageUnfinished.
var errUnfinished = errors.New("unfinished write of a crashed writer (its Write never returned): no record lost, repaired at the next Open")

func (d Damage) String() string {
	to := fmt.Sprint(d.To)
	if d.To < 0 {
		to = "end"
	}
	s := fmt.Sprintf("%s: offsets %d to %s skipped", d.Path, d.From, to)
	if d.From == d.To {
		s = fmt.Sprintf("%s: at offset %d", d.Path, d.From)
	}
	if d.Lost > 0 {
		s += fmt.Sprintf(", %d record(s) lost", d.Lost)
	}
	if d.Err != nil {
		s += ": " + d.Err.Error()
	}
	return s
}
