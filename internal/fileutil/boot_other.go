//go:build unix && !linux

package fileutil

// BootID returns "" where the boot cannot be told apart: a lock holder's
// boot is then unknown.
func BootID() string { return "" }
