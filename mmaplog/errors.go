package mmaplog

import (
	"errors"

	"github.com/mmaplog/mmaplog/internal/fault"
	"github.com/mmaplog/mmaplog/ring"
)

// Errors returned by the Writer. Test for them with errors.Is.
var (
	// ErrTooLarge: the record is larger than Options.MaxRecordSize or than
	// a segment can hold. Nothing was written.
	ErrTooLarge = ring.ErrTooLarge
	// ErrClosed: the Writer is closed.
	ErrClosed = errors.New("mmaplog: writer is closed")
	// ErrLocked: another writer (process or Writer) has the log open. The
	// error's text names the holder's pid; errors.As with *LockedError
	// gives it.
	ErrLocked = errors.New("mmaplog: log is locked by another writer")
	// ErrFault: a mapped file faulted (it was truncated by someone else, or
	// the disk failed to page it in). The Write did not complete.
	ErrFault = fault.ErrFault
)

// CorruptionError locates damage in a segment: file, offset and cause. The
// causes are ring's sentinel errors (ring.ErrChecksum, ring.ErrBadMagic,
// ring.ErrVersion, ring.ErrShort, ring.ErrHole, ...).
type CorruptionError = ring.CorruptionError

// LockedError is the error behind ErrLocked: the lock file and the pid
// written into it by the process that holds it.
type LockedError struct {
	Path string
	PID  int
}

func (e *LockedError) Error() string {
	if e.PID > 0 {
		return "mmaplog: " + e.Path + " is held by process " + itoa(e.PID) + ": only one writer process may have a log open; stop it or use another directory"
	}
	return "mmaplog: " + e.Path + " is held by another writer: only one writer process may have a log open; stop it or use another directory"
}

// Is makes errors.Is(err, ErrLocked) true.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}
