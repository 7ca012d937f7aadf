package mmaplog_test

import (
	"errors"
	"testing"
	"time"

	"github.com/mmaplog/mmaplog/mmaplog"
	"github.com/mmaplog/mmaplog/rotate"
)

func errorsIs(err, target error) bool     { return errors.Is(err, target) }
func errorsAs(err error, target any) bool { return errors.As(err, target) }

// hangLimit bounds the waits for an event of these tests: only a hang takes
// this long, however busy the machine.
const hangLimit = time.Minute

// waitUntil polls cond until it holds; the limit only catches a hang.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(hangLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting after %v: %s", hangLimit, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitNextPrepared waits until the segment after w's active one is prepared
// (in place under its name) in dir.
func waitNextPrepared(t *testing.T, w *mmaplog.Writer, dir string) {
	t.Helper()
	waitUntil(t, "the next segment prepared", func() bool {
		l, err := rotate.List(dir)
		if err != nil {
			t.Fatal(err)
		}
		next := w.Stats().Segment + 1
		for _, s := range l.Segments {
			if s.Num == next {
				return true
			}
		}
		return false
	})
}
