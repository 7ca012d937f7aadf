//go:build linux

package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mmaplog/mmaplog/counter"
)

// mmaptail counters on a counter map that another process truncates to
// nothing: it must not die of SIGBUS when it releases the map's lease on
// the way out, but exit 1 with errors naming the region.
func TestBuiltCountersRegionTruncated(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
	}{
		// Shipping: the next collection faults and ends the command.
		{"to stdout", []string{"--to", "stdout", "--interval", "20ms"}},
		// Serving the map to Prometheus: no collection; SIGTERM ends it.
		{"metrics", []string{"--metrics", "127.0.0.1:0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c")
			url := "file:" + path
			m, err := counter.Create(url, &counter.Shape{Rules: 8, Metrics: 4}, nil)
			if err != nil {
				t.Fatal(err)
			}
			m.Add(1, 2, 3)
			m.Close()
			cmd := exec.Command(builtMmaptail(t), append([]string{"counters", "--region", url}, tc.args...)...)
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			stderr, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			timer := time.AfterFunc(2*time.Minute, func() { cmd.Process.Kill() }) // a hang only
			defer timer.Stop()
			outs, errs := bufio.NewScanner(stdout), bufio.NewScanner(stderr)
			var errLines []string
			metrics := tc.name == "metrics"
			if metrics {
				// Started once it serves.
				for errs.Scan() && !strings.Contains(errs.Text(), "serving Prometheus metrics") {
				}
			} else if !outs.Scan() {
				// Started once it shipped the first event.
				cmd.Wait()
				t.Fatalf("no event shipped: %v", cmd.ProcessState)
			}
			if err := os.Truncate(path, 0); err != nil {
				t.Fatal(err)
			}
			if metrics {
				cmd.Process.Signal(unix.SIGTERM)
			}
			for outs.Scan() {
			}
			for errs.Scan() {
				errLines = append(errLines, errs.Text())
			}
			err = cmd.Wait()
			code := cmd.ProcessState.ExitCode()
			all := strings.Join(errLines, "\n")
			if code != 1 || strings.Contains(all, "SIGBUS") || strings.Contains(all, "goroutine ") {
				t.Fatalf("exit %d (%v), want 1; stderr:\n%.2000s", code, err, all)
			}
			last := errLines[len(errLines)-1]
			if !strings.HasPrefix(last, "mmaptail counters: ") || !strings.Contains(last, "release the lease of "+url) || !strings.Contains(last, "memory fault") {
				t.Fatalf("last line of stderr %q: want the error of releasing the lease of %s", last, url)
			}
			t.Logf("stderr:\n%s", all)
		})
	}
}
