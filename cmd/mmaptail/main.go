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
	// *usageError prints the command's usage; any other error prints one line.
	run func(args []string, stdin io.Reader, stdout, stderr io.Writer) error
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
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
		if len(args) > 1 {
			if c, ok := commands[args[1]]; ok {
				return runCommand(c, []string{"--help"}, stdin, stdout, stderr)
			}
		}
		printHelp(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "mmaptail: unknown command %q; run 'mmaptail help' for the list\n", args[0])
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
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "mmaptail %s: %s\nusage: mmaptail %s %s (see mmaptail %s --help)\n", c.name, ue.msg, c.name, c.args, c.name)
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
	fmt.Fprintln(w, "\nRun 'mmaptail COMMAND --help' for a command's flags.")
}

// newFlags returns a FlagSet for command c whose usage text goes to stderr.
func newFlags(c *command, stderr io.Writer, long string) *flag.FlagSet {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: mmaptail %s %s\n\n%s\n", c.name, c.args, strings.TrimSpace(long))
		has := false
		fs.VisitAll(func(*flag.Flag) { has = true })
		if has {
			fmt.Fprintln(stderr, "\nflags:")
			fs.PrintDefaults()
		}
	}
	return fs
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
			return nil, &usageError{err.Error()}
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
