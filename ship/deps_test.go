package ship_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoWriterDependency: the shipper and its outputs know nothing of the
// writer (package mmaplog): the records' format, levels included, is
// ring's and tail's.
func TestNoWriterDependency(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/mmaplog/mmaplog/ship", "github.com/mmaplog/mmaplog/output").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v: %s", err, out)
	}
	for _, p := range strings.Fields(string(out)) {
		if p == "github.com/mmaplog/mmaplog/mmaplog" {
			t.Fatal("package ship or output imports the writer package mmaplog")
		}
	}
}
