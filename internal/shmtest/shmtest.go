//go:build linux

// Package shmtest gives tests shared-memory names and SysV keys that no
// other test (or test run in parallel on the machine) uses, and removes
// whatever is left under them when the test ends.
package shmtest

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"testing"

	"github.com/mmaplog/mmaplog/internal/fileutil"
)

var seq atomic.Uint32

// ShmName returns a POSIX shared-memory name unique to this test; the
// object is removed at cleanup if the test left it.
func ShmName(t testing.TB) string {
	t.Helper()
	for {
		name := fmt.Sprintf("mmaplog-test-%d-%d", os.Getpid(), seq.Add(1))
		p, _ := fileutil.ShmPath(name)
		if _, err := os.Lstat(p); errors.Is(err, os.ErrNotExist) {
			t.Cleanup(func() { os.Remove(p) })
			return name
		}
	}
}

// Key returns a SysV key with no segment, unique to this test; a segment
// left under it is removed at cleanup.
func Key(t testing.TB) int {
	t.Helper()
	for {
		key := 0x6d000000 | (os.Getpid()&0xffff)<<8 | int(seq.Add(1)&0xff)
		if _, err := fileutil.SysvLookup(key); errors.Is(err, os.ErrNotExist) {
			t.Cleanup(func() { RemoveKey(key) })
			return key
		}
	}
}

// RemoveKey removes the SysV segment with key, if there is one.
func RemoveKey(key int) {
	if id, err := fileutil.SysvLookup(key); err == nil {
		fileutil.SysvRemove(id)
	}
}
