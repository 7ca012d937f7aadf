package flush

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// A flush policy has one name, used everywhere: by its constructor (None,
// Interval, Bytes, Write, Rotate), by its Mode (ModeNone, ModeInterval,
// ModeBytes, ModeWrite, ModeRotate), and in the form String writes and
// Parse reads ("none", "interval=100ms", "bytes=4MiB", "write", "rotate").

// Mode is the kind of a flush policy.
type Mode int

const (
	// ModeNone leaves writeback to the kernel.
	ModeNone Mode = iota
	// ModeInterval msyncs (MS_SYNC) the dirty range in the background
	// every Policy.Interval.
	ModeInterval
	// ModeBytes msyncs (MS_SYNC) the dirty range in the background after
	// every Policy.Bytes bytes written.
	ModeBytes
	// ModeWrite msyncs (MS_SYNC) each record's pages before Write returns.
	ModeWrite
	// ModeRotate msyncs (MS_SYNC) each segment when it is rolled.
	ModeRotate
)

var modeNames = [...]string{ModeNone: "none", ModeInterval: "interval", ModeBytes: "bytes", ModeWrite: "write", ModeRotate: "rotate"}

func (m Mode) String() string {
	if m >= 0 && int(m) < len(modeNames) {
		return modeNames[m]
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Policy is a flush policy. The zero value is None.
type Policy struct {
	Mode     Mode
	Interval time.Duration // for ModeInterval
	Bytes    int64         // for ModeBytes
}

// None returns the policy "none": writeback is left to the kernel.
func None() Policy { return Policy{Mode: ModeNone} }

// Interval returns the policy "interval=d": a background msync(MS_SYNC) of
// the dirty range every d.
func Interval(d time.Duration) Policy { return Policy{Mode: ModeInterval, Interval: d} }

// Bytes returns the policy "bytes=n": a background msync after every n
// bytes written.
func Bytes(n int64) Policy { return Policy{Mode: ModeBytes, Bytes: n} }

// Write returns the policy "write": each record's pages are msynced before
// Write returns.
func Write() Policy { return Policy{Mode: ModeWrite} }

// Rotate returns the policy "rotate": each segment is msynced when it is
// rolled.
func Rotate() Policy { return Policy{Mode: ModeRotate} }

// NoFlush is None.
//
// Deprecated: use None.
func NoFlush() Policy { return None() }

// EveryInterval is Interval.
//
// Deprecated: use Interval.
func EveryInterval(d time.Duration) Policy { return Interval(d) }

// EveryBytes is Bytes.
//
// Deprecated: use Bytes.
func EveryBytes(n int64) Policy { return Bytes(n) }

// EachWrite is Write.
//
// Deprecated: use Write.
func EachWrite() Policy { return Write() }

// AtRotation is Rotate.
//
// Deprecated: use Rotate.
func AtRotation() Policy { return Rotate() }

// SyncsRolled reports whether rolled segments are msync'ed (and the
// directory fsynced after changes) under the policy: all but None.
func (p Policy) SyncsRolled() bool { return p.Mode != ModeNone }

// Validate reports a policy whose parameter is missing or out of range.
func (p Policy) Validate() error {
	switch p.Mode {
	case ModeNone, ModeWrite, ModeRotate:
		return nil
	case ModeInterval:
		if p.Interval <= 0 {
			return fmt.Errorf("flush policy interval: the interval must be positive, got %v", p.Interval)
		}
		return nil
	case ModeBytes:
		if p.Bytes <= 0 {
			return fmt.Errorf("flush policy bytes: the byte count must be positive, got %d", p.Bytes)
		}
		return nil
	}
	return fmt.Errorf("unknown flush mode %d", p.Mode)
}

// String returns the policy in the form Parse reads.
func (p Policy) String() string {
	switch p.Mode {
	case ModeInterval:
		return "interval=" + p.Interval.String()
	case ModeBytes:
		return "bytes=" + strconv.FormatInt(p.Bytes, 10)
	}
	return p.Mode.String()
}

// Parse reads a policy: "none", "rotate", "write", "interval=DURATION"
// (a Go duration such as 100ms) or "bytes=SIZE" (bytes, or a number with a
// KiB, MiB or GiB suffix).
func Parse(s string) (Policy, error) {
	name, arg, hasArg := strings.Cut(strings.TrimSpace(s), "=")
	var p Policy
	switch strings.ToLower(name) {
	case "none":
		p = None()
	case "rotate":
		p = Rotate()
	case "write":
		p = Write()
	case "interval":
		d, err := time.ParseDuration(arg)
		if err != nil || !hasArg {
			return p, fmt.Errorf("flush policy %q: want interval=DURATION, such as interval=100ms", s)
		}
		p = Interval(d)
	case "bytes":
		n, err := ParseSize(arg)
		if err != nil || !hasArg {
			return p, fmt.Errorf("flush policy %q: want bytes=SIZE, such as bytes=4MiB", s)
		}
		p = Bytes(n)
	default:
		return p, fmt.Errorf("unknown flush policy %q: want none, rotate, write, interval=DURATION or bytes=SIZE", s)
	}
	if hasArg && (p.Mode == ModeNone || p.Mode == ModeRotate || p.Mode == ModeWrite) {
		return p, fmt.Errorf("flush policy %q takes no argument", s)
	}
	return p, p.Validate()
}

// ParseSize reads a byte count: digits, optionally followed by B, KiB, MiB,
// GiB (or K, M, G, KB, MB, GB, all powers of 1024).
func ParseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("size %q: want a number of bytes, optionally with a KiB, MiB or GiB suffix", s)
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: %w", s, err)
	}
	var mul int64
	switch strings.ToLower(strings.TrimSpace(s[i:])) {
	case "", "b":
		mul = 1
	case "k", "kb", "kib":
		mul = 1 << 10
	case "m", "mb", "mib":
		mul = 1 << 20
	case "g", "gb", "gib":
		mul = 1 << 30
	default:
		return 0, fmt.Errorf("size %q: unknown suffix %q (use KiB, MiB or GiB)", s, s[i:])
	}
	if n > (1<<62)/mul {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return n * mul, nil
}
