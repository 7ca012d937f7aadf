// Package fault turns memory faults on mapped files into errors.
//
// A file mapped into memory can be truncated by another process; touching a
// page past the new end raises SIGBUS, which kills a Go program. With
// debug.SetPanicOnFault on, the runtime raises a panic instead, which the
// functions here recover and turn into an error wrapping ErrFault.
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

// Error converts a value recovered from a panic into an error if the panic
// was a memory fault raised while debug.SetPanicOnFault was on, naming
// where (a file path). Any other panic value is re-panicked.
//
// Use it as:
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
// closure over the previous setting would, on every call: a follow reader
// calls it on every Wait).
func Catch() func() {
	if debug.SetPanicOnFault(true) {
		return restoreOn
	}
	return restoreOff
}

func restoreOn()  { debug.SetPanicOnFault(true) }
func restoreOff() { debug.SetPanicOnFault(false) }
