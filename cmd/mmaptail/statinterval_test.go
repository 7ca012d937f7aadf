package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// stat -w with an interval that is not positive is a usage error (exit 2,
// one line), not a loop redrawing as fast as it can. The deadline only
// catches a command that never returns.
func TestBuiltStatWatchRejectsNonPositiveInterval(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	if code, _, errs := runBuilt(t, "demo", "--dir", dir, "--events", "10", "--rate", "0"); code != 0 {
		t.Fatalf("demo: %d %s", code, errs)
	}
	bin := builtMmaptail(t)
	for _, iv := range []string{"0s", "0", "-1s"} {
		args := []string{"stat", "-w", "--interval=" + iv, dir}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		cmd := exec.CommandContext(ctx, bin, args...)
		// Whatever it prints on stdout is a refresh it should not make:
		// stop it there.
		out := &stopOnWrite{stop: cancel}
		var errb strings.Builder
		cmd.Stdout, cmd.Stderr = out, &errb
		err := cmd.Run()
		cancel()
		if out.n > 0 {
			t.Errorf("%v refreshes instead of failing: it printed %q", args, out.first)
			continue
		}
		if ctx.Err() == context.DeadlineExceeded {
			t.Errorf("%v still running after a minute", args)
			continue
		}
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		want := "mmaptail stat: --interval must be positive, got " + iv + "; run 'mmaptail stat --help'\n"
		if iv == "0" {
			want = "mmaptail stat: --interval must be positive, got 0s; run 'mmaptail stat --help'\n"
		}
		if code != 2 || out.n != 0 || errb.String() != want {
			t.Errorf("%v: exit %d, stdout %d bytes, stderr %q; want exit 2 and %q", args, code, out.n, errb.String(), want)
		}
	}
}

// stopOnWrite counts what is written to it and calls stop at the first
// write, keeping the start of it.
type stopOnWrite struct {
	stop  func()
	n     int
	first string
}

func (w *stopOnWrite) Write(p []byte) (int, error) {
	if w.n == 0 {
		w.first = string(p[:min(len(p), 80)])
		w.stop()
	}
	w.n += len(p)
	return len(p), nil
}
