package output_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mmaplog/mmaplog/internal/peers"
	"github.com/mmaplog/mmaplog/output"
)

// TestLastErrorIsTheError: an output's last error is the error itself, not
// its text: a caller can tell what failed (here a host that refuses
// connections) with errors.Is, from the output's and the host's stats.
func TestLastErrorIsTheError(t *testing.T) {
	dead := peers.FreePort(t)
	out, err := output.Open("beats://"+dead, &output.Options{BackoffMin: time.Millisecond, BackoffMax: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := out.Publish(t.Context(), output.NewBatch([][]byte{[]byte(`{"n":1}`)}, nil)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for out.Stats().Errors < 2 {
		if time.Now().After(deadline) {
			t.Fatal("no failed connection in a minute")
		}
		time.Sleep(time.Millisecond)
	}
	st := out.Stats()
	if !errors.Is(st.LastError, unix.ECONNREFUSED) || !errors.Is(st.Hosts[0].LastError, unix.ECONNREFUSED) {
		t.Errorf("last error %v (host: %v): want one wrapping ECONNREFUSED", st.LastError, st.Hosts[0].LastError)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	if err := out.Close(ctx); err == nil {
		t.Error("closed with a batch unacknowledged, and no error")
	}
}
