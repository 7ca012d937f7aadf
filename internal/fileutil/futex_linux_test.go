//go:build linux

package fileutil

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// never is a futex timeout no test waits for: a wait that ends within
// hangLimit was not ended by its timeout.
const never = time.Hour

// hangLimit bounds the waits of these tests: only a hang takes this long.
const hangLimit = time.Minute

// TestFutexWakesAcrossMappings: a waiter asleep on a word of one shared
// mapping of a file is woken by a FutexWake on the same word through another
// mapping (as two processes would map it). The waiter is seen asleep in the
// futex system call before the wake is sent, and its timeout is an hour: a
// wait that ends within the test's limit was ended by the wake.
func TestFutexWakesAcrossMappings(t *testing.T) {
	// Two separate shared mappings of one file stand for two processes.
	f, err := os.CreateTemp(t.TempDir(), "futex")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := Preallocate(f, 4096); err != nil {
		t.Fatal(err)
	}
	a, _ := Map(f, 4096, true)
	b, _ := Map(f, 4096, true)
	defer Unmap(a)
	defer Unmap(b)
	wa := (*uint32)(unsafePointer(&a[64]))
	wb := (*uint32)(unsafePointer(&b[64]))
	tids := make(chan int, 1)
	woke := make(chan struct{})
	go func() {
		// One thread, whose system call /proc shows.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		tids <- unix.Gettid()
		for atomic.LoadUint32(wa) == 0 {
			FutexWait(wa, 0, never)
		}
		close(woke)
	}()
	waitAsleepOn(t, <-tids, wa)
	atomic.StoreUint32(wb, 1)
	FutexWake(wb, 1)
	select {
	case <-woke:
	case <-time.After(hangLimit):
		t.Fatalf("the waiter was not woken in %v (its timeout is %v)", hangLimit, never)
	}
	// A wait on a changed value returns at once: not after its timeout.
	done := make(chan struct{})
	go func() {
		FutexWait(wa, 0, never)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(hangLimit):
		t.Fatal("waited although the value differs")
	}
}

// waitAsleepOn waits until thread tid of this process is in the futex
// system call on addr, as /proc/self/task/TID/syscall shows it.
func waitAsleepOn(t *testing.T, tid int, addr *uint32) {
	t.Helper()
	path := fmt.Sprintf("/proc/self/task/%d/syscall", tid)
	want := uint64(uintptr(unsafe.Pointer(addr)))
	deadline := time.Now().Add(hangLimit)
	var last string
	for {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		last = strings.TrimSpace(string(b))
		// "NUMBER ARG1 ARG2 ..." while in a system call, the number in
		// decimal and the arguments in hex; "running" otherwise.
		if f := strings.Fields(last); len(f) > 1 && f[0] == strconv.Itoa(unix.SYS_FUTEX) {
			if arg, err := strconv.ParseUint(strings.TrimPrefix(f[1], "0x"), 16, 64); err == nil && arg == want {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the waiter did not go to sleep on the futex in %v: %s says %q", hangLimit, path, last)
		}
		time.Sleep(time.Millisecond)
	}
}
