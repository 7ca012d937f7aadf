package main

import (
	"bufio"
	"bytes"
	"os"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// Machine describes where a run took place, for the README and the JSON.
type Machine struct {
	CPU        string `json:"cpu"`
	Cores      int    `json:"cores"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	MemBytes   int64  `json:"mem_bytes"`
	OS         string `json:"os"`
	Kernel     string `json:"kernel"`
	Filesystem string `json:"filesystem"`
	Dir        string `json:"dir"`
	Go         string `json:"go"`
	// Writeback names the kernel's dirty page limits, the thresholds at
	// which writers are throttled ("vm.dirty_background_ratio=10
	// vm.dirty_ratio=20"), "" where unknown.
	Writeback  string `json:"writeback,omitempty"`
	LoadAvg    string `json:"loadavg_at_start"`
	LoadAvgEnd string `json:"loadavg_at_end"`
}

func describeMachine(dir string) Machine {
	m := Machine{
		CPU:        "unknown",
		Cores:      runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		OS:         runtime.GOOS + "/" + runtime.GOARCH,
		Filesystem: filesystemType(dir),
		Dir:        dir,
		Go:         runtime.Version(),
	}
	if v := procField("/proc/cpuinfo", "model name"); v != "" {
		m.CPU = v
	}
	if v := procField("/proc/meminfo", "MemTotal"); v != "" {
		var kb int64
		for _, c := range strings.TrimSuffix(v, " kB") {
			if c >= '0' && c <= '9' {
				kb = kb*10 + int64(c-'0')
			}
		}
		m.MemBytes = kb << 10
	}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.Kernel = unix.ByteSliceToString(u.Sysname[:]) + " " + unix.ByteSliceToString(u.Release[:])
	}
	m.Writeback = writebackLimits()
	m.LoadAvg = loadAvg()
	return m
}

// loadAvg returns the 1, 5 and 15 minute load averages, or "": other work
// on the machine during a run shows there.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	if f := strings.Fields(string(b)); len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return ""
}

// procField returns the value of the first "key : value" line of a /proc
// file, or "".
func procField(path, key string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// writebackLimits returns the kernel's dirty page settings that are set
// (a ratio of available memory, or bytes where those are set instead).
func writebackLimits() string {
	var out []string
	for _, k := range []string{"dirty_background_ratio", "dirty_background_bytes", "dirty_ratio", "dirty_bytes"} {
		b, err := os.ReadFile("/proc/sys/vm/" + k)
		if v := strings.TrimSpace(string(b)); err == nil && v != "0" && v != "" {
			out = append(out, "vm."+k+"="+v)
		}
	}
	return strings.Join(out, " ")
}
