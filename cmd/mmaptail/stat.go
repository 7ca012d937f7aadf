package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mmaplog/mmaplog/internal/cursorfile"
	"github.com/mmaplog/mmaplog/internal/fileutil"
	"github.com/mmaplog/mmaplog/rotate"
	"github.com/mmaplog/mmaplog/ship"
	"github.com/mmaplog/mmaplog/tail"
)

func init() {
	register(&command{
		name:    "stat",
		args:    "[-w] DIR",
		summary: "show the segments, disk use, newest record and each cursor's lag of the log in DIR",
		run:     runStat,
	})
}

const statHelp = `
Shows the state of the log in DIR: its segments, the disk they use, the
oldest and the newest record, whether a writer holds the log, and for each
cursor under DIR/cursors (one per shipper) how far behind it is in records,
bytes and seconds, and how many records it counted lost (damaged, or
removed by retention before it read them), and which rolled segments hold
records it has not passed: a writer with --keep-unshipped (KeepUnshipped)
keeps those until its --max-total-size. A cursor named NAME@HASH is the
registration of a shipper's cursor kept elsewhere (--cursor-dir), which
it names; deleting a cursor file unregisters its consumer (stop the
shipper first, or it registers again). With -w it refreshes every
second until interrupted: on a terminal it redraws the screen, into a pipe
or a file it prints one block per refresh, each after a "--- TIME" line.`

func runStat(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags(commands["stat"], stderr, statHelp)
	watch := fs.Bool("w", false, "refresh every second until interrupted")
	interval := fs.Duration("interval", time.Second, "refresh interval with -w")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want exactly one DIR, got %d arguments", len(pos))
	}
	if *interval <= 0 {
		return usagef("--interval must be positive, got %v", *interval)
	}
	if !*watch {
		return printStat(stdout, pos[0])
	}
	tty := isTerminal(stdout)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, unix.SIGTERM)
	defer stop()
	for {
		var b strings.Builder
		if err := printStat(&b, pos[0]); err != nil {
			return err
		}
		if tty {
			// Home the cursor, clear the screen, print.
			fmt.Fprintf(stdout, "\x1b[H\x1b[2J%s", b.String())
		} else {
			// Into a pipe or a file: one block per refresh, no escapes.
			fmt.Fprintf(stdout, "--- %s\n%s", time.Now().Format(time.RFC3339), b.String())
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(*interval):
		}
	}
}

func printStat(w io.Writer, dir string) error {
	l, err := rotate.List(dir)
	if err != nil {
		return err
	}
	ext, err := tail.End(dir)
	if err != nil {
		return err
	}
	now := time.Now()
	fmt.Fprintf(w, "log %s", dir)
	if id, ok := tail.LogID(dir); ok {
		fmt.Fprintf(w, " (id %s)", hex.EncodeToString(id[:]))
	}
	fmt.Fprintln(w)
	if live, pid, _ := fileutil.IsLocked(filepath.Join(dir, rotate.LockName)); live {
		fmt.Fprintf(w, "writer:   running (pid %d)\n", pid)
	} else {
		fmt.Fprintln(w, "writer:   none")
	}
	fmt.Fprintf(w, "disk use: %s in %d segment file(s)\n", human(l.DiskUsage()), len(l.Segments)+len(l.Duplicates))
	for _, s := range l.Segments {
		state := "rolled"
		switch {
		case s.Compressed:
			state = "rolled, zstd"
		case s.Num == ext.Segment:
			state = "active"
		case s.Num > ext.Segment:
			state = "prepared"
		}
		fmt.Fprintf(w, "  %s  %-12s %s\n", filepath.Base(s.Path), state, human(s.Size))
	}
	if ext.NextSeq <= 1 {
		fmt.Fprintln(w, "records:  none yet")
	} else {
		fmt.Fprintf(w, "records:  %d to %d (%d); newest written %s\n", ext.FirstSeq, ext.NextSeq-1, ext.NextSeq-ext.FirstSeq, ago(now, ext.LastTime))
	}
	cs, err := cursorfile.List(dir)
	if err != nil {
		return err
	}
	if len(cs) == 0 {
		fmt.Fprintln(w, "cursors:  none")
		return nil
	}
	firsts := firstSeqs(l)
	fmt.Fprintln(w, "cursors:")
	for _, c := range cs {
		if c.Err != nil {
			fmt.Fprintf(w, "  %-24s unreadable: %s\n", c.Name, oneLine(c.Err.Error()))
			continue
		}
		cur := tail.Cursor{LogID: c.Cursor.LogID, NextSeq: c.Cursor.NextSeq, Segment: c.Cursor.Segment, Offset: c.Cursor.Offset,
			Time: c.Cursor.Time, Lost: c.Cursor.Lost, Saved: c.Cursor.Saved}
		if id, ok := tail.LogID(dir); ok && id != cur.LogID {
			fmt.Fprintf(w, "  %-24s belongs to another log (id %s)\n", c.Name, hex.EncodeToString(cur.LogID[:]))
			continue
		}
		if st := ship.Locate(cur.NextSeq, ext); st.Position == ship.BeyondEnd {
			// Nothing is shipped from this cursor until the log grows
			// past it: say so rather than show a lag of 0.
			fmt.Fprintf(w, "  %-24s next %d  %s  saved %s\n", c.Name, cur.NextSeq, st, ago(now, cur.Saved))
			continue
		}
		var recs uint64
		if ext.NextSeq > cur.NextSeq {
			recs = ext.NextSeq - cur.NextSeq
		}
		bytes := lagBytes(ext, cur)
		secs := 0.0
		if recs > 0 && cur.Time > 0 {
			secs = float64(ext.LastTime-cur.Time) / 1e9
		}
		fmt.Fprintf(w, "  %-24s next %d  lag %d record(s), %s, %.1f s  lost %d  saved %s\n",
			c.Name, cur.NextSeq, recs, human(bytes), max(secs, 0), cur.Lost, ago(now, cur.Saved))
		if n, size, from, to := needed(l, firsts, ext.Segment, cur.NextSeq); n > 0 {
			fmt.Fprintf(w, "  %-24s needs rolled segment(s) %d to %d (%d, %s)\n", "", from, to, n, human(size))
		}
		if c.Cursor.CursorFile != "" {
			fmt.Fprintf(w, "  %-24s registers %s%s\n", "", c.Cursor.CursorFile, missing(c.Cursor.CursorFile))
		}
	}
	return nil
}

// firstSeqs reads the first sequence number of each listed segment (those
// whose header can be read).
func firstSeqs(l rotate.Listing) map[uint64]uint64 {
	m := map[uint64]uint64{}
	for _, s := range l.Segments {
		if h, err := rotate.PeekHeader(s); err == nil {
			m[s.Num] = h.FirstSeq
		}
	}
	return m
}

// needed returns the rolled segments (numbered below active) holding
// records numbered next or later: those that a writer with KeepUnshipped
// keeps for a cursor at next. It counts as retention does: a segment
// holds such records if the next segment starts after next (or if that
// cannot be read), and so does every later one.
func needed(l rotate.Listing, firsts map[uint64]uint64, active, next uint64) (n int, size int64, from, to uint64) {
	holding := false
	for i, s := range l.Segments {
		if s.Num >= active || i+1 >= len(l.Segments) {
			break
		}
		if !holding {
			nf, ok := firsts[l.Segments[i+1].Num]
			f, ok2 := firsts[s.Num]
			holding = !ok || !ok2 || nf > next && nf > f
			if holding {
				from = s.Num
			}
		}
		if holding {
			n++
			size += s.Size
			to = s.Num
		}
	}
	return n, size, from, to
}

// missing says when the cursor a registration stands for is not there.
func missing(path string) string {
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		return " (missing: delete this registration if that shipper is gone)"
	}
	return ""
}

// lagBytes is about how many bytes of segments lie between the cursor and
// the end of the log (rolled segments counted whole).
func lagBytes(e tail.Extent, c tail.Cursor) int64 {
	if c.Segment == 0 || e.Segment == 0 {
		return 0
	}
	var n int64
	for seg := c.Segment; seg <= e.Segment; seg++ {
		n += e.Sizes[seg]
	}
	n -= c.Offset
	return max(n, 0)
}

func human(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func ago(now time.Time, ns int64) string {
	if ns == 0 {
		return "never"
	}
	d := now.Sub(time.Unix(0, ns))
	if d < 0 {
		d = 0
	}
	return d.Round(time.Millisecond).String() + " ago"
}
