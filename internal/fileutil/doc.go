// Package fileutil is mmaplog's small operating-system layer: mapping files,
// preallocating them for real, flushing ranges of a mapping, taking the
// directory lock, creating files without following symbolic links, and turning
// memory faults on mapped files into errors.
//
// Everything that talks to the kernel lives here, in small per-platform files
// (mmap_unix.go, preallocate_linux.go, sync_linux.go, ...), so that the format
// and writer packages stay portable and readable. Linux is the supported
// platform; the other unix systems build for development, with the
// Linux-only calls replaced by portable (slower) fallbacks.
package fileutil
