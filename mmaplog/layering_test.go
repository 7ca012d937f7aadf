package mmaplog_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestWriterKnowsNoReader: the writer reads the cursors of its consumers
// (KeepUnshipped) through the shared codec, internal/cursorfile: neither it
// nor rotate depends on the readers' package or the shipper's.
func TestWriterKnowsNoReader(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/mmaplog/mmaplog/mmaplog", "github.com/mmaplog/mmaplog/rotate").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v: %s", err, out)
	}
	for _, p := range strings.Fields(string(out)) {
		switch p {
		case "github.com/mmaplog/mmaplog/tail", "github.com/mmaplog/mmaplog/ship", "github.com/mmaplog/mmaplog/output":
			t.Fatalf("package mmaplog or rotate depends on %s", p)
		}
	}
}
