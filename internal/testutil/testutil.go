// Package testutil holds helpers shared by mmaplog's tests.
package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// LeakLimit is how long VerifyTestMain gives goroutines on their way out
// to finish: only a goroutine that never ends takes this long.
const LeakLimit = time.Minute

// VerifyTestMain is goleak.VerifyTestMain, but a goroutine that is still
// there when the tests end is looked for again until LeakLimit has passed,
// not for goleak's own half second: on a busy machine a goroutine that was
// told to stop may not have run since. One still there then is a leak.
func VerifyTestMain(m *testing.M, opts ...goleak.Option) {
	code := m.Run()
	if code == 0 {
		if err := findLeaks(opts...); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: Errors on successful test run: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

func findLeaks(opts ...goleak.Option) error {
	deadline := time.Now().Add(LeakLimit)
	for {
		err := goleak.Find(opts...)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Tmpfs mounts a tmpfs of the given size (such as "1m") on a new temporary
// directory and unmounts it when the test ends. Where mounting is refused
// (not root, no CAP_SYS_ADMIN) the test is skipped with a message saying so;
// CI runs as root, where it is not skipped.
func Tmpfs(t testing.TB, size string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "mmaplog-tmpfs-")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput()
	if err != nil {
		os.Remove(dir)
		t.Skipf("cannot mount a tmpfs to fill (needs root): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
		os.Remove(dir)
	})
	return dir
}

// MappingsUnder returns the lines of /proc/self/maps that map a file in
// dir (deleted files included): what a closed writer or reader must not
// leave behind.
func MappingsUnder(t testing.TB, dir string) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatalf("read /proc/self/maps: %v", err)
	}
	var out []string
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real // the kernel names mapped files by their real path
	}
	prefix := filepath.Clean(dir) + "/"
	for _, line := range strings.Split(string(b), "\n") {
		if i := strings.IndexByte(line, '/'); i >= 0 && strings.HasPrefix(line[i:], prefix) {
			out = append(out, line)
		}
	}
	return out
}
