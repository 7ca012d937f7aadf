package ship

import (
	"context"
	"testing"
	"time"
)

// TestBudgetLargerThanWhole: an acquisition larger than the whole budget
// (one event larger than Config.BufferBytes) waits until all of it is
// free, then takes it, instead of waiting for ever.
func TestBudgetLargerThanWhole(t *testing.T) {
	b := newBudget(100)
	ctx := context.Background()
	if err := b.acquire(ctx, 60); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- b.acquire(ctx, 250) }()
	// It waits while 60 bytes are taken...
	for {
		b.mu.Lock()
		n := len(b.waiters)
		b.mu.Unlock()
		if n == 1 {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("took 250 bytes of a budget of 100 with 60 taken: %v", err)
		default:
		}
		time.Sleep(time.Millisecond)
	}
	// ...and gets them once they are back.
	b.release(60)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("an acquisition larger than the budget waits for ever")
	}
	if b.tryAcquire(1) {
		t.Fatal("took a byte while the large event holds more than the budget")
	}
	b.release(250)
	if b.avail != 100 || !b.tryAcquire(100) {
		t.Fatalf("budget %d after everything was released, want 100", b.avail)
	}
}
