package rotate_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/mmaplog/mmaplog/rotate"
)

// Take a rolled segment file for reuse, unless a live reader is in it.
func ExampleReclaim() {
	dir, _ := os.MkdirTemp("", "mmaplog-example-")
	defer os.RemoveAll(dir)
	old := filepath.Join(dir, rotate.SegmentName(1))
	os.WriteFile(old, make([]byte, 4096), 0o600)

	fi, err := rotate.Lookup(dir, 1)
	if err != nil {
		panic(err)
	}
	next := filepath.Join(dir, rotate.SegmentName(9)+".tmp")
	f, err := rotate.Reclaim(fi, next)
	switch {
	case errors.Is(err, rotate.ErrInUse):
		fmt.Println("a reader is in it: removed instead")
	case err != nil:
		panic(err)
	default:
		// Clear it, rename it to its new segment's name, then let go.
		f.Truncate(0)
		f.Close()
		fmt.Println("reused")
	}
	_, err = os.Stat(old)
	fmt.Println("still at its old name:", err == nil)
	// Output:
	// reused
	// still at its old name: false
}
