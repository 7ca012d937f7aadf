package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/mmaplog/mmaplog/flush"
	"github.com/mmaplog/mmaplog/mmaplog"
)

func init() {
	register(&command{
		name:    "write",
		args:    "[--segment-size SIZE] [--flush POLICY] [--max-backups N] [--max-total-size SIZE] [--compress] [--keep-unshipped] DIR",
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
bytes=SIZE; see the README's "Flush policies" for what each guarantees.

Retention: --max-backups rolled segments are kept (-1: all), the whole log
stays within --max-total-size (0: no such bound), and --compress compresses
rolled segments. With --keep-unshipped (it needs --max-total-size), a
rolled segment holding records that a cursor under DIR/cursors has not
passed (a shipper's, or the registration of one kept elsewhere) is kept
past --max-backups; only --max-total-size removes it, and each such
removal is printed on standard error with the records and the cursors
that still needed them (it does not change the exit status).`

func runWrite(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags(commands["write"], stderr, writeHelp)
	segSize := fs.String("segment-size", "64MiB", "size of each segment file")
	policy := fs.String("flush", "none", "flush policy")
	backups := fs.Int("max-backups", mmaplog.DefaultMaxBackups, "rolled segments kept (-1: all)")
	totalSize := fs.String("max-total-size", "0", "bound on all segment files of the log (0: none)")
	compress := fs.Bool("compress", false, "zstd-compress rolled segments")
	keep := fs.Bool("keep-unshipped", false, "keep rolled segments a registered cursor has not passed, within --max-total-size")
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
	if *backups == 0 || *backups < -1 {
		return usagef("--max-backups %d: want a count of at least 1, or -1 to keep every segment", *backups)
	}
	total, err := flush.ParseSize(*totalSize)
	if err != nil {
		return usagef("--max-total-size: %v", err)
	}
	if *keep && total == 0 {
		return usagef("--keep-unshipped needs --max-total-size: the most disk the log may take while a shipper lags")
	}
	var mu sync.Mutex
	onError := func(err error) {
		mu.Lock()
		fmt.Fprintf(stderr, "mmaptail write: %s\n", oneLine(err.Error()))
		mu.Unlock()
	}
	w, err := mmaplog.Open(pos[0], &mmaplog.Options{SegmentSize: size, Flush: p, MaxBackups: *backups, MaxTotalSize: total,
		Compress: *compress, KeepUnshipped: *keep, OnError: onError})
	if err != nil {
		return err
	}
	for _, r := range w.Recovery() {
		fmt.Fprintf(stderr, "mmaptail write: recovered: %s\n", r)
	}
	werr := copyLines(w, stdin)
	if err := reported(w.Close()); werr == nil {
		werr = err
	}
	return werr
}

// reported drops from err (Close's) the background errors that OnError
// printed already and that do not make writing fail: records removed
// unshipped at the --max-total-size bound, an ignored cursor. Every
// line was written; the operator was told as it happened.
func reported(err error) error {
	if err == nil {
		return nil
	}
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	var keep []error
	for _, e := range errs {
		if !errors.Is(e, mmaplog.ErrUnshippedRemoved) && !errors.Is(e, mmaplog.ErrCursorIgnored) {
			keep = append(keep, e)
		}
	}
	return errors.Join(keep...)
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
