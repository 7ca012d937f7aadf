//go:build linux

package tail

import (
	"os"

	"golang.org/x/sys/unix"
)

// The search reads a few scattered pages of large files: without read-ahead,
// it reads only those (a fault on a mapping otherwise reads 128 KiB or more
// around the page).

// adviseRandom turns read-ahead off for faults on the mapping b.
func adviseRandom(b []byte) { _ = unix.Madvise(b, unix.MADV_RANDOM) }

// adviseNormal turns it back on, for the walk that follows.
func adviseNormal(b []byte) { _ = unix.Madvise(b, unix.MADV_NORMAL) }

// adviseRandomFile turns read-ahead off for reads of f.
func adviseRandomFile(f *os.File) { _ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_RANDOM) }
