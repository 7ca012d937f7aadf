package tail

import (
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/mmaplog/mmaplog/ring"
	"github.com/mmaplog/mmaplog/rotate"
)

// Record is one log record. Payload points into the mapped segment: it is
// valid until the next call to Next or Close; copy it to keep it.
type Record struct {
	Seq     uint64 // sequence number: one more than the previous record's
	Time    int64  // when it was written, Unix nanoseconds
	Type    uint8  // record type (the level, for log records)
	Payload []byte
	Segment uint64 // number of the segment holding it
	Offset  int64  // its offset in the segment
	Size    int    // bytes it takes in the segment (header and padding included)
}

// ErrOtherLog is wrapped by the error of a Reader that met a segment of
// another log than the one it was asked for (Options.LogID, such as a
// cursor's): the directory was replaced by a new log, or the cursor belongs
// elsewhere.
var ErrOtherLog = errors.New("segment belongs to another log")

// ErrNotLog is wrapped by the error of Open (without Follow), Verify and End
// for an existing directory that holds no segment file.
var ErrNotLog = errors.New("not an mmaplog log (no segment files)")

// notLog says that dir holds no log.
func notLog(dir string) error { return fmt.Errorf("%s is %w", dir, ErrNotLog) }

// Defaults of the follow-mode Options.
const (
	// DefaultHoleWait is how long a Reader waits for a record that was
	// reserved but not yet published while the writer lives, before it
	// says so (a following Reader, which goes on waiting) or reports it as
	// a hole (a Reader reading to the end).
	DefaultHoleWait = 10 * time.Second
	// DefaultWaitTimeout is the longest a caught-up Reader sleeps in Wait
	// before it looks again without being woken.
	DefaultWaitTimeout = 5 * time.Millisecond
	// MaxIdleWait is how long an idle follower sleeps at most without
	// being woken by the writer (the timeout doubles from WaitTimeout
	// while nothing comes). It bounds how late a Wait sees ctx done, and
	// it is also the longest a follower asks the writer to wake it for
	// (ring.MaxWakeArm).
	MaxIdleWait = ring.MaxWakeArm
)

// Options configure a Reader. A nil *Options reads every record from the
// oldest one present to the end of what is written, and stops there.
type Options struct {
	// FromSeq starts at the record with this sequence number: records with
	// lower numbers are skipped. 0 reads from the oldest record present. If
	// retention removed the record already, the Reader starts at the oldest
	// one and reports the records lost (Damage). See also Start.
	FromSeq uint64
	// FromEnd starts after the newest record present at Open: only
	// records written later are read (with Follow). It overrides FromSeq.
	FromEnd bool
	// LogID, if not zero, is the identity of the log to read (a cursor's):
	// a segment of another log stops the Reader with ErrOtherLog.
	LogID [16]byte

	// Follow makes the Reader follow the writer: at the end of what is
	// written, Next returns false with a nil Err ("no data yet"), Wait
	// waits for more, and the Reader goes on across rotations into new
	// segments. A directory that does not exist yet is waited for.
	Follow bool
	// HoleWait is how long a Reader waits at a record that the live
	// writer reserved but has not published while later records are
	// there (a writer process stopped, or a goroutine of it stuck,
	// between the two) before it does something about it. A following
	// Reader never skips such a record while the writer holds its lock
	// on DIR/LOCK: after HoleWait it tells OnStall, and goes on waiting.
	// A Reader reading to the end (without Follow) skips it after
	// HoleWait, reporting it as Damage (DamageHole). When the writer is
	// dead (it holds no lock) or has finished the segment, the range is
	// skipped as soon as a provably valid record follows it. Default
	// DefaultHoleWait.
	HoleWait time.Duration
	// WaitTimeout is how long Wait first sleeps before it looks again
	// without being woken by the writer; it doubles while the log stays
	// idle, up to MaxIdleWait. Default DefaultWaitTimeout.
	WaitTimeout time.Duration

	// Spin is how long Wait keeps looking for the next record, on the CPU,
	// after a Wait that found one, before it sleeps on the futex. Without
	// it (the default) Wait looks a few microseconds, and a record that
	// comes later costs the futex wake-up (tens of microseconds); a Spin
	// longer than the gap between records keeps a busy follower awake, at
	// the price of a core while records come. The wait of an idle follower
	// is not affected.
	Spin time.Duration

	// ReleaseEvery is how far a Reader reads past the pages it gave back
	// before it gives back those it read since (with MADV_DONTNEED: they
	// stay in the page cache, only this process's mapping of them goes),
	// so that its resident set stays small on large segments. Default
	// DefaultReleaseEvery; a process following many logs may want less.
	// See also Release.
	ReleaseEvery int64

	// OnDamage, if set, is called for every damaged range as it is met
	// (they are also collected; see Reader.Damage).
	OnDamage func(Damage)

	// Since, if not zero, starts at the first record stamped at or after
	// it, in sequence order; every record after that one is read,
	// whatever its time stamp: time is treated as non-decreasing along
	// the log. The start is found without reading the log from its
	// beginning: by the time of each segment's first record, then by a
	// binary search inside one segment (a compressed one is read from its
	// start). Records whose times go back by up to TimeSlack are found
	// exactly; a larger step back (the clock set back while the log was
	// written) that the search reads is reported (OnTimeStep) and read on
	// from before it, but one between the few records it reads can make
	// it start after records stamped at or after Since. docs/READING.md
	// says more. Since cannot be combined with FromSeq or FromEnd.
	Since time.Time
	// Until, if not zero, ends reading before the first record stamped
	// after it: Next returns false and Done true. A following Reader also
	// ends once it has read everything while the clock is past Until by
	// UntilGrace.
	Until time.Time
	// MinLevel, if not ring.LevelNone, skips the records whose level (the
	// type byte, Record.Type) is below it, and those without a level.
	MinLevel ring.Level
	// Match, if set, skips the records for which it returns false. With
	// Last it is also called for the records counted back over. The
	// record's payload is valid only during the call.
	Match func(Record) bool
	// Last, if above 0, starts at the Last-th newest record present at
	// Open (among those MinLevel and Match keep, from Since on, before
	// Until), counting back from the end of the log a chunk at a time. A
	// Reader without Follow then stops at the end present at Open; with
	// Follow it goes on. It cannot be combined with FromSeq or FromEnd.
	Last int
	// OnTimeStep, if set, is called for every step back in record times
	// that the search for Since, Until or Last reads (see TimeStep).
	OnTimeStep func(TimeStep)
	// OnStall, if set, is told, in follow mode, when the Reader has
	// waited longer than HoleWait for a record that the live writer
	// reserved and has not written (a writer process stopped, or a
	// goroutine of it stuck, in the middle of a Write), while it goes on
	// waiting, and when the wait ends: see Stall.
	OnStall func(Stall)
}

// Reader reads the records of a log in sequence order. It is not safe for
// concurrent use.
//
// The Reader consumes what the segment walker (walk.go, with ring.Walker,
// the format's one decoder loop, and segments.go, which finds and opens the
// segments) meets: records, which it filters (seek.go) and hands out, and
// damage, which it collects. How it waits for the writer is its mode: it
// reads to the end and stops, or follows (follow.go).
type Reader struct {
	walker
	opts Options

	released int64 // the view's pages below this offset were given back
	atEnd    bool  // reading reached its end
	err      error
	damage   damageLog
	lost     uint64

	follow follower  // where a following Reader waits (its mode, with Follow)
	seek   seekState // Since, Until, Last and the filters (seek.go)
}

// DefaultReleaseEvery is Options.ReleaseEvery's default.
const DefaultReleaseEvery = 4 << 20

// Open opens the log in dir for reading. It does not take the writer's lock:
// reading while a writer appends is safe. Without Follow, a directory that
// does not exist or holds no segment file is an error (wrapping
// fs.ErrNotExist, or ErrNotLog).
func Open(dir string, o *Options) (*Reader, error) {
	r := newReader(dir, o)
	l, err := rotate.List(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist) && r.mode.growing():
		// Started before the writer created the log: wait for it.
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("tail: no log directory %s: %w", dir, fs.ErrNotExist)
	case err != nil:
		return nil, fmt.Errorf("tail: %w", err)
	case len(l.Segments) == 0 && !r.mode.growing():
		return nil, notLog(dir)
	}
	r.list = l
	r.chooseStart()
	if err := r.resolveStart(); err != nil {
		return nil, err
	}
	return r, nil
}

func newReader(dir string, o *Options) *Reader {
	r := &Reader{}
	if o != nil {
		r.opts = *o
	}
	if r.opts.HoleWait <= 0 {
		r.opts.HoleWait = DefaultHoleWait
	}
	if r.opts.WaitTimeout <= 0 {
		r.opts.WaitTimeout = DefaultWaitTimeout
	}
	if r.opts.ReleaseEvery <= 0 {
		r.opts.ReleaseEvery = DefaultReleaseEvery
	}
	r.follow = newFollower(&r.opts)
	var m mode = reading{holeWait: r.opts.HoleWait}
	if r.opts.Follow {
		m = &r.follow
	}
	r.walker = newWalker(dir, &r.opts, m)
	return r
}

// Next advances to the next record and reports whether there is one. It
// returns false at the end of what is written (in follow mode: for now; call
// Wait, then Next again) and on an error that stops reading; Err tells
// which.
func (r *Reader) Next() bool {
	if r.err != nil || r.atEnd {
		return false
	}
	r.relisted = false
	for {
		switch r.next() {
		case evRecord:
			// The record the walker found (r.rec), if the start and
			// the filters keep it.
			if r.rec.Seq < r.opts.FromSeq || !r.filter() {
				if r.atEnd {
					return false
				}
				continue
			}
			if off := r.rec.Offset; off-r.released >= r.opts.ReleaseEvery {
				r.release(off) // the pages before the record just read
			}
			r.follow.read(&r.rec)
			return true
		case evDamage:
			r.report(r.ev.damage)
		case evStart:
			r.seekTo(r.view, r.view.Header.FirstSeq)
			r.released = 0
			r.mode.opened(r, r.view)
		case evSegment:
			r.mode.closed(r)
		case evEnd:
			r.mode.reached(r)
			return false
		case evProblem:
			r.err = fmt.Errorf("tail: %w", r.ev.err)
			return false
		case evError:
			r.err = r.failed
			return false
		}
	}
}

func (r *Reader) report(d Damage) {
	r.damage.add(d)
	r.lost += d.Lost
	r.follow.skipped() // past a record it may have waited for
	if r.opts.OnDamage != nil {
		r.opts.OnDamage(d)
	}
}

// Record returns the current record (after Next returned true).
func (r *Reader) Record() Record { return r.rec }

// Err returns the error that stopped the Reader, or nil at the end of the
// log (or, in follow mode, when there is no data yet). Damage that the
// Reader skipped is not an error: see Damage.
func (r *Reader) Err() error { return r.err }

// Damage returns the damaged ranges met so far: the last DamageKept of
// them, oldest first, however long the Reader runs (DamageCount counts
// them all, and Lost the records they cost, exactly).
func (r *Reader) Damage() []Damage { return r.damage.last() }

// DamageCount returns the number of damaged ranges met so far, those that
// Damage no longer holds included.
func (r *Reader) DamageCount() uint64 { return r.damage.count }

// Lost returns the number of records the damage met so far cost.
func (r *Reader) Lost() uint64 { return r.lost }

// NextSeq returns the sequence number of the record the Reader expects next
// (0 before it read any segment).
func (r *Reader) NextSeq() uint64 { return r.nextSeq }

// LogID returns the identity of the log, once a segment has been read.
func (r *Reader) LogID() ([16]byte, bool) { return r.logID, r.haveID }

// Close releases the current mapping.
func (r *Reader) Close() error {
	r.closeView()
	r.mode.closed(r)
	r.atEnd = true
	return nil
}
