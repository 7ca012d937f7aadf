// Command mmaptail writes, reads, checks and ships mmaplog logs.
//
// Run "mmaptail help" for the commands, "mmaptail COMMAND --help" for one.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// command is one subcommand of mmaptail.
type command struct {
	name    string
	args    string // synopsis of the arguments, for the usage line
	summary string // one line for "mmaptail help"
	// run parses args (everything after the command name) and runs. A
	// *usageError (exit 2) and any other error (exit 1) print one line.
	run func(args []string, stdin io.Reader, stdout, stderr io.Writer) error
	// help writes the command's usage and flags; newFlags sets it.
	help func(w io.Writer)
}

// commands is filled by the files of this package, one per command.
var commands = map[string]*command{}

func register(c *command) { commands[c.name] = c }

// usageError is a mistake in how a command was called.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

// exitError carries an exit code without a message (the command already
// printed what it had to say), such as verify finding corruption.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run is main without the process: it returns the exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) (code int) {
	defer func() {
		// Errors are one line, never a panic trace.
		if r := recover(); r != nil {
			fmt.Fprintf(stderr, "mmaptail: internal error: %v (please report it)\n", r)
			code = 2
		}
	}()
	if len(args) == 0 {
		// Not asked for: the usage goes with the error status, to stderr.
		printHelp(stderr)
		return 2
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			c, ok := commands[args[1]]
			if !ok {
				fmt.Fprintf(stderr, "mmaptail: unknown command %q; run 'mmaptail --help'\n", args[1])
				return 2
			}
			return runCommand(c, []string{"--help"}, stdin, stdout, stderr)
		}
		printHelp(stdout)
		return 0
	case "-version", "--version", "-V":
		return runCommand(commands["version"], nil, stdin, stdout, stderr)
	}
	c, ok := commands[args[0]]
	if !ok {
		if strings.HasPrefix(args[0], "-") {
			fmt.Fprintf(stderr, "mmaptail: unknown flag %s (flags go after the command); run 'mmaptail --help'\n", args[0])
		} else {
			fmt.Fprintf(stderr, "mmaptail: unknown command %q; run 'mmaptail --help'\n", args[0])
		}
		return 2
	}
	return runCommand(c, args[1:], stdin, stdout, stderr)
}

func runCommand(c *command, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	err := c.run(args, stdin, stdout, stderr)
	var ue *usageError
	var ee *exitError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		// Asked for: the help goes to stdout, with success.
		if c.help != nil {
			c.help(stdout)
		} else {
			fmt.Fprintf(stdout, "usage: mmaptail %s %s\n", c.name, c.args)
		}
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "mmaptail %s: %s; run 'mmaptail %s --help'\n", c.name, strings.TrimRight(oneLine(ue.msg), ".;"), c.name)
		return 2
	case errors.As(err, &ee):
		return ee.code
	default:
		fmt.Fprintf(stderr, "mmaptail %s: %s\n", c.name, oneLine(err.Error()))
		return 1
	}
}

func oneLine(s string) string { return strings.ReplaceAll(strings.TrimSpace(s), "\n", "; ") }

func printHelp(w io.Writer) {
	fmt.Fprintln(w, "mmaptail: write, read, check and ship mmaplog logs")
	fmt.Fprintln(w, "\nusage: mmaptail COMMAND [flags] ARGS\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-9s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'mmaptail COMMAND --help' for a command's flags, 'mmaptail version' for the version.")
}

// newFlags returns a FlagSet for command c. Parsing prints nothing: a
// mistake comes back as one usage error (parseInterleaved), and --help as
// flag.ErrHelp, on which runCommand prints c's help (set here) to stdout.
// The stderr argument is unused and kept for the callers' sake.
func newFlags(c *command, stderr io.Writer, long string) *flag.FlagSet {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	c.help = func(w io.Writer) {
		fmt.Fprintf(w, "usage: mmaptail %s %s\n\n%s\n", c.name, c.args, strings.TrimSpace(long))
		has := false
		fs.VisitAll(func(*flag.Flag) { has = true })
		if has {
			fmt.Fprintln(w, "\nflags:")
			fs.SetOutput(w)
			fs.PrintDefaults()
			fs.SetOutput(io.Discard)
		}
	}
	return fs
}

// flagError turns the flag package's message into ours: "flag provided
// but not defined: -x" names the flag as unknown, as it was typed in args
// ("--x" stays "--x").
func flagError(err error, args []string) error {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		typed := "-" + name
		for _, a := range args {
			if n, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "="); n == name && strings.HasPrefix(a, "-") {
				typed, _, _ = strings.Cut(a, "=")
				break
			}
		}
		msg = "unknown flag " + typed
	}
	return &usageError{msg}
}

// parseInterleaved parses flags that may come before or after the positional
// arguments ("write DIR --flush write" as well as "write --flush write DIR")
// and returns the positional ones.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, flagError(err, args)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if rest[0] == "--" {
			return append(pos, rest[1:]...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}
