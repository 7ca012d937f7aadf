package region

import (
	"fmt"
	"strconv"
	"strings"
)

// Kind is the shared-memory interface behind a region.
type Kind int

// The backends.
const (
	// File is a regular file mapped with MAP_SHARED: it survives reboots
	// and is written back to disk by the kernel ("file:PATH").
	File Kind = iota + 1
	// Shm is a POSIX shared-memory object, a file in the tmpfs at
	// /dev/shm: gone at reboot, never written to disk ("shm:NAME").
	Shm
	// Sysv is a System V shared-memory segment named by a numeric key
	// ("sysv:KEY", decimal or 0x hexadecimal).
	Sysv
	// Anon is anonymous shared memory, visible to this process only
	// ("anon:"): for in-process use and tests.
	Anon
)

func (k Kind) String() string {
	switch k {
	case File:
		return "file"
	case Shm:
		return "shm"
	case Sysv:
		return "sysv"
	case Anon:
		return "anon"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Addr names a region: its backend and where it lives.
type Addr struct {
	Kind Kind
	Path string // File: the file's path
	Name string // Shm: the object's name, without a leading '/'; Anon: an optional label
	Key  int    // Sysv: the segment's key (never 0, which is IPC_PRIVATE)
}

// String returns the address in the URL form Parse accepts.
func (a Addr) String() string {
	switch a.Kind {
	case File:
		return "file:" + a.Path
	case Shm:
		return "shm:" + a.Name
	case Sysv:
		return fmt.Sprintf("sysv:%#x", a.Key)
	case Anon:
		return "anon:" + a.Name
	}
	return "invalid region address"
}

// Parse parses a region URL: "file:PATH" (also "file:///abs/path"),
// "shm:NAME", "sysv:KEY" with KEY in decimal or 0x hexadecimal, or "anon:".
func Parse(url string) (Addr, error) {
	scheme, rest, ok := strings.Cut(url, ":")
	if !ok {
		return Addr{}, fmt.Errorf("region address %q: want file:PATH, shm:NAME, sysv:KEY or anon:", url)
	}
	switch scheme {
	case "file":
		if strings.HasPrefix(rest, "//") {
			rest = rest[2:] // file:///abs/path
		}
		if rest == "" {
			return Addr{}, fmt.Errorf("region address %q: the file path is empty", url)
		}
		return Addr{Kind: File, Path: rest}, nil
	case "shm":
		name := strings.TrimPrefix(rest, "/")
		if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") || len(name) > 255 {
			return Addr{}, fmt.Errorf("region address %q: a shared-memory name is 1 to 255 bytes without '/'", url)
		}
		return Addr{Kind: Shm, Name: name}, nil
	case "sysv":
		key, err := ParseKey(rest)
		if err != nil {
			return Addr{}, fmt.Errorf("region address %q: %w", url, err)
		}
		return Addr{Kind: Sysv, Key: key}, nil
	case "anon":
		return Addr{Kind: Anon, Name: rest}, nil
	}
	return Addr{}, fmt.Errorf("region address %q: unknown kind %q (want file, shm, sysv or anon)", url, scheme)
}

// ParseKey parses a SysV key: decimal, or hexadecimal with 0x. Keys are 32
// bits; 0 (IPC_PRIVATE) names no shared segment and is refused.
func ParseKey(s string) (int, error) {
	v, err := strconv.ParseInt(s, 0, 64)
	if err != nil || v < -1<<31 || v > 1<<32-1 {
		return 0, fmt.Errorf("SysV key %q: want a 32-bit number, decimal or 0x hexadecimal", s)
	}
	if v == 0 {
		return 0, fmt.Errorf("SysV key 0 is IPC_PRIVATE, which no other process can attach; choose another key")
	}
	return int(int32(uint32(v))), nil
}
