//go:build !linux

package tail

import "os"

func adviseRandom(b []byte)       {}
func adviseNormal(b []byte)       {}
func adviseRandomFile(f *os.File) {}
