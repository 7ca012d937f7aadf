package main

import (
	"encoding/hex"
	"fmt"
	"io"
	"time"

	"github.com/mmaplog/mmaplog/tail"
)

func init() {
	register(&command{
		name:    "verify",
		args:    "DIR",
		summary: "check every segment of the log in DIR and report; exit 1 on corruption",
		run:     runVerify,
	})
}

const verifyHelp = `
Checks every segment of the log in DIR (headers, every record's length,
flags and CRC-32C, sequence numbers within and across segments) and prints a
report: one line per segment, then each finding with file and offset. The
exit status is 0 when the log is clean and 1 when corruption was found.

It reads the log as cat does, with the same rules, so the two count the
same records lost. It may run while the writer appends, compresses and
removes segments: what changes under it is followed or noted, not reported
as corruption. Notes do not fail it: foreign files, a segment prepared but
unused, segments retention removed while it read, ranges an earlier
recovery repaired, and the writes a crashed writer left unfinished (their
Write never returned, so no record is lost; the next writer repairs them).`

func runVerify(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags(commands["verify"], stderr, verifyHelp)
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want exactly one DIR, got %d arguments", len(pos))
	}
	start := time.Now()
	rep, err := tail.Verify(pos[0])
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "log %s", rep.Dir)
	for _, s := range rep.Segments {
		if s.Started && !s.Damaged {
			fmt.Fprintf(stdout, " (id %s)", hex.EncodeToString(s.LogID[:]))
			break
		}
	}
	fmt.Fprintln(stdout)
	for _, s := range rep.Segments {
		state := "active"
		switch {
		case s.Damaged:
			state = "damaged"
		case !s.Started:
			state = "unused"
		case s.Compressed:
			state = "rolled, zstd"
		case s.Full:
			state = "rolled"
		}
		fmt.Fprintf(stdout, "  %s  %-12s records %d  seq %d..%d  %d bytes on disk\n", s.Path, state, s.Records, s.FirstSeq, max(s.NextSeq, 1)-1, s.DiskBytes)
	}
	for _, n := range rep.Notes {
		fmt.Fprintf(stdout, "note: %s\n", oneLine(n.String()))
	}
	for _, f := range rep.Findings {
		fmt.Fprintf(stdout, "CORRUPT: %s\n", oneLine(f.String()))
	}
	if rep.Clean() {
		fmt.Fprintf(stdout, "clean: %d segment(s), %d record(s), checked in %v\n", len(rep.Segments), rep.Records, time.Since(start).Round(time.Millisecond))
		return nil
	}
	fmt.Fprintf(stdout, "%d finding(s) in %d segment(s), %d valid record(s)\n", len(rep.Findings), len(rep.Segments), rep.Records)
	return &exitError{code: 1}
}
