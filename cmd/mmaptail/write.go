package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"github.com/mmaplog/mmaplog/flush"
	"github.com/mmaplog/mmaplog/mmaplog"
)

func init() {
	register(&command{
		name:    "write",
		args:    "[--segment-size SIZE] [--flush POLICY] DIR",
		summary: "append each line of standard input to the log in DIR as one record",
		run:     runWrite,
	})
}

const writeHelp = `
Appends each line of standard input, without its newline, as one record to
the log in DIR, creating DIR if needed. Another writer holding the log makes
it fail with the holder's pid.

SIZE is a number of bytes, or a number with a KiB, MiB or GiB suffix.
POLICY is none, rotate, write, interval=DURATION (such as interval=100ms) or
bytes=SIZE; see the README's "Flush policies" for what each guarantees.`

func runWrite(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags(commands["write"], stderr, writeHelp)
	segSize := fs.String("segment-size", "64MiB", "size of each segment file")
	policy := fs.String("flush", "none", "flush policy")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want exactly one DIR, got %d arguments", len(pos))
	}
	size, err := flush.ParseSize(*segSize)
	if err != nil {
		return usagef("--segment-size: %v", err)
	}
	p, err := flush.Parse(*policy)
	if err != nil {
		return usagef("--flush: %v", err)
	}
	w, err := mmaplog.Open(pos[0], &mmaplog.Options{SegmentSize: size, Flush: p})
	if err != nil {
		return err
	}
	for _, r := range w.Recovery() {
		fmt.Fprintf(stderr, "mmaptail write: recovered: %s\n", r)
	}
	werr := copyLines(w, stdin)
	if err := w.Close(); werr == nil {
		werr = err
	}
	return werr
}

// copyLines appends each line of r to w, without its newline.
func copyLines(w *mmaplog.Writer, r io.Reader) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var long []byte
	line := 0
	for {
		chunk, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long, chunk...)
			continue
		}
		rec := chunk
		if long != nil {
			rec = append(long, chunk...)
		}
		if len(rec) > 0 {
			line++
			if rec[len(rec)-1] == '\n' {
				rec = rec[:len(rec)-1]
			}
			if _, aerr := w.Append(mmaplog.LevelNone, rec); aerr != nil {
				return fmt.Errorf("line %d: %w", line, aerr)
			}
		}
		long = long[:0]
		if long != nil && cap(long) > 1<<20 {
			long = nil
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading standard input: %w", err)
		}
	}
}
