package flush

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Mode is the kind of a flush policy.
type Mode int

const (
	// None leaves writeback to the kernel.
	None Mode = iota
	// Interval starts writeback of the dirty range every Policy.Interval.
	Interval
	// Bytes msyncs (MS_SYNC) the dirty range in the background after every
	// Policy.Bytes bytes written.
	Bytes
	// EveryWrite msyncs (MS_SYNC) each record's pages before Write returns.
	EveryWrite
	// OnRotate msyncs (MS_SYNC) each segment when it is rolled.
	OnRotate
)

// Policy is a flush policy. The zero value is None.
type Policy struct {
	Mode     Mode
	Interval time.Duration // for Interval
	Bytes    int64         // for Bytes
}

// NoFlush returns the None policy.
func NoFlush() Policy { return Policy{Mode: None} }

// EveryInterval returns the Interval policy with period d.
func EveryInterval(d time.Duration) Policy { return Policy{Mode: Interval, Interval: d} }

// EveryBytes returns the Bytes policy with threshold n.
func EveryBytes(n int64) Policy { return Policy{Mode: Bytes, Bytes: n} }

// EachWrite returns the EveryWrite policy.
func EachWrite() Policy { return Policy{Mode: EveryWrite} }

// AtRotation returns the OnRotate policy.
func AtRotation() Policy { return Policy{Mode: OnRotate} }

// SyncsRolled reports whether rolled segments are msync'ed (and the
// directory fsynced after changes) under the policy: all but None.
func (p Policy) SyncsRolled() bool { return p.Mode != None }

// Validate reports a policy whose parameter is missing or out of range.
func (p Policy) Validate() error {
	switch p.Mode {
	case None, EveryWrite, OnRotate:
		return nil
	case Interval:
		if p.Interval <= 0 {
			return fmt.Errorf("flush policy interval: the interval must be positive, got %v", p.Interval)
		}
		return nil
	case Bytes:
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
	case None:
		return "none"
	case Interval:
		return "interval=" + p.Interval.String()
	case Bytes:
		return "bytes=" + strconv.FormatInt(p.Bytes, 10)
	case EveryWrite:
		return "write"
	case OnRotate:
		return "rotate"
	}
	return fmt.Sprintf("Mode(%d)", int(p.Mode))
}

// Parse reads a policy: "none", "rotate", "write", "interval=DURATION"
// (a Go duration such as 100ms) or "bytes=SIZE" (bytes, or a number with a
// KiB, MiB or GiB suffix).
func Parse(s string) (Policy, error) {
	name, arg, hasArg := strings.Cut(strings.TrimSpace(s), "=")
	var p Policy
	switch strings.ToLower(name) {
	case "none":
		p = NoFlush()
	case "rotate":
		p = AtRotation()
	case "write":
		p = EachWrite()
	case "interval":
		d, err := time.ParseDuration(arg)
		if err != nil || !hasArg {
			return p, fmt.Errorf("flush policy %q: want interval=DURATION, such as interval=100ms", s)
		}
		p = EveryInterval(d)
	case "bytes":
		n, err := ParseSize(arg)
		if err != nil || !hasArg {
			return p, fmt.Errorf("flush policy %q: want bytes=SIZE, such as bytes=4MiB", s)
		}
		p = EveryBytes(n)
	default:
		return p, fmt.Errorf("unknown flush policy %q: want none, rotate, write, interval=DURATION or bytes=SIZE", s)
	}
	if hasArg && (p.Mode == None || p.Mode == OnRotate || p.Mode == EveryWrite) {
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
