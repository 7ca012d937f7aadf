package mmaplog_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoZapDependency: a program that imports mmaplog does not link zap;
// zap's core is in package mmapzap.
func TestNoZapDependency(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/mmaplog/mmaplog/mmaplog").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v: %s", err, out)
	}
	for _, p := range strings.Fields(string(out)) {
		if strings.HasPrefix(p, "go.uber.org/zap") {
			t.Fatalf("package mmaplog depends on %s", p)
		}
	}
}
