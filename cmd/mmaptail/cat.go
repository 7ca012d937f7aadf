package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/mmaplog/mmaplog/internal/jsonenc"
	"github.com/mmaplog/mmaplog/ring"
	"github.com/mmaplog/mmaplog/ship"
	"github.com/mmaplog/mmaplog/tail"
)

func init() {
	register(&command{
		name:    "cat",
		args:    "[-f] [-n N] [--since TIME] [--until TIME] [-p LEVEL] [--grep RE] [-r] [-o FORMAT] [--from begin|end|SEQ] DIR",
		summary: "print the records of the log in DIR, in sequence order; -f follows it, -n, --since, -p, --grep select like journalctl",
		run:     runCat,
	})
}

const catHelp = `
Prints the records of the log in DIR, one per line, in sequence order,
rolled and compressed segments included: by default each record's payload
(-o cat). It reads while a writer appends, without disturbing it. Damaged
ranges are skipped where the next valid record can be proved, each reported
on standard error with file and offset; the exit status is then 1. Writes
that a crashed writer left unfinished (their Write never returned, so no
record is lost) are noted on standard error and do not change the exit
status.

With -f it follows the log like tail -f: it waits for new records, goes on
across rotations into new segments, and stops on SIGINT or SIGTERM (exit 0,
or 1 if damage was reported), or at --until. A DIR that does not exist yet
is waited for. --from starts at the oldest record (begin), after the newest
(end) or at a sequence number.

Like journalctl: -n N prints the last N records (with -f: then follows),
--since and --until the records from the first stamped at or after --since
to before the first stamped after --until, -p those at a level or above
(records without a level are left out), --grep those whose payload matches a
regular expression (RE2 syntax; (?i) for any case), -r the newest first. They
combine; -n counts the records the others keep. --since finds its record
without reading the log from its start. Time is taken as non-decreasing
along the log: a step back of the clock that the search reads is noted on
standard error (see docs/READING.md).

TIME is RFC 3339 (2025-03-01T12:00:00Z, 2025-03-01T12:00:00.5+01:00),
"2025-03-01 12:00:00" or "2025-03-01 12:00" or 2025-03-01 or 12:00:00 in
local time, now, today, yesterday, tomorrow (midnight, local time), or
relative to now: -10m, -1h30m, -2d, +5m (units ns, us, ms, s, m, h, d).

-o picks the line printed for each record:
  cat    the payload (the default)
  short  local time to the microsecond, level, payload: journalctl's short-precise
  json   {"seq":N,"time":"RFC 3339, UTC","level":"warn","payload":"..."}
         (level left out for records without one; a payload that is not
         UTF-8 comes as "payload_base64" instead)
  ecs    the event exactly as 'mmaptail ship' sends it (Elastic Common
         Schema), with --host and --field as ship takes them`

func runCat(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags(commands["cat"], stderr, catHelp)
	follow := fs.Bool("f", false, "follow: wait for new records until interrupted")
	from := fs.String("from", "begin", "begin, end or a sequence number")
	var last countFlag
	fs.Var(&last, "n", "print the last `N` records (with -f: then follow)")
	since := fs.String("since", "", "start at the first record stamped at or after `TIME`")
	until := fs.String("until", "", "stop before the first record stamped after `TIME`")
	level := fs.String("p", "", "only records at `LEVEL` or above: trace, debug, info, warn, error, fatal, panic")
	grep := fs.String("grep", "", "only records whose payload matches the regular expression `RE`")
	reverse := fs.Bool("r", false, "newest first (not with -f)")
	format := fs.String("o", "cat", "output `FORMAT`: cat, short, json or ecs")
	host := fs.String("host", "", "-o ecs: host.name and agent.name of the events (default: this host's name)")
	var fields multiFlag
	fs.Var(&fields, "field", "-o ecs: extra event field `KEY=VALUE`, as ship takes it; repeatable")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want exactly one DIR, got %d arguments", len(pos))
	}
	dir := pos[0]
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	start, err := tail.ParseStart(*from)
	if err != nil {
		return usagef("--from %q: want begin, end or a sequence number", *from)
	}
	now := time.Now()
	o := &tail.Options{Follow: *follow}
	switch {
	case *reverse && *follow:
		return usagef("-r and -f cannot be combined: newest first reads what is there")
	case set["from"] && (*since != "" || last.set):
		return usagef("--from cannot be combined with --since or -n")
	case *reverse && start.IsEnd():
		return usagef("-r reads what is there: --from end does not apply")
	case last.set && last.n == 0 && *since != "":
		return usagef("-n 0 prints nothing before new records: --since does not apply")
	}
	if *since != "" {
		if o.Since, err = parseWhen(*since, now); err != nil {
			return usagef("--since %q: %v", *since, err)
		}
	}
	if *until != "" {
		if o.Until, err = parseWhen(*until, now); err != nil {
			return usagef("--until %q: %v", *until, err)
		}
	}
	if !o.Since.IsZero() && !o.Until.IsZero() && o.Until.Before(o.Since) {
		return usagef("--until %s is before --since %s", o.Until.Format(time.RFC3339Nano), o.Since.Format(time.RFC3339Nano))
	}
	if *level != "" {
		l, ok := parseLevel(*level)
		if !ok {
			return usagef("-p %q: want trace, debug, info, warn, error, fatal or panic", *level)
		}
		o.MinLevel = l
	}
	if *grep != "" {
		re, err := regexp.Compile(*grep)
		if err != nil {
			return usagef("--grep %q: %v", *grep, strings.TrimPrefix(err.Error(), "error parsing regexp: "))
		}
		o.Match = func(rec tail.Record) bool { return re.Match(rec.Payload) }
	}
	if (*host != "" || len(fields) > 0) && *format != "ecs" {
		return usagef("--host and --field shape the events of -o ecs")
	}
	line, err := lineFormat(*format, dir, *host, fields)
	if err != nil {
		return err
	}
	start.Apply(o)
	nothing := false
	switch {
	case last.set && last.n == 0 && *follow:
		o.FromEnd = true
	case last.set && last.n == 0:
		nothing = true // still open the log: a DIR that is none is an error
	case last.set:
		o.Last = last.n
	}
	damaged := false
	o.OnDamage = func(d tail.Damage) {
		if d.Kind == tail.DamageUnfinished {
			fmt.Fprintf(stderr, "mmaptail cat: note: %s\n", oneLine(d.String()))
			return
		}
		damaged = true
		fmt.Fprintf(stderr, "mmaptail cat: damage: %s\n", oneLine(d.String()))
	}
	o.OnStall = func(s tail.Stall) {
		word := "warning"
		if s.Over {
			word = "note"
		}
		fmt.Fprintf(stderr, "mmaptail cat: %s: %s\n", word, oneLine(s.String()))
	}
	o.OnTimeStep = func(s tail.TimeStep) {
		fmt.Fprintf(stderr, "mmaptail cat: note: %s; --since and --until take time as non-decreasing and read on from before it\n", oneLine(s.String()))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, unix.SIGTERM)
	defer stop()
	if *follow {
		if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(stderr, "mmaptail cat: %s does not exist yet: waiting for it to appear\n", dir)
		}
	}
	out := &lineWriter{w: bufio.NewWriterSize(stdout, 64<<10), line: line}
	if *reverse {
		r, err := tail.OpenReverse(dir, o)
		if err != nil {
			return err
		}
		defer r.Close()
		for !nothing && r.Next() {
			if err := out.write(r.Record()); err != nil {
				return err
			}
		}
		if err := out.w.Flush(); err != nil {
			return err
		}
		if err := r.Err(); err != nil {
			return err
		}
	} else {
		r, err := tail.Open(dir, o)
		if err != nil {
			return err
		}
		defer r.Close()
		for !nothing {
			for r.Next() {
				if err := out.write(r.Record()); err != nil {
					return err
				}
			}
			if err := out.w.Flush(); err != nil {
				return err
			}
			if err := r.Err(); err != nil {
				return err
			}
			if !*follow || r.Done() || r.Wait(ctx) != nil {
				break
			}
		}
	}
	if damaged {
		return &exitError{code: 1}
	}
	return nil
}

// countFlag is -n: a number of records, 0 or more, or not given.
type countFlag struct {
	n   int
	set bool
}

func (c *countFlag) String() string {
	if c == nil || !c.set {
		return ""
	}
	return strconv.Itoa(c.n)
}

func (c *countFlag) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return fmt.Errorf("want 0 or more records")
	}
	c.n, c.set = n, true
	return nil
}

// lineWriter writes a line per record, flushing before a line that does not
// fit, never in the middle of one: each write(2) ends at a line's end
// (lines over 64 KiB aside), so that output cut short by a kill holds whole
// lines, short of a kill inside a write(2) itself.
type lineWriter struct {
	w    *bufio.Writer
	line func(dst []byte, rec tail.Record) []byte
	buf  []byte
}

func (lw *lineWriter) write(rec tail.Record) error {
	lw.buf = append(lw.line(lw.buf[:0], rec), '\n')
	if lw.w.Buffered() > 0 && lw.w.Available() < len(lw.buf) {
		if err := lw.w.Flush(); err != nil {
			return err
		}
	}
	_, err := lw.w.Write(lw.buf)
	return err
}

// lineFormat returns what -o FORMAT prints for a record (without the
// newline).
func lineFormat(format, dir, host string, fields multiFlag) (func([]byte, tail.Record) []byte, error) {
	switch format {
	case "cat":
		return func(dst []byte, rec tail.Record) []byte { return append(dst, rec.Payload...) }, nil
	case "short":
		return func(dst []byte, rec tail.Record) []byte {
			dst = time.Unix(0, rec.Time).AppendFormat(dst, "Jan 02 15:04:05.000000")
			dst = append(dst, ' ')
			name := levelName(rec.Type)
			dst = append(dst, name...)
			for i := len(name); i < 5; i++ {
				dst = append(dst, ' ')
			}
			dst = append(dst, ' ')
			return append(dst, rec.Payload...)
		}, nil
	case "json":
		return func(dst []byte, rec tail.Record) []byte {
			dst = append(dst, `{"seq":`...)
			dst = strconv.AppendUint(dst, rec.Seq, 10)
			dst = append(dst, `,"time":"`...)
			dst = time.Unix(0, rec.Time).UTC().AppendFormat(dst, time.RFC3339Nano)
			dst = append(dst, '"')
			if l := ring.Level(rec.Type); l.Known() {
				dst = append(dst, `,"level":"`...)
				dst = append(dst, l.String()...)
				dst = append(dst, '"')
			}
			if utf8.Valid(rec.Payload) {
				dst = append(dst, `,"payload":`...)
				dst = jsonenc.AppendBytes(dst, rec.Payload)
			} else {
				dst = append(dst, `,"payload_base64":"`...)
				dst = base64.StdEncoding.AppendEncode(dst, rec.Payload)
				dst = append(dst, '"')
			}
			return append(dst, '}')
		}, nil
	case "ecs":
		fm := map[string]string{}
		for _, f := range fields {
			k, v, ok := strings.Cut(f, "=")
			if !ok || k == "" {
				return nil, usagef("--field %q: want KEY=VALUE", f)
			}
			fm[k] = v
		}
		if host == "" {
			host, _ = os.Hostname()
		}
		// ship names a log by its cleaned path: so does the event here.
		enc, err := ship.NewEncoder(filepath.Clean(dir), host, fm)
		if err != nil {
			return nil, usagef("--field: %v", err)
		}
		return enc.Append, nil
	}
	return nil, usagef("-o %q: want cat, short, json or ecs", format)
}

// levelName is a record type's level for -o short: "-" for none.
func levelName(t uint8) string {
	if l := ring.Level(t); l != ring.LevelNone {
		return l.String()
	}
	return "-"
}

// parseLevel reads -p: a level's name, or journalctl's "err" and "warning".
func parseLevel(s string) (ring.Level, bool) {
	switch s = strings.ToLower(s); s {
	case "err":
		s = "error"
	case "warning":
		s = "warn"
	}
	return ring.ParseLevel(s)
}

// parseWhen reads a TIME of --since and --until (see catHelp), relative to
// now, in local time where no zone is given.
func parseWhen(s string, now time.Time) (time.Time, error) {
	midnight := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.Local)
	switch s {
	case "now":
		return now, nil
	case "today":
		return midnight, nil
	case "yesterday":
		return midnight.AddDate(0, 0, -1), nil
	case "tomorrow":
		return midnight.AddDate(0, 0, 1), nil
	}
	if s != "" && (s[0] == '-' || s[0] == '+') {
		d, err := parseSpan(s[1:])
		if err != nil {
			return time.Time{}, err
		}
		if s[0] == '-' {
			d = -d
		}
		return now.Add(d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	for _, layout := range []string{"15:04:05", "15:04"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return midnight.Add(time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute +
				time.Duration(t.Second())*time.Second + time.Duration(t.Nanosecond())), nil
		}
	}
	return time.Time{}, errors.New(`want RFC 3339 (2025-03-01T12:00:00Z), "2025-03-01 12:00:00" (local time), a date, now, today, yesterday, tomorrow, or a span relative to now like -10m, -2h, -1d`)
}

// parseSpan reads a span for parseWhen: what time.ParseDuration reads, and
// days (d).
func parseSpan(s string) (time.Duration, error) {
	var total time.Duration
	rest := s
	for rest != "" {
		i := strings.IndexByte(rest, 'd')
		if i < 0 {
			break
		}
		// A "d" right after digits (not the "d" of another unit).
		j := i
		for j > 0 && (rest[j-1] >= '0' && rest[j-1] <= '9' || rest[j-1] == '.') {
			j--
		}
		if j != 0 || i == 0 {
			break
		}
		n, err := strconv.ParseFloat(rest[:i], 64)
		if err != nil || n > 1e5 {
			return 0, fmt.Errorf("span %q: bad number of days", s)
		}
		total += time.Duration(n * float64(24*time.Hour))
		rest = rest[i+1:]
	}
	if rest != "" {
		d, err := time.ParseDuration(rest)
		if err != nil || d < 0 {
			return 0, fmt.Errorf("span %q: want a number and a unit, like 10m, 1h30m, 2d", s)
		}
		total += d
	} else if total == 0 && s == "" {
		return 0, fmt.Errorf("span %q: want a number and a unit, like 10m, 1h30m, 2d", s)
	}
	return total, nil
}
