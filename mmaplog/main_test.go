package mmaplog_test

import (
	"os"
	"testing"

	"github.com/mmaplog/mmaplog/internal/testutil"
)

// TestMain checks that no test leaves a goroutine behind (every Writer's
// Close stops its preparer, finisher and flush loop), and doubles as the
// entry point of the child processes that the crash tests start and kill.
func TestMain(m *testing.M) {
	if child := os.Getenv(childEnv); child != "" {
		runChild(child)
		return
	}
	testutil.VerifyTestMain(m)
}
