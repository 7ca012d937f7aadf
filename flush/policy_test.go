package flush

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mmaplog/mmaplog/internal/fileutil"
)

func TestParse(t *testing.T) {
	for in, want := range map[string]Policy{
		"none":           None(),
		"rotate":         Rotate(),
		"write":          Write(),
		"interval=100ms": Interval(100 * time.Millisecond),
		"bytes=4MiB":     Bytes(4 << 20),
		"bytes=4096":     Bytes(4096),
		" BYTES=1k ":     Bytes(1024),
	} {
		got, err := Parse(in)
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %v, %v; want %v", in, got, err, want)
		}
		if again, err := Parse(got.String()); err != nil || again != got {
			t.Errorf("%v does not survive String/Parse: %v %v", got, again, err)
		}
	}
	for _, bad := range []string{"", "sometimes", "interval", "interval=soon", "interval=-1s", "bytes=0", "bytes=12XB", "none=1", "write=3"} {
		if p, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted as %v", bad, p)
		}
	}
}

// TestOneNamePerPolicy: a policy's constructor, its Mode's name and the
// form Parse reads are the same word; the deprecated constructors give the
// same policies.
func TestOneNamePerPolicy(t *testing.T) {
	for _, c := range []struct {
		p    Policy
		old  Policy
		name string
	}{
		{None(), NoFlush(), "none"},
		{Interval(time.Second), EveryInterval(time.Second), "interval"},
		{Bytes(10), EveryBytes(10), "bytes"},
		{Write(), EachWrite(), "write"},
		{Rotate(), AtRotation(), "rotate"},
	} {
		if c.p != c.old || c.p.Mode.String() != c.name || !strings.HasPrefix(c.p.String(), c.name) {
			t.Errorf("%v: mode %v, old constructor %v, want the name %q throughout", c.p, c.p.Mode, c.old, c.name)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "10": 10, "1KiB": 1024, "64MiB": 64 << 20, "2GiB": 2 << 30, "3 M": 3 << 20, "5b": 5} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "MiB", "-1", "1TiB", "99999999999999999999"} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) accepted", bad)
		}
	}
}

// TestRegionFlushesOnlyTheDirtyRange: Flush with wait advances the clean
// mark; flushing again below it is a no-op; an asynchronous flush does not
// claim durability.
func TestRegionFlushesOnlyTheDirtyRange(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "region")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := fileutil.Preallocate(f, 1<<20); err != nil {
		t.Fatal(err)
	}
	b, err := fileutil.Map(f, 1<<20, true)
	if err != nil {
		t.Fatal(err)
	}
	defer fileutil.Unmap(b)
	r := NewRegion(b, f, 4096)
	copy(b[5000:], "dirty")
	if err := r.Flush(6000, false); err != nil || r.Flushed() != 4096 {
		t.Fatalf("async flush: %v, flushed %d", err, r.Flushed())
	}
	if err := r.Flush(6000, true); err != nil || r.Flushed() != 6000 {
		t.Fatalf("sync flush: %v, flushed %d", err, r.Flushed())
	}
	if err := r.Flush(5000, true); err != nil || r.Flushed() != 6000 {
		t.Fatalf("flush below the mark: %v, flushed %d", err, r.Flushed())
	}
	if err := r.Flush(2<<20, true); err != nil || r.Flushed() != 1<<20 {
		t.Fatalf("flush past the end is clamped: %v, flushed %d", err, r.Flushed())
	}
	if err := r.FlushRange(100, 200); err != nil {
		t.Fatal(err)
	}
}

// TestRegionStopsAtUnpublished: a flush moves its mark only to the end of
// what was published when it began; the next flush starts there and covers
// a record that was reserved, but not yet written, during the first.
func TestRegionStopsAtUnpublished(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "region")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := fileutil.Preallocate(f, 1<<20); err != nil {
		t.Fatal(err)
	}
	b, err := fileutil.Map(f, 1<<20, true)
	if err != nil {
		t.Fatal(err)
	}
	defer fileutil.Unmap(b)
	r := NewRegion(b, f, 0)
	published := 5000 // records up to here are written; the one after is reserved
	var asked [][2]int
	r.SetPublished(func(from, to int) int {
		asked = append(asked, [2]int{from, to})
		return min(published, to)
	})
	copy(b[100:], "written")
	if err := r.Flush(12000, true); err != nil || r.Flushed() != 5000 {
		t.Fatalf("flush with a record reserved at 5000: %v, flushed %d, want 5000", err, r.Flushed())
	}
	published = 12000
	copy(b[5000:], "published late")
	if err := r.Flush(12000, true); err != nil || r.Flushed() != 12000 {
		t.Fatalf("the next flush: %v, flushed %d, want 12000", err, r.Flushed())
	}
	if len(asked) != 2 || asked[1] != [2]int{5000, 12000} {
		t.Fatalf("published asked for %v, want the second flush to start at 5000", asked)
	}
}

func TestLoop(t *testing.T) {
	// One channel per loop: the interval loop may flush several times
	// before it stops, and those calls must not be read as the next
	// loop's. Only the first call is looked at; the later ones are
	// dropped rather than sent, so that however many ticks come before
	// Stop (a busy machine may run the loop many times before this test
	// goroutine), no flush blocks and Stop cannot wait for ever.
	record := func(calls chan bool) func(bool) error {
		return func(wait bool) error {
			select {
			case calls <- wait:
			default:
			}
			return nil
		}
	}
	calls := make(chan bool, 1)
	l := StartLoop(EveryInterval(time.Millisecond), record(calls), nil)
	if wait := <-calls; !wait {
		t.Fatal("interval flushes wait (msync MS_SYNC): one that only starts the writeback leaves the data in the disk's volatile cache")
	}
	l.Stop()
	byteCalls := make(chan bool, 1)
	l = StartLoop(EveryBytes(10), record(byteCalls), nil)
	l.Notify()
	if wait := <-byteCalls; !wait {
		t.Fatal("byte-threshold flushes wait")
	}
	l.Stop()
	if StartLoop(NoFlush(), nil, nil) != nil {
		t.Fatal("a loop for a policy without one")
	}
	var nilLoop *Loop
	nilLoop.Notify()
	nilLoop.Stop()
}
