package tail

import "github.com/mmaplog/mmaplog/ring"

// Damage is a range that a Reader skipped or could not read, or a jump in
// sequence numbers it met: ring's damage model, which the Reader, Verify
// (its findings) and the writer's crash recovery (mmaplog.Repair) share, so
// that they say the same of the same bytes. Its fields: Path, From, To (-1
// for "to the end of the file"), Lost (records lost, as the sequence
// numbers prove), Err, Kind, Seq (expected at From) and Resume (where
// reading resumes).
type Damage = ring.Damage

// DamageKind says what a Damage is: records lost to damage, or sequence
// numbers that no record ever had.
type DamageKind = ring.DamageKind

// The kinds of Damage; ring.DamageKind documents each.
const (
	DamageCorrupt    = ring.DamageCorrupt
	DamageHole       = ring.DamageHole
	DamageUnfinished = ring.DamageUnfinished
	DamageRemoved    = ring.DamageRemoved
	DamageRepaired   = ring.DamageRepaired
)

// DamageKept is how many damaged ranges a Reader keeps for Damage: the
// latest ones. A follower may run for months over a log that someone
// damages again and again; what it keeps stays bounded, while DamageCount
// and Lost count everything.
const DamageKept = 1000

// damageLog keeps the last DamageKept damaged ranges and counts them all.
type damageLog struct {
	list  []Damage
	count uint64
}

func (l *damageLog) add(d Damage) {
	if len(l.list) == 2*DamageKept {
		// Drop the older half into a new array: a slice Damage returned
		// earlier keeps what it held.
		l.list = append(make([]Damage, 0, 2*DamageKept), l.list[DamageKept:]...)
	}
	l.list = append(l.list, d)
	l.count++
}

func (l *damageLog) last() []Damage {
	if n := len(l.list); n > DamageKept {
		return l.list[n-DamageKept:]
	}
	return l.list
}
