package rotate

import (
	"sync/atomic"
	"testing"

	"github.com/mmaplog/mmaplog/internal/testutil"
)

// TestMain checks that the preparer's goroutine is gone after Close.
func TestMain(m *testing.M) { testutil.VerifyTestMain(m) }

func atomicAdd(w *uint32) { atomic.AddUint32(w, 1) }
