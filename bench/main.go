package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"strings"
)

func main() {
	if code, ok := followWriterMain(); ok {
		os.Exit(code) // this process is the writer of a follow case
	}
	quietDiode()
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: go run . [flags]     (in the bench directory of mmaplog)

Writes the same record streams into mmaplog and into the writers Go
programs log to otherwise (os.File, bufio.Writer, lumberjack, zerolog's
diode, phuslu/log), plus a plain memory copy, side by side in one run, and
prints a markdown table per group with ratios against mmaplog.

A full run takes about 35 minutes on two cores; -quick takes under a
minute. Flags:
`

func run(args []string, stdout, stderr io.Writer) (code int) {
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(stderr, "bench: internal error: %v (please report it)\n", r)
			code = 2
		}
	}()
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	quick := fs.Bool("quick", false, "smoke test: fewer groups, short passes, under a minute")
	jsonPath := fs.String("json", "", "write every figure as JSON to `FILE`")
	plotDir := fs.String("plot", "", "write PNG charts into `DIR`")
	reps := fs.Int("reps", 0, "repetitions of each case, in alternating order (default 3, quick 2)")
	dur := fs.Duration("duration", 0, "length of each measured pass (default 1s, quick 150ms)")
	dir := fs.String("dir", "", "directory for the log files (default $TMPDIR); its filesystem is reported")
	sinks := fs.String("sinks", "", "comma-separated sink or case IDs, or prefixes (\"mmaplog\", \"ship\"), to run (default all; see -list)")
	scenarios := fs.String("scenarios", "", "comma-separated scenarios to run (default all; see -list)")
	list := fs.Bool("list", false, "list the sinks and scenarios and exit")
	from := fs.String("from", "", "run nothing: print the tables (and -plot the charts) of a report saved with -json to `FILE`")
	quiet := fs.Bool("q", false, "no progress line")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "bench: unexpected argument %q; run with -help for the flags\n", fs.Arg(0))
		return 2
	}
	if *list {
		printList(stdout)
		return 0
	}
	cfg := DefaultConfig(*quick)
	if *reps > 0 {
		cfg.Reps = *reps
	}
	if *dur > 0 {
		cfg.Duration = *dur
		cfg.Warmup = *dur / 10
	}
	if *dir != "" {
		cfg.Dir = *dir
	}
	cfg.Sinks = splitList(*sinks)
	cfg.Scenarios = splitList(*scenarios)
	if !*quiet {
		cfg.Progress = stderr
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var rep *Report
	var err error
	if *from != "" {
		rep, err = LoadReport(*from)
	} else {
		rep, err = Run(ctx, cfg)
	}
	if rep == nil {
		fmt.Fprintf(stderr, "%v\n", err)
		return 1
	}
	if err != nil && ctx.Err() != nil {
		fmt.Fprintln(stderr, "bench: interrupted")
		return 1
	}
	rep.WriteMarkdown(stdout)
	if *jsonPath != "" {
		if jerr := rep.WriteJSON(*jsonPath); jerr != nil {
			fmt.Fprintln(stderr, jerr)
			return 1
		}
	}
	if *plotDir != "" {
		files, perr := rep.WritePlots(*plotDir)
		if perr != nil {
			fmt.Fprintln(stderr, perr)
			return 1
		}
		fmt.Fprintf(stderr, "charts: %s\n", strings.Join(files, ", "))
	}
	if err != nil {
		// A case failed: its row says why; the run says so too.
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

// quietDiode silences the standard logger, which zerolog's diode (through
// go-diodes) writes "Diode set collision" to whenever writers collide: the
// table reports the records it dropped instead. Nothing else in the harness
// uses the standard logger.
func quietDiode() { log.SetOutput(io.Discard) }

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func printList(w io.Writer) {
	fmt.Fprintln(w, "sinks:")
	for _, s := range sinkRegistry {
		fmt.Fprintf(w, "  %-18s %s\n", s.ID, s.Note)
	}
	fmt.Fprintln(w, "scenarios:")
	for _, s := range scenarioRegistry {
		fmt.Fprintf(w, "  %-18s %s\n", s.Name, s.Title)
		for _, g := range s.Groups(false) {
			fmt.Fprintf(w, "  %-18s   %s (%d cases)\n", "", g.Title, len(g.Cases))
			for _, c := range g.Cases {
				if sinkByID(c.ID) == nil { // a case of its own: -sinks selects it by ID
					fmt.Fprintf(w, "  %-18s     %-22s %s\n", "", c.ID, c.Name)
				}
			}
		}
	}
}
