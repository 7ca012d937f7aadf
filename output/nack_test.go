package output_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/mmaplog/mmaplog/output"
)

// recordingBatch records what the output said of it.
type recordingBatch struct {
	events [][]byte
	mu     *sync.Mutex
	log    *[]string
	name   string
	err    error
}

func (b *recordingBatch) Events() [][]byte { return b.events }

func (b *recordingBatch) Ack() {
	b.mu.Lock()
	defer b.mu.Unlock()
	*b.log = append(*b.log, "ack "+b.name)
}

func (b *recordingBatch) Nack(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	*b.log = append(*b.log, "nack "+b.name)
	b.err = err
}

// TestNackOnClose: the batches Close gives up on (a receiver that takes
// them and never acknowledges) are told so, each once, in the order they
// were published, with an error wrapping ErrClosed, and never
// acknowledged; an empty batch is acknowledged at once.
func TestNackOnClose(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var conns sync.WaitGroup
	conns.Add(1)
	go func() { // takes what it is sent, acknowledges nothing
		defer conns.Done()
		c, err := l.Accept()
		if err != nil {
			return
		}
		var buf [4096]byte
		for {
			if _, err := c.Read(buf[:]); err != nil {
				c.Close()
				return
			}
		}
	}()
	out, err := output.Open("beats://"+l.Addr().String(), &output.Options{Timeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var log []string
	src := out.NewSource()
	var bs []*recordingBatch
	for _, name := range []string{"a", "b", "empty", "c"} {
		b := &recordingBatch{mu: &mu, log: &log, name: name}
		if name != "empty" {
			b.events = [][]byte{[]byte(`{"n":1}`), []byte(`{"n":2}`)}
		}
		bs = append(bs, b)
		if err := src.Publish(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	for deadline := time.Now().Add(time.Minute); out.Stats().Hosts[0].Sent < 6; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the batches were not sent in a minute: %+v", out.Stats())
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := out.Close(ctx); err == nil {
		t.Fatal("Close returned no error with batches unacknowledged")
	}
	conns.Wait()
	mu.Lock()
	defer mu.Unlock()
	if want := "[ack empty nack a nack b nack c]"; fmt.Sprint(log) != want {
		t.Fatalf("the output said %v, want %s", log, want)
	}
	for _, b := range bs {
		if b.name != "empty" && !errors.Is(b.err, output.ErrClosed) {
			t.Errorf("batch %s: Nack's error %v does not wrap ErrClosed", b.name, b.err)
		}
	}
	if p := out.Stats().Pending; p != 0 {
		t.Errorf("%d batches pending after Close told them", p)
	}
}
