//go:build linux

package fileutil

import (
	"os"
	"strings"
	"sync"
)

// BootID returns the identity of the running boot of the kernel, which
// changes at every boot: a lock holder of another boot ran before the
// machine restarted (a power loss, a kernel crash, a reboot).
var BootID = sync.OnceValue(func() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
})
