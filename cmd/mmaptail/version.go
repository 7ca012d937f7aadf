package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
)

func init() {
	register(&command{
		name:    "version",
		args:    "",
		summary: "print the version of mmaptail: module version, VCS revision, Go version",
		run:     runVersion,
	})
}

const versionHelp = `
Prints the module version of mmaptail and the version control revision it
was built from (both from the build information Go embeds in the binary),
and the Go version that built it. "mmaptail --version" does the same.`

func runVersion(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags(commands["version"], stderr, versionHelp)
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("takes no arguments, got %q", strings.Join(pos, " "))
	}
	fmt.Fprintln(stdout, versionLine())
	return nil
}

// versionLine is "mmaptail VERSION (revision REV[, modified], TIME) GO
// OS/ARCH", with what the build information holds: "go install
// ...@v1.2.3" records the module version; a build in a git checkout
// records the revision.
func versionLine() string {
	version, rev, when, modified := "(unknown)", "", "", false
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				when = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "mmaptail %s", version)
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		fmt.Fprintf(&b, " (revision %s", rev)
		if modified {
			b.WriteString(", modified")
		}
		if when != "" {
			fmt.Fprintf(&b, ", %s", when)
		}
		b.WriteString(")")
	}
	fmt.Fprintf(&b, " %s %s/%s", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return b.String()
}
