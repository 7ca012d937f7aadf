package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mmaplog/mmaplog/mmaplog"
	"github.com/mmaplog/mmaplog/rotate"
)

func mmaptail(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestWriteCatVerify(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	var in strings.Builder
	for i := 0; i < 5000; i++ {
		fmt.Fprintf(&in, "line %d %s\n", i, strings.Repeat("z", i%50))
	}
	in.WriteString("last line without newline")
	code, _, errs := mmaptail(t, in.String(), "write", "--segment-size", "64KiB", "--flush", "rotate", dir)
	if code != 0 {
		t.Fatalf("write: %d %s", code, errs)
	}
	code, out, errs := mmaptail(t, "", "cat", dir)
	if code != 0 || errs != "" {
		t.Fatalf("cat: %d %s", code, errs)
	}
	if out != in.String()+"\n" {
		t.Fatalf("cat printed %d bytes, want %d", len(out), len(in.String())+1)
	}
	code, out, _ = mmaptail(t, "", "verify", dir)
	if code != 0 || !strings.Contains(out, "clean:") || !strings.Contains(out, "5001 record(s)") {
		t.Fatalf("verify: %d\n%s", code, out)
	}
	// Flags after the directory work too, and a second write appends.
	if code, _, errs := mmaptail(t, "more\n", "write", dir, "--flush", "none"); code != 0 {
		t.Fatalf("write again: %s", errs)
	}
	if _, out, _ := mmaptail(t, "", "cat", dir); !strings.HasSuffix(out, "last line without newline\nmore\n") {
		t.Fatalf("append: %q", out[len(out)-40:])
	}
}

func TestVerifyFindsCorruption(t *testing.T) {
	dir := t.TempDir()
	mmaptail(t, strings.Repeat("some record\n", 20000), "write", "--segment-size", "256KiB", dir)
	l, _ := rotate.List(dir)
	p := l.Segments[1].Path
	b, _ := os.ReadFile(p)
	b[5000] ^= 0x55
	os.WriteFile(p, b, 0o600)
	code, out, _ := mmaptail(t, "", "verify", dir)
	if code != 1 || !strings.Contains(out, "CORRUPT: "+p+" at offset") {
		t.Fatalf("verify: %d\n%s", code, out)
	}
	code, out, errs := mmaptail(t, "", "cat", dir)
	if code != 1 || !strings.Contains(errs, p) || strings.Count(out, "\n") != 19999 {
		t.Fatalf("cat: %d, %d lines, stderr %s", code, strings.Count(out, "\n"), errs)
	}
}

func TestErrorsAreOneLine(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"cat", filepath.Join(dir, "missing")}, 1, "no log directory"},
		{[]string{"verify", filepath.Join(dir, "missing")}, 1, "no log directory"},
		{[]string{"write", "--segment-size", "12XB", dir}, 2, "unknown suffix"},
		{[]string{"write", "--flush", "sometimes", dir}, 2, "unknown flush policy"},
		{[]string{"write", "--segment-size", "1000", dir}, 1, "multiple of the page size"},
		{[]string{"write"}, 2, "exactly one DIR"},
		{[]string{"cat", "a", "b"}, 2, "exactly one DIR"},
		{[]string{"frobnicate"}, 2, "unknown command"},
		{[]string{"write", "--bogus", dir}, 2, "unknown flag --bogus; run 'mmaptail write --help'"},
	} {
		code, _, errs := mmaptail(t, "", tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.msg) || strings.Contains(errs, "goroutine") || strings.Contains(errs, "panic") {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, code, errs, tc.code, tc.msg)
		}
		if tc.code == 1 && strings.Count(strings.TrimSpace(errs), "\n") != 0 {
			t.Errorf("%v: error is not one line: %q", tc.args, errs)
		}
	}
	// A locked log: the second writer's error names the holder's pid.
	w, err := mmaplog.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	code, _, errs := mmaptail(t, "x\n", "write", dir)
	if code != 1 || !strings.Contains(errs, fmt.Sprintf("held by process %d", os.Getpid())) {
		t.Fatalf("write to a locked log: %d %q", code, errs)
	}
}

func TestHelpOnEveryCommand(t *testing.T) {
	for name, c := range commands {
		code, out, errs := mmaptail(t, "", name, "--help")
		if code != 0 || errs != "" || !strings.HasPrefix(out, "usage: mmaptail "+name) {
			t.Errorf("%s --help: exit %d, stdout %q, stderr %q", name, code, out, errs)
		}
		if c.summary == "" {
			t.Errorf("%s has no summary", name)
		}
	}
	code, out, _ := mmaptail(t, "", "help")
	for name := range commands {
		if !strings.Contains(out, name) {
			t.Errorf("help does not list %s", name)
		}
	}
	if code != 0 {
		t.Errorf("help: exit %d", code)
	}
}

func TestDemoRuns(t *testing.T) {
	code, out, errs := mmaptail(t, "", "demo", "--events", "20000")
	if code != 0 || !strings.Contains(out, "nothing lost") {
		t.Fatalf("demo: %d\n%s\n%s", code, out, errs)
	}
}
