package main

// Tests that run the built mmaptail binary, as a user would: what it prints
// where, and with which exit status.

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/mmaplog/mmaplog/tail"
)

var built struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// builtMmaptail builds the command once per test binary with go build (with
// the VCS stamping a user's build gets) and returns the binary's path.
func builtMmaptail(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		if built.dir, built.err = os.MkdirTemp("", "mmaptail-cli-test-"); built.err != nil {
			return
		}
		built.path = filepath.Join(built.dir, "mmaptail")
		cmd := exec.Command("go", "build", "-buildvcs=auto", "-o", built.path, ".")
		out, err := cmd.CombinedOutput()
		if err != nil {
			built.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.path
}

// removeBuilt removes what builtMmaptail built (from TestMain).
func removeBuilt() {
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
}

// runBuilt runs the built binary with args and returns its exit status and
// outputs; stdout and stderr are pipes, not terminals.
func runBuilt(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(builtMmaptail(t), args...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("mmaptail %v: %v", args, err)
	}
	return code, out.String(), errb.String()
}

func TestBuiltVersion(t *testing.T) {
	want := regexp.MustCompile(`^mmaptail \S+( \(revision [0-9a-f]{12}(, modified)?(, \S+)?\))? go\S+ \w+/\w+\n$`)
	var first string
	for _, args := range [][]string{{"version"}, {"--version"}} {
		code, out, errs := runBuilt(t, args...)
		if code != 0 || errs != "" || !want.MatchString(out) {
			t.Fatalf("%v: exit %d, stdout %q, stderr %q", args, code, out, errs)
		}
		if first == "" {
			first = out
		} else if out != first {
			t.Errorf("--version printed %q, version %q", out, first)
		}
	}
	// Built in a git checkout, the binary names the revision it was built
	// from. (The go command stamps it where .git is a directory: not in a
	// linked worktree, whose .git is a file.)
	if fi, err := os.Stat("../../.git"); err != nil || !fi.IsDir() {
		return
	}
	if head, err := exec.Command("git", "rev-parse", "HEAD").Output(); err == nil {
		if rev := strings.TrimSpace(string(head)); !strings.Contains(first, "(revision "+rev[:12]) {
			t.Errorf("built at revision %s, version says %q", rev, first)
		}
	}
}

// doubled punctuation in a message, such as "x.." or "x.;" or ": :".
var doubled = regexp.MustCompile(`[.;:,]\s*[.;:,]|\s{2,}$`)

func TestBuiltUsageErrorsAreOneLine(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"write", "--bogus", dir}, "mmaptail write: unknown flag --bogus; run 'mmaptail write --help'\n"},
		{[]string{"cat", "-x", dir}, "mmaptail cat: unknown flag -x; run 'mmaptail cat --help'\n"},
		{[]string{"stat", "--interval=3", dir}, "mmaptail stat: invalid value \"3\" for flag -interval: parse error; run 'mmaptail stat --help'\n"},
		{[]string{"verify"}, "mmaptail verify: want exactly one DIR, got 0 arguments; run 'mmaptail verify --help'\n"},
		{[]string{"frobnicate"}, "mmaptail: unknown command \"frobnicate\"; run 'mmaptail --help'\n"},
		{[]string{"--frob"}, "mmaptail: unknown flag --frob (flags go after the command); run 'mmaptail --help'\n"},
		{[]string{"help", "nosuch"}, "mmaptail: unknown command \"nosuch\"; run 'mmaptail --help'\n"},
	} {
		code, out, errs := runBuilt(t, tc.args...)
		if code != 2 || out != "" || errs != tc.want {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 and stderr %q", tc.args, code, out, errs, tc.want)
		}
		if doubled.MatchString(strings.TrimSuffix(errs, "\n")) {
			t.Errorf("%v: doubled punctuation in %q", tc.args, errs)
		}
	}
	// With no command at all: the usage, on stderr, exit 2.
	if code, out, errs := runBuilt(t); code != 2 || out != "" || !strings.Contains(errs, "usage: mmaptail COMMAND") {
		t.Errorf("no arguments: exit %d, stdout %q, stderr %q", code, out, errs)
	}
}

func TestBuiltHelpGoesToStdout(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		code, out, errs := runBuilt(t, args...)
		if code != 0 || errs != "" || !strings.Contains(out, "usage: mmaptail COMMAND") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errs)
		}
	}
	for name := range commands {
		for _, args := range [][]string{{name, "--help"}, {name, "-h"}, {"help", name}} {
			code, out, errs := runBuilt(t, args...)
			if code != 0 || errs != "" || !strings.HasPrefix(out, "usage: mmaptail "+name) {
				t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errs)
			}
		}
	}
}

// The demo into a pipe prints plain progress lines, no carriage returns,
// and is right on a directory it used before (its sequence numbers then
// start after the earlier run's).
func TestBuiltDemoReusedDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo")
	for run := 1; run <= 2; run++ {
		code, out, errs := runBuilt(t, "demo", "--dir", dir, "--events", "3000", "--rate", "0")
		if code != 0 || !strings.Contains(out, "nothing lost") || !strings.Contains(out, "3000 events received, 0 duplicate(s)") {
			t.Fatalf("run %d: exit %d\nstdout:\n%s\nstderr:\n%s", run, code, out, errs)
		}
		if strings.ContainsAny(out+errs, "\r\x1b") {
			t.Errorf("run %d: a carriage return or escape went into a pipe: %q", run, out)
		}
	}
}

// stat -w into a pipe prints one plain block per refresh.
func TestBuiltStatWatchIntoPipe(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	if code, _, errs := runBuilt(t, "demo", "--dir", dir, "--events", "100", "--rate", "0"); code != 0 {
		t.Fatalf("demo: %d %s", code, errs)
	}
	cmd := exec.Command(builtMmaptail(t), "stat", "-w", "--interval", "50ms", dir)
	pr, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	br := bufio.NewReader(pr)
	var got strings.Builder
	for blocks := 0; blocks < 3; {
		line, err := br.ReadString('\n')
		got.WriteString(line)
		if err == io.EOF {
			t.Fatalf("stat -w ended:\n%s", got.String())
		}
		if strings.HasPrefix(line, "--- ") {
			blocks++
		}
	}
	if strings.ContainsAny(got.String(), "\r\x1b") || !strings.Contains(got.String(), "records:  1 to 100 (100)") {
		t.Errorf("stat -w into a pipe:\n%q", got.String())
	}
}

// stat says when a cursor is beyond the newest record instead of showing a
// lag of 0.
func TestBuiltStatCursorBeyondEnd(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	cmd := exec.Command(builtMmaptail(t), "write", dir)
	cmd.Stdin = strings.NewReader("a\nb\nc\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("write: %v %s", err, out)
	}
	id, ok := tail.LogID(dir)
	if !ok {
		t.Fatal("no log id")
	}
	if err := (tail.Cursor{LogID: id, NextSeq: 50}).Save(tail.CursorPath(dir, "ahead")); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runBuilt(t, "stat", dir)
	if code != 0 || !strings.Contains(out, "next 50  beyond the end: the newest record is 3, shipping resumes at 50") {
		t.Fatalf("stat: exit %d\n%s\n%s", code, out, errs)
	}
}
