// Package fault turns memory faults on mapped files into errors.
//
// A file mapped into memory can be truncated by another process; touching a
// page past the new end raises SIGBUS, which kills a Go program. With
// debug.SetPanicOnFault on, the runtime raises a panic instead, which Guard
// recovers and turns into an error wrapping ErrFault.
//
// Every access to a mapping that another process could truncate runs inside
// Guard:
//
//	err := fault.Guard(path, func() error {
//		rec, kind, err = ring.Decode(data, off)
//		return nil
//	})
//
// Guard does not allocate when fn does not escape (a function literal
// passed straight to it stays on the stack), so it is cheap enough for the
// append path.
package fault

import (
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
)

// ErrFault is wrapped by the error returned when touching a mapped file
// raised a memory fault: typically the file was truncated by another process
// while mapped (SIGBUS), or a page could not be read from disk. The
// operation is abandoned; the process is not.
var ErrFault = errors.New("memory fault on a mapped file (was it truncated by another process?)")

// Guard runs fn with memory faults turned into panics for the calling
// goroutine, and turns such a panic into an error wrapping ErrFault that
// names where (a file path; "" for none). Any other panic goes on unwinding.
// It returns fn's error otherwise. The setting before the call is restored.
func Guard(where string, fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = Error(r, where)
		}
	}()
	defer Catch()()
	return fn()
}

// Error converts a value recovered from a panic into an error if the panic
// was a memory fault raised while debug.SetPanicOnFault was on, naming
// where (a file path). Any other panic value is re-panicked. Guard is the
// one way to use it in this module; it stays exported for packages that
// recover in a frame of their own:
//
//	defer func() {
//		if r := recover(); r != nil {
//			err = fault.Error(r, path)
//		}
//	}()
//	defer fault.Catch()()
func Error(r any, where string) error {
	if re, ok := r.(runtime.Error); ok {
		if fa, ok := re.(interface{ Addr() uintptr }); ok {
			if where == "" {
				return fmt.Errorf("%w (address %#x)", ErrFault, fa.Addr())
			}
			return fmt.Errorf("%s: %w (address %#x)", where, ErrFault, fa.Addr())
		}
	}
	panic(r)
}

// Catch turns on debug.SetPanicOnFault for the calling goroutine and returns
// the function that restores the previous setting. It does not allocate (a
// closure over the previous setting would, on every call).
func Catch() func() {
	if debug.SetPanicOnFault(true) {
		return restoreOn
	}
	return restoreOff
}

func restoreOn()  { debug.SetPanicOnFault(true) }
func restoreOff() { debug.SetPanicOnFault(false) }
