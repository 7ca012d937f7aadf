package rotate

import (
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that the preparer's goroutine is gone after Close.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func atomicAdd(w *uint32) { atomic.AddUint32(w, 1) }
