// Package testutil holds helpers shared by mmaplog's tests.
package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

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
