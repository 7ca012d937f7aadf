package main

// Tests of cat's reading flags (-n, --since, --until, -p, --grep, -r, -o)
// against the built binary: this test binary started again as mmaptail
// (start, in read_test.go), with TZ=UTC so that local times are known.

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/mmaplog/mmaplog/mmaplog"
	"github.com/mmaplog/mmaplog/rotate"
)

// catRun runs mmaptail with args (TZ=UTC) and returns its output and exit
// code.
func catRun(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	p := start(t, []string{asMainEnv + "=1", "TZ=UTC"}, 0, args...)
	code = p.wait(t, 2*time.Minute)
	return p.stdout.String(), p.stderr.String(), code
}

// catOK runs mmaptail with args and fails the test unless it exits 0 with
// nothing on standard error; it returns the lines it printed.
func catOK(t *testing.T, args ...string) []string {
	t.Helper()
	out, errs, code := catRun(t, args...)
	if code != 0 || errs != "" {
		t.Fatalf("mmaptail %s: exit %d, stderr %q", strings.Join(args, " "), code, errs)
	}
	return lines(out)
}

func lines(out string) []string {
	if out == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(out, "\n"), "\n")
}

// recordNs parses lines of recordJSON records and returns their numbers,
// checking that each is intact.
func recordNs(t *testing.T, what string, ls []string) []uint64 {
	t.Helper()
	var ns []uint64
	for i, l := range ls {
		n, ok := checkRecordJSON([]byte(l))
		if !ok {
			t.Fatalf("%s: line %d is not an intact record: %q", what, i+1, l)
		}
		ns = append(ns, n)
	}
	return ns
}

func span(from, to uint64) []uint64 {
	var s []uint64
	for n := from; n <= to; n++ {
		s = append(s, n)
	}
	return s
}

// catEpoch is when the records of the timed test logs start: record n is
// stamped catEpoch plus n seconds.
var catEpoch = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// timedLog writes records 1 to n (recordJSON, record n being sequence number
// n), stamped catEpoch plus n seconds, at level(n), into 16 KiB segments.
func timedLog(t *testing.T, n int, o mmaplog.Options, level func(n uint64) mmaplog.Level) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "log")
	var clock testClock
	o.Clock = clock.now
	if o.SegmentSize == 0 {
		o.SegmentSize = 16 << 10
	}
	w, err := mmaplog.Open(dir, &o)
	if err != nil {
		t.Fatal(err)
	}
	var buf []byte
	for i := uint64(1); i <= uint64(n); i++ {
		clock.set(catEpoch.Add(time.Duration(i) * time.Second))
		if _, err := w.Append(level(i), recordJSON(buf, i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// testClock is a writer's Options.Clock that a test sets: the writer's
// background goroutines read it too.
type testClock struct{ ns atomic.Int64 }

func (c *testClock) now() time.Time  { return time.Unix(0, c.ns.Load()) }
func (c *testClock) set(t time.Time) { c.ns.Store(t.UnixNano()) }

func infoLevel(uint64) mmaplog.Level { return mmaplog.LevelInfo }

func at(n int) string { return catEpoch.Add(time.Duration(n) * time.Second).Format(time.RFC3339) }

// TestCatLast: -n N prints exactly the last N records, across rotations and
// compressed segments; more than the log holds (retention removed the
// oldest) prints what is there without a word of damage; -n 0 prints
// nothing; -n with -r prints them newest first.
func TestCatLast(t *testing.T) {
	dir := timedLog(t, 5000, mmaplog.Options{MaxBackups: 12, Compress: true}, infoLevel)
	l, _ := rotate.List(dir)
	oldest := oldestRecordOf(t, dir)
	if oldest <= 1 || len(l.Segments) < 10 {
		t.Fatalf("the log kept %d segments from record %d: the test wants retention to have removed some", len(l.Segments), oldest)
	}
	for _, n := range []uint64{1, 50, 777} {
		got := recordNs(t, "-n", catOK(t, "cat", "-n", strconv.FormatUint(n, 10), dir))
		if !slices.Equal(got, span(5000-n+1, 5000)) {
			t.Errorf("-n %d: records %v..., want %d to 5000", n, head(got), 5000-n+1)
		}
		rev := recordNs(t, "-n -r", catOK(t, "cat", "-r", "-n", strconv.FormatUint(n, 10), dir))
		slices.Reverse(rev)
		if !slices.Equal(rev, span(5000-n+1, 5000)) {
			t.Errorf("-n %d -r: records %v..., want 5000 down to %d", n, head(rev), 5000-n+1)
		}
	}
	if got := recordNs(t, "-n more", catOK(t, "cat", "-n", "100000", dir)); !slices.Equal(got, span(oldest, 5000)) {
		t.Errorf("-n 100000: records %v..., want %d to 5000", head(got), oldest)
	}
	if got := catOK(t, "cat", "-n", "0", dir); len(got) != 0 {
		t.Errorf("-n 0 printed %d lines", len(got))
	}
}

func head(s []uint64) []uint64 { return s[:min(len(s), 5)] }

// oldestRecordOf returns the number of the oldest record a full cat reads.
func oldestRecordOf(t *testing.T, dir string) uint64 {
	all := recordNs(t, "cat", catOK(t, "cat", dir))
	if len(all) == 0 {
		t.Fatal("empty log")
	}
	return all[0]
}

// TestCatLastWhileWriting: -n 100 against a live writer rotating 16 KiB
// segments with retention prints 100 consecutive intact records, the last
// of them at least the newest acknowledged before it started.
//
// Retention keeps 20 rolled segments, about 3,400 records: the writer
// writes on while cat runs, but no more than 1,000 records past the newest
// acknowledged before it started (LIMITFILE), so that retention cannot
// take the records cat is reading however long the machine keeps cat
// waiting.
func TestCatLastWhileWriting(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	limit := filepath.Join(t.TempDir(), "limit")
	setLimit := func(n uint64) {
		if err := os.WriteFile(limit+".tmp", []byte(strconv.FormatUint(n, 10)), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(limit+".tmp", limit); err != nil {
			t.Fatal(err)
		}
	}
	const ahead = 1000
	setLimit(3000 + ahead)
	w := writerProc(t, dir, "SEGMENT=16384", "MAXBACKUPS=20", "RATE=5000", "ACK=50", "LIMITFILE="+limit)
	for lastAck(w) < 3000 {
		time.Sleep(10 * time.Millisecond)
	}
	for i := 0; i < 8; i++ {
		acked := lastAck(w)
		setLimit(acked + ahead)
		got := recordNs(t, "-n 100", catOK(t, "cat", "-n", "100", dir))
		if len(got) != 100 || got[99] < acked || !slices.Equal(got, span(got[0], got[0]+99)) {
			t.Fatalf("-n 100 while writing: %d records %v...%v, want 100 consecutive ending at %d or later", len(got), head(got), got[len(got)-1:], acked)
		}
	}
	w.cmd.Process.Kill()
	w.wait(t, time.Minute)
}

// TestCatSinceUntil: --since and --until in every form of TIME select the
// records from the first stamped at or after --since to the last stamped at
// or before --until, across segment boundaries, forward and with -r, with
// -n; a damaged segment before --since is not read (exit 0), one after is
// reported (exit 1).
func TestCatSinceUntil(t *testing.T) {
	dir := timedLog(t, 3000, mmaplog.Options{MaxBackups: -1}, infoLevel)
	cases := []struct {
		args     []string
		from, to uint64
	}{
		{[]string{"--since", at(1000)}, 1000, 3000},
		{[]string{"--since", at(1000), "--until", at(1999)}, 1000, 1999},
		{[]string{"--since", catEpoch.Add(999500 * time.Millisecond).Format(time.RFC3339Nano)}, 1000, 3000},
		{[]string{"--since", "2025-03-01 12:16:40"}, 1000, 3000}, // local time (UTC)
		{[]string{"--since", "2025-03-01 12:16"}, 960, 3000},
		{[]string{"--until", "2025-03-01T12:00:10Z"}, 1, 10},
		{[]string{"--since", "2025-03-01"}, 1, 3000},
		{[]string{"--since", "2025-03-02"}, 1, 0},
		{[]string{"--until", "2025-03-01T11:00:00Z"}, 1, 0},
		{[]string{"--since", at(1000), "-n", "5"}, 2996, 3000},
		{[]string{"--since", at(1000), "--until", at(2000), "-n", "5"}, 1996, 2000},
		{[]string{"--since", at(2998), "-n", "5"}, 2998, 3000},
	}
	for _, c := range cases {
		want := span(c.from, c.to)
		args := append(append([]string{"cat"}, c.args...), dir)
		if got := recordNs(t, strings.Join(c.args, " "), catOK(t, args...)); !slices.Equal(got, want) {
			t.Errorf("%s: records %v... (%d), want %d to %d", strings.Join(c.args, " "), head(got), len(got), c.from, c.to)
		}
		args = append(append([]string{"cat", "-r"}, c.args...), dir)
		got := recordNs(t, "-r "+strings.Join(c.args, " "), catOK(t, args...))
		slices.Reverse(got)
		if !slices.Equal(got, want) {
			t.Errorf("-r %s: records %v... (%d), want %d down to %d", strings.Join(c.args, " "), head(got), len(got), c.to, c.from)
		}
	}
	// Damage: a segment in the first half, zeroed in the middle.
	l, _ := rotate.List(dir)
	seg := l.Segments[len(l.Segments)/4]
	b, _ := os.ReadFile(seg.Path)
	clear(b[len(b)/2 : len(b)/2+512])
	os.WriteFile(seg.Path, b, 0o600)
	if got := recordNs(t, "--since after the damage", catOK(t, "cat", "--since", at(2500), dir)); !slices.Equal(got, span(2500, 3000)) {
		t.Errorf("--since after the damage: records %v..., want 2500 to 3000", head(got))
	}
	out, errs, code := catRun(t, "cat", "--since", at(10), dir)
	if code != 1 || !strings.Contains(errs, "damage: "+seg.Path) {
		t.Errorf("--since before the damage: exit %d, stderr %q; want 1 and the damage named", code, errs)
	}
	if c := checkConsecutive(t, "--since before the damage", out, 10); c.last != 3000 || len(c.gaps) != 1 {
		t.Errorf("--since before the damage: records %d to %d with gaps %v, want one gap", c.first, c.last, c.gaps)
	}
}

// TestCatSinceRelative: --since and --until relative to now (-30m, -1d12h,
// now, today, yesterday) against records stamped around now: each selects
// the records its rule does, computed here with margins of minutes around
// every relative bound.
func TestCatSinceRelative(t *testing.T) {
	for try := 0; ; try++ {
		day := time.Now().UTC().YearDay()
		if catSinceRelative(t) || time.Now().UTC().YearDay() == day || try > 0 {
			return
		}
		// The date changed while the test ran: today was not one day.
	}
}

func catSinceRelative(t *testing.T) bool {
	dir := filepath.Join(t.TempDir(), "log")
	now := time.Now().UTC()
	midnight := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	var clock testClock
	w, err := mmaplog.Open(dir, &mmaplog.Options{SegmentSize: 16 << 10, Clock: clock.now})
	if err != nil {
		t.Fatal(err)
	}
	times := []time.Time{now.Add(-40 * time.Hour), now.Add(-30 * time.Hour), now.Add(-20 * time.Hour), now.Add(-2 * time.Hour), now.Add(-10 * time.Minute), now.Add(-time.Second)}
	for i, at := range times {
		clock.set(at)
		w.Append(mmaplog.LevelInfo, recordJSON(nil, uint64(i+1)))
	}
	w.Close()
	between := func(from, to time.Time) []uint64 {
		var ns []uint64
		for i, at := range times {
			if !at.Before(from) && !at.After(to) {
				ns = append(ns, uint64(i+1))
			}
		}
		return ns
	}
	forever := now.Add(time.Hour)
	cases := []struct {
		args []string
		want []uint64
	}{
		{[]string{"--since", "-30m"}, []uint64{5, 6}},
		{[]string{"--since", "-1h", "--until", "-5m"}, []uint64{5}},
		{[]string{"--since", "-1d12h"}, []uint64{2, 3, 4, 5, 6}},
		{[]string{"--until", "now"}, []uint64{1, 2, 3, 4, 5, 6}},
		{[]string{"--since", "+1h"}, nil},
		{[]string{"--since", "yesterday", "--until", "today"}, between(midnight.AddDate(0, 0, -1), midnight)},
		{[]string{"--since", "today"}, between(midnight, forever)},
		{[]string{"--until", "yesterday"}, between(time.Time{}, midnight.AddDate(0, 0, -1))},
		{[]string{"--since", "tomorrow"}, nil},
	}
	for _, c := range cases {
		args := append(append([]string{"cat"}, c.args...), dir)
		if got := recordNs(t, strings.Join(c.args, " "), catOK(t, args...)); !slices.Equal(got, c.want) {
			if time.Now().UTC().YearDay() != now.YearDay() {
				return false
			}
			t.Errorf("%s: records %v, want %v", strings.Join(c.args, " "), got, c.want)
		}
	}
	return true
}

// TestCatLevel: -p keeps the records at a level or above, as zerolog wrote
// them (its level is in each record's header), and leaves out those without
// a level; journalctl's "err" and "warning" work; -p with -n counts the
// records it keeps.
func TestCatLevel(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	w, err := mmaplog.Open(dir, &mmaplog.Options{SegmentSize: 16 << 10})
	if err != nil {
		t.Fatal(err)
	}
	log := zerolog.New(w)
	levels := []zerolog.Level{zerolog.TraceLevel, zerolog.DebugLevel, zerolog.InfoLevel, zerolog.WarnLevel, zerolog.ErrorLevel, zerolog.FatalLevel, zerolog.PanicLevel}
	for i := 0; i < 700; i++ {
		if i%10 == 9 {
			w.Write([]byte(fmt.Sprintf(`{"message":"no level %d"}`, i)))
			continue
		}
		log.WithLevel(levels[i%7]).Int("i", i).Msg("event")
	}
	w.Close()
	count := func(ls []string, min zerolog.Level) {
		t.Helper()
		want := 0
		for i := 0; i < 700; i++ {
			if i%10 != 9 && levels[i%7] >= min {
				want++
			}
		}
		if len(ls) != want {
			t.Errorf("-p %s: %d records, want %d", min, len(ls), want)
		}
		for _, l := range ls {
			var ev struct {
				Level string `json:"level"`
			}
			if err := json.Unmarshal([]byte(l), &ev); err != nil {
				t.Fatalf("-p %s: %q: %v", min, l, err)
			}
			lv, err := zerolog.ParseLevel(ev.Level)
			if err != nil || lv < min {
				t.Fatalf("-p %s printed %q", min, l)
			}
		}
	}
	count(catOK(t, "cat", "-p", "warn", dir), zerolog.WarnLevel)
	count(catOK(t, "cat", "-p", "err", dir), zerolog.ErrorLevel)
	count(catOK(t, "cat", "-p", "warning", dir), zerolog.WarnLevel)
	count(catOK(t, "cat", "-p", "panic", dir), zerolog.PanicLevel)
	count(catOK(t, "cat", "-p", "trace", dir), zerolog.TraceLevel)
	got := catOK(t, "cat", "-p", "error", "-n", "3", dir)
	var is []int
	for _, l := range got {
		var ev struct{ I int }
		json.Unmarshal([]byte(l), &ev)
		is = append(is, ev.I)
	}
	if !slices.Equal(is, lastWithLevel(700, 3, func(i int) bool { return i%10 != 9 && levels[i%7] >= zerolog.ErrorLevel })) {
		t.Errorf("-p error -n 3: events %v", is)
	}
}

func lastWithLevel(n, k int, keep func(int) bool) []int {
	var out []int
	for i := n - 1; i >= 0 && len(out) < k; i-- {
		if keep(i) {
			out = append(out, i)
		}
	}
	slices.Reverse(out)
	return out
}

// TestCatGrep: --grep keeps the records whose payload matches, combined
// with -n and -r.
func TestCatGrep(t *testing.T) {
	dir := timedLog(t, 2000, mmaplog.Options{MaxBackups: -1}, infoLevel)
	if got := recordNs(t, "--grep", catOK(t, "cat", "--grep", `"n":1[0-9]{3},`, dir)); !slices.Equal(got, span(1000, 1999)) {
		t.Errorf("--grep: records %v... (%d), want 1000 to 1999", head(got), len(got))
	}
	if got := recordNs(t, "--grep -n", catOK(t, "cat", "--grep", `"n":1[0-9]{3},`, "-n", "3", dir)); !slices.Equal(got, span(1997, 1999)) {
		t.Errorf("--grep -n 3: records %v, want 1997 to 1999", got)
	}
	got := recordNs(t, "--grep -r", catOK(t, "cat", "-r", "--grep", `(?i)"N":7[0-9],`, dir))
	if !slices.Equal(got, []uint64{79, 78, 77, 76, 75, 74, 73, 72, 71, 70}) {
		t.Errorf("-r --grep: records %v, want 79 down to 70", got)
	}
}

// TestCatOutput: -o short, json and ecs print what they say; ecs prints the
// events byte for byte as ship sends them.
func TestCatOutput(t *testing.T) {
	dir := timedLog(t, 300, mmaplog.Options{}, func(n uint64) mmaplog.Level { return mmaplog.Level(n % 8) })
	short := catOK(t, "cat", "-o", "short", "--since", at(295), "--until", at(297), dir)
	want := []string{
		"Mar 01 12:04:55.000000 panic " + string(recordJSON(nil, 295)),
		"Mar 01 12:04:56.000000 -     " + string(recordJSON(nil, 296)),
		"Mar 01 12:04:57.000000 trace " + string(recordJSON(nil, 297)),
	}
	if !slices.Equal(short, want) {
		t.Errorf("-o short:\n%s\nwant\n%s", strings.Join(short, "\n"), strings.Join(want, "\n"))
	}
	js := catOK(t, "cat", "-o", "json", dir)
	if len(js) != 300 {
		t.Fatalf("-o json: %d lines", len(js))
	}
	for i, l := range js {
		var ev map[string]any
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("-o json line %d: %q: %v", i+1, l, err)
		}
		n := uint64(i + 1)
		wantLevel := mmaplog.Level(n % 8).String()
		if ev["seq"] != float64(n) || ev["time"] != catEpoch.Add(time.Duration(n)*time.Second).Format(time.RFC3339Nano) ||
			ev["payload"] != string(recordJSON(nil, n)) || (wantLevel == "") != (ev["level"] == nil) || wantLevel != "" && ev["level"] != wantLevel {
			t.Fatalf("-o json line %d: %q", i+1, l)
		}
	}
	// A payload that is not UTF-8 comes in base64.
	bin := filepath.Join(t.TempDir(), "bin")
	w, err := mmaplog.Open(bin, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw := []byte{0xff, 0xfe, 'a', 0, '"'}
	w.Append(mmaplog.LevelError, raw)
	w.Close()
	var ev struct {
		Level   string `json:"level"`
		Payload string `json:"payload_base64"`
	}
	js = catOK(t, "cat", "-o", "json", bin)
	if len(js) != 1 || json.Unmarshal([]byte(js[0]), &ev) != nil || ev.Level != "error" || ev.Payload != base64.StdEncoding.EncodeToString(raw) {
		t.Errorf("-o json of a binary payload: %q", js)
	}

	// ecs: what ship sends, line for line.
	out := filepath.Join(t.TempDir(), "events.ndjson")
	ship := start(t, []string{asMainEnv + "=1", "TZ=UTC"}, 0, "ship", "--log", dir, "--to", "file://"+out, "--cursor", filepath.Join(t.TempDir(), "cursor"),
		"--host", "web-7", "--field", "service.name=checkout", "--field", "labels.env=prod")
	deadline := time.Now().Add(time.Minute)
	for {
		b, _ := os.ReadFile(out)
		if strings.Count(string(b), "\n") >= 300 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ship wrote %d events in a minute; stderr: %s", strings.Count(string(b), "\n"), ship.stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	ship.stop(t)
	b, _ := os.ReadFile(out)
	shipped := lines(string(b))
	ecs := catOK(t, "cat", "-o", "ecs", "--host", "web-7", "--field", "service.name=checkout", "--field", "labels.env=prod", dir+"/")
	if !slices.Equal(ecs, shipped) {
		for i := range min(len(ecs), len(shipped)) {
			if ecs[i] != shipped[i] {
				t.Fatalf("-o ecs line %d differs from what ship sent:\n%s\n%s", i+1, ecs[i], shipped[i])
			}
		}
		t.Fatalf("-o ecs: %d events, ship sent %d", len(ecs), len(shipped))
	}
}

// TestCatFollowCombined: -f with -n prints the last N and then what comes;
// with --since, -p and -o json it keeps what they keep as records come; with
// --until it exits 0 by itself at the first record stamped after it, or,
// --until being past, once it has read everything.
func TestCatFollowCombined(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	base := time.Now().Truncate(time.Second) // record n: base plus n seconds
	stamp := func(n int) string { return base.Add(time.Duration(n) * time.Second).Format(time.RFC3339) }
	var clock testClock
	w, err := mmaplog.Open(dir, &mmaplog.Options{SegmentSize: 16 << 10, MaxBackups: -1, Clock: clock.now})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var buf []byte
	write := func(from, to uint64) {
		for n := from; n <= to; n++ {
			clock.set(base.Add(time.Duration(n) * time.Second))
			if _, err := w.Append(mmaplog.Level(n%8), recordJSON(buf, n)); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(1, 1000)
	last := start(t, []string{asMainEnv + "=1"}, 0, "cat", "-f", "-n", "5", dir)
	waitOutput(t, last, string(recordJSON(nil, 1000))+"\n")
	until := start(t, []string{asMainEnv + "=1"}, 0, "cat", "-f", "--since", stamp(990), "--until", stamp(1500), "-p", "error", "-o", "json", dir)
	waitOutput(t, until, `"seq":997,`)
	// --until past, every record before it: done once they are read.
	old := timedLog(t, 50, mmaplog.Options{}, infoLevel) // stamped in 2025
	past := start(t, []string{asMainEnv + "=1"}, 0, "cat", "-f", "--until", "-1m", old)
	if code := past.wait(t, time.Minute); code != 0 {
		t.Fatalf("-f --until -1m: exit %d, stderr %s", code, past.stderr)
	}
	if got := recordNs(t, "-f --until -1m", lines(past.stdout.String())); !slices.Equal(got, span(1, 50)) {
		t.Errorf("-f --until -1m: records %v, want 1 to 50", got)
	}
	write(1001, 2000)
	if code := until.wait(t, time.Minute); code != 0 {
		t.Fatalf("-f --until: exit %d, stderr %s", code, until.stderr)
	}
	var got []uint64
	for _, l := range lines(until.stdout.String()) {
		var ev struct {
			Seq   uint64
			Level string
		}
		if err := json.Unmarshal([]byte(l), &ev); err != nil || (ev.Level != "error" && ev.Level != "fatal" && ev.Level != "panic") {
			t.Fatalf("-f -p error -o json printed %q", l)
		}
		got = append(got, ev.Seq)
	}
	var want []uint64
	for n := uint64(990); n <= 1500; n++ {
		if mmaplog.Level(n%8) >= mmaplog.LevelError {
			want = append(want, n)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("-f --since --until -p: records %v, want %v", got, want)
	}
	waitOutput(t, last, string(recordJSON(nil, 2000))+"\n")
	if code := last.stop(t); code != 0 {
		t.Fatalf("-f -n 5: exit %d", code)
	}
	if got := recordNs(t, "-f -n 5", lines(last.stdout.String())); !slices.Equal(got, span(996, 2000)) {
		t.Errorf("-f -n 5: records %v... (%d), want 996 to 2000", head(got), len(got))
	}
}

// TestCatTimeStep: a clock set back where a segment starts (as by a writer
// restarted into a new segment) is noted on standard error, one line, and
// --since still starts at the first record stamped at or after it, in the
// segment before the step.
func TestCatTimeStep(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	var clock testClock
	w, err := mmaplog.Open(dir, &mmaplog.Options{SegmentSize: 16 << 10, MaxBackups: -1, Clock: clock.now})
	if err != nil {
		t.Fatal(err)
	}
	// Records 1000 to 3999, all of one size: recordJSON pads to 96.
	rec := func(n uint64) []byte { return recordJSON(nil, n, 96-int(n%97)) }
	perSeg := uint64((16<<10 - 128) / ((32 + len(rec(1000)) + 7) &^ 7))
	stepAt := 1000 + 10*perSeg // the first record of the eleventh segment
	for n := uint64(1000); n < 4000; n++ {
		at := catEpoch.Add(time.Duration(n) * time.Second)
		if n >= stepAt {
			at = at.Add(-time.Duration(2*perSeg) * time.Second)
		}
		clock.set(at)
		if _, err := w.Append(mmaplog.LevelInfo, rec(n)); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	since := stepAt - 3
	out, errs, code := catRun(t, "cat", "--since", at(int(since)), dir)
	if code != 0 || !strings.Contains(errs, "clock went back") {
		t.Fatalf("--since over a step back: exit %d, stderr %q; want 0 and the step noted", code, errs)
	}
	for _, l := range lines(errs) {
		if !strings.HasPrefix(l, "mmaptail cat: note: ") {
			t.Fatalf("stderr line %q", l)
		}
	}
	if c := checkConsecutive(t, "--since over a step back", out, since); c.last != 3999 || len(c.gaps) != 0 {
		t.Fatalf("--since over a step back: records %d to %d, gaps %v; want %d to 3999", c.first, c.last, c.gaps, since)
	}
}

// TestCatUsageErrors: every bad input is one line on standard error and
// exit 2, nothing on standard output.
func TestCatUsageErrors(t *testing.T) {
	dir := timedLog(t, 10, mmaplog.Options{}, infoLevel)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--since", "last tuesday"}, `--since "last tuesday": want RFC 3339`},
		{[]string{"--until", "2025-13-01"}, `--until "2025-13-01": want RFC 3339`},
		{[]string{"--since", "-10x"}, `--since "-10x": span "10x": want a number and a unit`},
		{[]string{"--since", at(5), "--until", at(4)}, "is before --since"},
		{[]string{"-p", "loud"}, `-p "loud": want trace, debug, info, warn, error, fatal or panic`},
		{[]string{"--grep", "(unclosed"}, `--grep "(unclosed": missing closing )`},
		{[]string{"-o", "xml"}, `-o "xml": want cat, short, json or ecs`},
		{[]string{"-r", "-f"}, "-r and -f cannot be combined"},
		{[]string{"--from", "5", "--since", "now"}, "--from cannot be combined with --since or -n"},
		{[]string{"--from", "5", "-n", "3"}, "--from cannot be combined with --since or -n"},
		{[]string{"-r", "--from", "end"}, "--from end does not apply"},
		{[]string{"--host", "h"}, "--host and --field shape the events of -o ecs"},
		{[]string{"-o", "ecs", "--field", "novalue"}, `--field "novalue": want KEY=VALUE`},
		{[]string{"-o", "ecs", "--field", "log.offset=1"}, `set by mmaptail itself`},
		{[]string{"-n", "-1"}, `invalid value "-1" for flag -n: want 0 or more records`},
		{[]string{"-n", "0", "--since", "now"}, "-n 0 prints nothing"},
	} {
		args := append(append([]string{"cat"}, c.args...), dir)
		out, errs, code := catRun(t, args...)
		if code != 2 || out != "" || strings.Count(errs, "\n") != 1 || !strings.HasPrefix(errs, "mmaptail cat: ") || !strings.Contains(errs, c.want) {
			t.Errorf("cat %s: exit %d, stdout %q, stderr %q; want exit 2 and one line with %q", strings.Join(c.args, " "), code, out, errs, c.want)
		}
	}
}
