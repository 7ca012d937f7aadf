package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/mmaplog/mmaplog/tail"
)

func init() {
	register(&command{
		name:    "cat",
		args:    "[-f] [--from begin|end|SEQ] DIR",
		summary: "print the records of the log in DIR, one per line, in sequence order; -f follows it",
		run:     runCat,
	})
}

const catHelp = `
Prints the payload of every record of the log in DIR followed by a newline,
in sequence order, rolled and compressed segments included. It reads while
a writer appends, without disturbing it. Damaged ranges are skipped where the
next valid record can be proved, each reported on standard error with file
and offset; the exit status is then 1.

With -f it follows the log like tail -f: it waits for new records, goes on
across rotations into new segments, and stops on SIGINT or SIGTERM (exit 0,
or 1 if damage was reported). --from starts at the oldest record (begin),
after the newest (end) or at a sequence number.`

func runCat(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags(commands["cat"], stderr, catHelp)
	follow := fs.Bool("f", false, "follow: wait for new records until interrupted")
	from := fs.String("from", "begin", "begin, end or a sequence number")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want exactly one DIR, got %d arguments", len(pos))
	}
	o := &tail.Options{Follow: *follow, OnDamage: func(d tail.Damage) {
		fmt.Fprintf(stderr, "mmaptail cat: damage: %s\n", oneLine(d.String()))
	}}
	switch *from {
	case "begin":
	case "end":
		o.FromEnd = true
	default:
		n, err := strconv.ParseUint(*from, 10, 64)
		if err != nil || n == 0 {
			return usagef("--from %q: want begin, end or a sequence number", *from)
		}
		o.FromSeq = n
	}
	r, err := tail.Open(pos[0], o)
	if err != nil {
		return err
	}
	defer r.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, unix.SIGTERM)
	defer stop()
	bw := bufio.NewWriterSize(stdout, 64<<10)
	for {
		for r.Next() {
			bw.Write(r.Record().Payload)
			if err := bw.WriteByte('\n'); err != nil {
				return err
			}
		}
		if err := bw.Flush(); err != nil {
			return err
		}
		if err := r.Err(); err != nil {
			return err
		}
		if !*follow || r.Wait(ctx) != nil {
			break
		}
	}
	if len(r.Damage()) > 0 {
		return &exitError{code: 1}
	}
	return nil
}
