package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"

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
and offset; the exit status is then 1. Writes that a crashed writer left
unfinished (their Write never returned, so no record is lost) are noted on
standard error and do not change the exit status.

With -f it follows the log like tail -f: it waits for new records, goes on
across rotations into new segments, and stops on SIGINT or SIGTERM (exit 0,
or 1 if damage was reported). A DIR that does not exist yet is waited for.
--from starts at the oldest record (begin), after the newest (end) or at a
sequence number.`

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
	start, err := tail.ParseStart(*from)
	if err != nil {
		return usagef("--from %q: want begin, end or a sequence number", *from)
	}
	dir := pos[0]
	damaged := false
	o := &tail.Options{Follow: *follow, OnDamage: func(d tail.Damage) {
		if d.Kind == tail.DamageUnfinished {
			fmt.Fprintf(stderr, "mmaptail cat: note: %s\n", oneLine(d.String()))
			return
		}
		damaged = true
		fmt.Fprintf(stderr, "mmaptail cat: damage: %s\n", oneLine(d.String()))
	}}
	start.Apply(o)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, unix.SIGTERM)
	defer stop()
	if *follow {
		if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(stderr, "mmaptail cat: %s does not exist yet: waiting for it to appear\n", dir)
		}
	}
	r, err := tail.Open(dir, o)
	if err != nil {
		return err
	}
	defer r.Close()
	bw := bufio.NewWriterSize(stdout, 64<<10)
	for {
		for r.Next() {
			// Flush before a line that does not fit, never in the middle
			// of one: each write(2) ends at a line's end (records over
			// 64 KiB aside), so that output cut short by a kill holds
			// whole lines, short of a kill inside a write(2) itself.
			p := r.Record().Payload
			if bw.Buffered() > 0 && bw.Available() < len(p)+1 {
				if err := bw.Flush(); err != nil {
					return err
				}
			}
			bw.Write(p)
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
	if damaged {
		return &exitError{code: 1}
	}
	return nil
}
