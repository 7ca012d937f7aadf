// Package cursorfile is the file format of a log consumer's cursor, and its
// safe reading and writing: the one codec that the readers' package (tail),
// the shipper and the writer (which keeps what a registered cursor still
// needs, Options.KeepUnshipped) share, so that none of them depends on
// another.
//
// A cursor is a small JSON file, saved atomically (a temporary file,
// fsynced, renamed over the cursor, the directory fsynced). It is never
// read or written through a symbolic link, at the file or at the directory
// holding it, and never opened if it is not a regular file (a named pipe
// would make a reader wait for a writer).
//
// The cursors of a log are kept by default in DIR/cursors/NAME. A consumer
// that keeps its cursor elsewhere may register it there: a registration is
// a cursor file like any other (the writer and `mmaptail stat` read it as
// one), with Cursor.CursorFile naming where the consumer keeps the cursor it
// stands for.
package cursorfile
