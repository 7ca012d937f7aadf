package rotate

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that the preparer's goroutine is gone after Close.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
