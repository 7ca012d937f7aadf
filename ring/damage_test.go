package ring

import (
	"encoding/binary"
	"errors"
	"testing"
)

// TestZeros: what zeros where a record was reserved are, by the facts
// (docs/FORMAT.md, rule 7).
func TestZeros(t *testing.T) {
	for _, c := range []struct {
		f    Facts
		want Zeros
	}{
		{Facts{Finished: true}, ZerosHole},
		{Facts{Finished: true, Live: true}, ZerosHole},
		{Facts{Finished: true, PowerLoss: true}, ZerosHole},
		{Facts{Live: true}, ZerosPending},
		{Facts{}, ZerosUnfinished},
		{Facts{PowerLoss: true}, ZerosLost},
	} {
		if got := c.f.Zeros(); got != c.want {
			t.Errorf("%+v: %v, want %v", c.f, got, c.want)
		}
	}
}

// TestWalkerDamageIsComplete: the damage a Walker finds names its region
// and offset when it is made, in the Damage and in its error, and counts
// what the record after it proves; Classify says what it is by the facts.
func TestWalkerDamageIsComplete(t *testing.T) {
	b, r := newRegion(t, 4096, 1)
	var offs []int
	for i := 0; i < 6; i++ {
		pos, err := r.Append(0, 1, []byte("payload"))
		if err != nil {
			t.Fatal(err)
		}
		offs = append(offs, pos.Off)
	}
	binary.LittleEndian.PutUint32(b[offs[1]:], 0) // a hole
	b[offs[3]+RecordHeaderSize] ^= 1              // a corrupt record
	w := NewWalker(1)
	w.Path = "/logs/app/00000001.mlog"
	res := w.Scan(b, nil)
	if len(res.Damage) != 2 {
		t.Fatalf("damage %+v", res.Damage)
	}
	for i, d := range res.Damage {
		var ce *CorruptionError
		if d.Path != w.Path || !errors.As(d.Err, &ce) || ce.Path != w.Path || ce.Offset != int64(offs[1+2*i]) || d.From != ce.Offset || d.Lost != 1 || d.Span() != 1 {
			t.Errorf("damage %d: %+v (%v)", i, d, d.Err)
		}
	}
	hole, corrupt := res.Damage[0], res.Damage[1]
	if !hole.Hole || hole.Kind != DamageHole || corrupt.Hole || corrupt.Kind != DamageCorrupt || !errors.Is(corrupt.Err, ErrChecksum) {
		t.Fatalf("hole %+v, corrupt %+v", hole, corrupt)
	}
	for _, c := range []struct {
		f        Facts
		kind     DamageKind
		lost     uint64
		cause    error
		notCause error
	}{
		{Facts{Finished: true}, DamageHole, 1, ErrHole, ErrPowerLoss},
		{Facts{Live: true}, DamageHole, 1, ErrHole, ErrPowerLoss},
		{Facts{}, DamageUnfinished, 0, ErrUnfinished, ErrPowerLoss},
		{Facts{PowerLoss: true}, DamageHole, 1, ErrPowerLoss, ErrUnfinished},
	} {
		d := c.f.Classify(hole)
		if d.Kind != c.kind || d.Lost != c.lost || !errors.Is(d.Err, c.cause) || errors.Is(d.Err, c.notCause) || d.Path != w.Path {
			t.Errorf("%+v: a hole is %v, %d lost (%v)", c.f, d.Kind, d.Lost, d.Err)
		}
		if d := c.f.Classify(corrupt); d.Kind != DamageCorrupt || d.Lost != 1 || d.Err != corrupt.Err {
			t.Errorf("%+v: a corrupt record is %v, %d lost (%v)", c.f, d.Kind, d.Lost, d.Err)
		}
	}
}

// TestRest: the rest of a segment after its data, by what it holds, where
// the segment is and the facts.
func TestRest(t *testing.T) {
	const path = "/logs/app/00000002.mlog"
	bad := &CorruptionError{Path: path, Offset: 512, Err: ErrChecksum}
	for _, c := range []struct {
		name  string
		f     Facts
		r     Rest
		ok    bool
		kind  DamageKind
		cause error
	}{
		{"zeros at the end of the log", Facts{}, Rest{}, false, 0, nil},
		{"garbage after a crash", Facts{}, Rest{DirtyTo: 600}, true, DamageUnfinished, ErrUnfinished},
		{"garbage after a power loss", Facts{PowerLoss: true}, Rest{DirtyTo: 600}, true, DamageCorrupt, ErrPowerLoss},
		{"garbage in a finished segment", Facts{Finished: true}, Rest{DirtyTo: 600}, true, DamageCorrupt, nil},
		{"a corrupt record after a crash", Facts{}, Rest{Cause: bad}, true, DamageCorrupt, ErrChecksum},
		{"a corrupt record after a power loss", Facts{PowerLoss: true}, Rest{Cause: bad}, true, DamageCorrupt, ErrPowerLoss},
		{"a rolled segment a crashed writer left", Facts{}, Rest{Rolled: true}, true, DamageUnfinished, nil},
		{"a rolled segment cut by a power loss", Facts{PowerLoss: true}, Rest{Rolled: true}, true, DamageCorrupt, ErrPowerLoss},
		{"a finished rolled segment that stops early", Facts{Finished: true}, Rest{Rolled: true}, true, DamageCorrupt, nil},
	} {
		c.r.Path, c.r.From, c.r.Seq = path, 512, 40
		d, ok := c.f.Rest(c.r)
		if ok != c.ok {
			t.Errorf("%s: damage %v, want %v", c.name, ok, c.ok)
			continue
		}
		if !ok {
			continue
		}
		if d.Kind != c.kind || d.Path != path || d.From != 512 || d.To != -1 || d.Seq != 40 || d.Lost != 0 || d.Err == nil || c.cause != nil && !errors.Is(d.Err, c.cause) {
			t.Errorf("%s: %+v (%v)", c.name, d, d.Err)
		}
		var ce *CorruptionError
		if d.Kind == DamageCorrupt && (!errors.As(d.Err, &ce) || ce.Path != path) {
			t.Errorf("%s: the error does not say where: %v", c.name, d.Err)
		}
	}
}

// TestJump: what records missing at the start of a segment are, by how the
// segments before it ended or went (docs/FORMAT.md, rule 8).
func TestJump(t *testing.T) {
	for _, c := range []struct {
		name  string
		j     Jump
		kind  DamageKind
		lost  uint64
		cause error
	}{
		{"asked for, removed", Jump{Start: true}, DamageRemoved, 10, nil},
		{"unfinished writes before", Jump{Adjacent: true, Prev: EndUnfinished}, DamageUnfinished, 0, ErrUnfinished},
		{"lost to a power loss before", Jump{Adjacent: true, Prev: EndPowerLoss}, DamageCorrupt, 10, ErrPowerLoss},
		{"the segment before is damaged", Jump{Adjacent: true, Prev: EndDamaged}, DamageCorrupt, 10, nil},
		{"the segment before stops early", Jump{Adjacent: true, Prev: EndEarly}, DamageCorrupt, 10, nil},
		{"segments deleted in the middle", Jump{Passed: 2, OlderPresent: true}, DamageCorrupt, 10, nil},
		{"segments removed by retention", Jump{Passed: 2}, DamageRemoved, 10, nil},
	} {
		c.j.Path, c.j.Num, c.j.Expect, c.j.First = "/logs/app/00000005.mlog", 5, 90, 100
		d := c.j.Damage()
		if d.Kind != c.kind || d.Lost != c.lost || d.Seq != 90 || d.Resume != 100 || d.From != 0 || d.To != 0 || d.Path != c.j.Path || d.Err == nil || c.cause != nil && !errors.Is(d.Err, c.cause) {
			t.Errorf("%s: %+v (%v)", c.name, d, d.Err)
		}
	}
}
