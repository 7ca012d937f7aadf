//go:build linux

package counter_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mmaplog/mmaplog/counter"
)

// TestMapSourceCloseAfterTruncation: a collector's counter map is truncated
// to nothing by another process. Collecting, committing and closing the
// source (which releases the lease in the map), and making a new source
// (which takes it) fault: each returns an error naming the region, and the
// process lives on. It runs in a child process,
// which a SIGBUS would kill.
func TestMapSourceCloseAfterTruncation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c")
	url := "file:" + path
	m, err := counter.Create(url, &counter.Shape{Rules: 8, Metrics: 4}, nil)
	if err != nil {
		t.Fatal(err)
	}
	m.Add(1, 1, 5)
	m.Close()
	out := startChild(t, "closetrunc", url, path).wait(t)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 5 || lines[0] != "collect before: 1 delta(s), <nil>" {
		t.Fatalf("child printed:\n%s", out)
	}
	for _, l := range lines[1:] {
		if !strings.Contains(l, url) || !strings.Contains(l, "memory fault") {
			t.Errorf("%q: want an error naming %s that says the region faulted", l, url)
		}
	}
	t.Logf("child printed:\n%s", out)
}

// closeTruncChild: URL PATH. Takes the map's lease, collects, truncates the
// file to nothing, and prints the errors of Collect, Commit, Close and of a
// new NewMapSource.
func closeTruncChild() {
	a := childArgs()
	m, err := counter.Attach(a[0], nil)
	if err != nil {
		die("%v", err)
	}
	src, err := counter.NewMapSource(m)
	if err != nil {
		die("%v", err)
	}
	b, err := src.Collect(false)
	fmt.Printf("collect before: %d delta(s), %v\n", len(b.Deltas), err)
	if err := os.Truncate(a[1], 0); err != nil {
		die("%v", err)
	}
	_, err = src.Collect(false)
	fmt.Println("collect:", err)
	fmt.Println("commit:", src.Commit())
	fmt.Println("close:", src.Close())
	// A new source on the truncated map cannot take the lease.
	if _, err := counter.NewMapSource(m); err == nil {
		die("NewMapSource on the truncated map: no error")
	} else {
		fmt.Println("new source:", err)
	}
	m.Close()
}
