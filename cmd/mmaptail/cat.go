package main

import (
	"bufio"
	"fmt"
	"io"

	"github.com/mmaplog/mmaplog/tail"
)

func init() {
	register(&command{
		name:    "cat",
		args:    "DIR",
		summary: "print every record of the log in DIR, one per line, in sequence order",
		run:     runCat,
	})
}

const catHelp = `
Prints the payload of every record of the log in DIR followed by a newline,
in sequence order, rolled and compressed segments included. It reads while
a writer appends, without disturbing it. Damaged ranges are skipped where the
next valid record can be proved, each reported on standard error with file
and offset; the exit status is then 1.`

func runCat(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags(commands["cat"], stderr, catHelp)
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want exactly one DIR, got %d arguments", len(pos))
	}
	r, err := tail.Open(pos[0], &tail.Options{OnDamage: func(d tail.Damage) {
		fmt.Fprintf(stderr, "mmaptail cat: damage: %s\n", oneLine(d.String()))
	}})
	if err != nil {
		return err
	}
	defer r.Close()
	bw := bufio.NewWriterSize(stdout, 64<<10)
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
	if len(r.Damage()) > 0 {
		return &exitError{code: 1}
	}
	return nil
}
