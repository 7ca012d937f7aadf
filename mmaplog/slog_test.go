package mmaplog_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mmaplog/mmaplog/mmaplog"
	"github.com/mmaplog/mmaplog/tail"
)

// readRecords returns every record of the log in dir, payloads copied.
func readRecords(t testing.TB, dir string) []tail.Record {
	t.Helper()
	r, err := tail.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var recs []tail.Record
	for r.Next() {
		rec := r.Record()
		rec.Payload = bytes.Clone(rec.Payload)
		recs = append(recs, rec)
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if d := r.Damage(); len(d) > 0 {
		t.Fatalf("damage: %v", d)
	}
	return recs
}

func openLog(t testing.TB, o *mmaplog.Options) (*mmaplog.Writer, string) {
	t.Helper()
	dir := t.TempDir()
	w, err := mmaplog.Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	return w, dir
}

var testTime = time.Date(2026, 11, 23, 11, 36, 48, 123456789, time.UTC)

type point struct{ X, Y int }

// errMarshaler is an error that is also a json.Marshaler: encoded as JSON,
// not as its Error text.
type errMarshaler struct{}

func (errMarshaler) Error() string                { return "as error" }
func (errMarshaler) MarshalJSON() ([]byte, error) { return []byte(`{"as":"json"}`), nil }

// nilErr's Error panics on a nil receiver: written "<nil>".
type nilErr struct{ msg string }

func (e *nilErr) Error() string { return e.msg }

// panicky's MarshalJSON panics on a non-nil receiver.
type panicky struct{}

func (panicky) MarshalJSON() ([]byte, error) { panic("boom") }

type token string

func (token) LogValue() slog.Value { return slog.StringValue("REDACTED") }

type lazyGroup struct{}

func (lazyGroup) LogValue() slog.Value {
	return slog.GroupValue(slog.Int("a", 1), slog.Group("b", slog.String("c", "d")))
}

// allKinds are attributes of every kind and many encodings.
func allKinds() []slog.Attr {
	var nilPtr *nilErr
	return []slog.Attr{
		slog.String("s", "plain"),
		slog.String("esc", "quote\" back\\slash \n\r\t \x00\x1f\x7f <html>&amp; \xff\xfe héllo \u2028\u2029 😀"),
		slog.String("k\"ey\n", "key escaped"),
		slog.String("", "empty key"),
		slog.Int("i", -42),
		slog.Int64("i64", math.MinInt64),
		slog.Uint64("u64", math.MaxUint64),
		slog.Float64("f", 1.5),
		slog.Float64("fsmall", 1e-7),
		slog.Float64("fbig", 1e21),
		slog.Float64("fbelow", 1e20),
		slog.Float64("fneg", -2.5e-9),
		slog.Float64("fzero", 0),
		slog.Float64("fnegzero", math.Copysign(0, -1)),
		slog.Float64("fmax", math.MaxFloat64),
		slog.Float64("fsub", 5e-324),
		slog.Float64("nan", math.NaN()),
		slog.Float64("inf", math.Inf(1)),
		slog.Float64("ninf", math.Inf(-1)),
		slog.Bool("t", true),
		slog.Bool("f", false),
		slog.Duration("d", 1500*time.Millisecond),
		slog.Time("tm", testTime),
		slog.Time("tmzone", testTime.In(time.FixedZone("X", -5*3600-30*60))),
		slog.Time("tmyear", time.Date(10001, 1, 1, 0, 0, 0, 0, time.UTC)),
		slog.Any("err", errors.New("it \"failed\"")),
		slog.Any("errjson", errMarshaler{}),
		slog.Any("errnil", nilPtr),
		slog.Any("nil", nil),
		slog.Any("panic", panicky{}),
		slog.Any("struct", point{1, 2}),
		slog.Any("map", map[string]int{"b": 2, "a": 1}),
		slog.Any("slice", []string{"<x>", "y"}),
		slog.Any("bytes", []byte("hi")),
		slog.Any("chan", make(chan int)),
		slog.Any("level", slog.LevelWarn+1),
		slog.Any("rawmsg", json.RawMessage(`{"raw": true}`)),
		slog.Any("token", token("secret")),
		slog.Any("lazygroup", lazyGroup{}),
		slog.Group("g", slog.Int("a", 1), slog.Group("h", slog.String("b", "c")), slog.Group("", slog.Int("inl", 2))),
		slog.Group("", slog.Int("inlined", 3)),
		slog.Group("emptyish", slog.Group("")),
		slog.Any("source", &slog.Source{Function: "f", File: "x.go", Line: 7}),
		slog.Any("nosource", &slog.Source{}),
		{},
	}
}

// slogCase is one configuration and one record, written through both
// slog.JSONHandler and SlogHandler.
type slogCase struct {
	name  string
	opts  *slog.HandlerOptions
	with  func(slog.Handler) slog.Handler // WithAttrs and WithGroup calls
	level slog.Level
	time  time.Time
	pc    bool
	attrs []slog.Attr
}

func slogCases() []slogCase {
	all := &slog.HandlerOptions{Level: slog.Level(-100)}
	removeTime := func(gs []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey && len(gs) == 0 {
			return slog.Attr{}
		}
		return a
	}
	var cases []slogCase
	for l := slog.LevelDebug - 9; l <= slog.LevelError+9; l++ {
		cases = append(cases, slogCase{name: "level " + l.String(), opts: all, level: l, time: testTime,
			attrs: []slog.Attr{slog.Int("n", int(l))}})
	}
	cases = append(cases,
		slogCase{name: "no attrs", level: slog.LevelInfo, time: testTime},
		slogCase{name: "zero time", level: slog.LevelInfo},
		slogCase{name: "every kind", level: slog.LevelInfo, time: testTime, attrs: allKinds()},
		slogCase{name: "more than five attrs", level: slog.LevelWarn, time: testTime, attrs: allKinds()[:9]},
		slogCase{name: "with attrs", level: slog.LevelInfo, time: testTime, attrs: allKinds()[:3],
			with: func(h slog.Handler) slog.Handler { return h.WithAttrs(allKinds()) }},
		slogCase{name: "with empty groups only", level: slog.LevelInfo, time: testTime, attrs: []slog.Attr{slog.Int("a", 1)},
			with: func(h slog.Handler) slog.Handler { return h.WithAttrs([]slog.Attr{slog.Group("e")}) }},
		slogCase{name: "with group", level: slog.LevelInfo, time: testTime, attrs: allKinds(),
			with: func(h slog.Handler) slog.Handler { return h.WithGroup("req") }},
		slogCase{name: "with group, record without attrs", level: slog.LevelInfo, time: testTime,
			with: func(h slog.Handler) slog.Handler { return h.WithGroup("req") }},
		slogCase{name: "with group and attrs, record without attrs", level: slog.LevelInfo, time: testTime,
			with: func(h slog.Handler) slog.Handler {
				return h.WithAttrs([]slog.Attr{slog.Int("a", 1)}).WithGroup("req").WithAttrs([]slog.Attr{slog.Int("b", 2)}).WithGroup("inner")
			}},
		slogCase{name: "nested with", level: slog.LevelError, time: testTime, attrs: []slog.Attr{slog.Int("z", 26), slog.Group("gg", slog.Int("y", 25))},
			with: func(h slog.Handler) slog.Handler {
				return h.WithAttrs([]slog.Attr{slog.Int("a", 1)}).WithGroup("g1").WithGroup("g2").
					WithAttrs([]slog.Attr{slog.String("b", "x")}).WithAttrs([]slog.Attr{slog.String("c", "y")}).
					WithGroup("g\"3").WithAttrs(nil)
			}},
		slogCase{name: "with group of an empty name", level: slog.LevelInfo, time: testTime, attrs: []slog.Attr{slog.Int("a", 1)},
			with: func(h slog.Handler) slog.Handler { return h.WithGroup("") }},
		slogCase{name: "add source", opts: &slog.HandlerOptions{AddSource: true}, level: slog.LevelInfo, time: testTime, pc: true,
			attrs: []slog.Attr{slog.Int("a", 1)}},
		slogCase{name: "add source without pc", opts: &slog.HandlerOptions{AddSource: true}, level: slog.LevelInfo, time: testTime},
		slogCase{name: "level option", opts: &slog.HandlerOptions{Level: slog.LevelWarn}, level: slog.LevelWarn, time: testTime},
		slogCase{name: "replace attr: no time", opts: &slog.HandlerOptions{ReplaceAttr: removeTime}, level: slog.LevelInfo, time: testTime,
			attrs: allKinds()},
		slogCase{name: "replace attr: everything", level: slog.LevelDebug, time: testTime, pc: true, attrs: allKinds(),
			opts: &slog.HandlerOptions{AddSource: true, Level: slog.LevelDebug, ReplaceAttr: func(gs []string, a slog.Attr) slog.Attr {
				switch {
				case a.Key == slog.LevelKey && len(gs) == 0:
					return slog.String("severity", a.Value.Any().(slog.Level).String())
				case a.Key == slog.MessageKey && len(gs) == 0:
					return slog.String("message", a.Value.String())
				case a.Key == slog.TimeKey && len(gs) == 0:
					return slog.Int64("ts", a.Value.Time().Unix())
				case a.Key == "file" || a.Key == "line":
					return slog.Attr{} // of the source group
				case a.Key == "i":
					return slog.Any("i", token("x")) // unresolved: resolved after
				case a.Key == "u64":
					return slog.Group("u64", slog.Uint64("v", a.Value.Uint64()))
				}
				return slog.String(a.Key, strings.Join(gs, "/")+":"+a.Value.Kind().String())
			}},
			with: func(h slog.Handler) slog.Handler {
				return h.WithAttrs([]slog.Attr{slog.Int("a", 1)}).WithGroup("g1").WithAttrs([]slog.Attr{slog.String("b", "x")}).WithGroup("g2")
			}},
		slogCase{name: "replace attr removes the record's attrs", level: slog.LevelInfo, time: testTime,
			attrs: []slog.Attr{slog.Int("drop", 1), slog.Int("drop", 2)},
			opts: &slog.HandlerOptions{ReplaceAttr: func(gs []string, a slog.Attr) slog.Attr {
				if a.Key == "drop" {
					return slog.Attr{}
				}
				return a
			}},
			with: func(h slog.Handler) slog.Handler {
				return h.WithAttrs([]slog.Attr{slog.Int("a", 1)}).WithGroup("g1").WithAttrs([]slog.Attr{slog.Int("drop", 3)}).WithGroup("g2")
			}},
	)
	return cases
}

func (c slogCase) record() slog.Record {
	var pc uintptr
	if c.pc {
		var pcs [1]uintptr
		runtime.Callers(1, pcs[:])
		pc = pcs[0]
	}
	r := slog.NewRecord(c.time, c.level, "message \"quoted\"\n", pc)
	r.AddAttrs(c.attrs...)
	return r
}

func (c slogCase) handler(h slog.Handler) slog.Handler {
	if c.with != nil {
		return c.with(h)
	}
	return h
}

// TestSlogHandlerMatchesJSONHandler: for every case, SlogHandler's record
// is the line slog.JSONHandler writes for the same record, byte for byte,
// and it carries the record's level.
func TestSlogHandlerMatchesJSONHandler(t *testing.T) {
	for _, keepNewline := range []bool{false, true} {
		t.Run(fmt.Sprint("keepNewline=", keepNewline), func(t *testing.T) {
			w, dir := openLog(t, &mmaplog.Options{KeepNewline: keepNewline})
			var want []string
			var levels []slog.Level
			for _, c := range slogCases() {
				var buf bytes.Buffer
				ref := c.handler(slog.NewJSONHandler(&buf, c.opts))
				h := c.handler(mmaplog.NewSlogHandler(w, c.opts))
				r := c.record()
				if ref.Enabled(context.Background(), c.level) != h.Enabled(context.Background(), c.level) {
					t.Fatalf("%s: Enabled differs", c.name)
				}
				if err := ref.Handle(context.Background(), r); err != nil {
					t.Fatal(err)
				}
				if err := h.Handle(context.Background(), r); err != nil {
					t.Fatalf("%s: %v", c.name, err)
				}
				line := buf.String()
				if !keepNewline {
					line = strings.TrimSuffix(line, "\n")
				}
				want = append(want, line)
				levels = append(levels, c.level)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			recs := readRecords(t, dir)
			if len(recs) != len(want) {
				t.Fatalf("%d records, want %d", len(recs), len(want))
			}
			for i, c := range slogCases() {
				if got := string(recs[i].Payload); got != want[i] {
					t.Errorf("%s:\n got %s\nwant %s", c.name, got, want[i])
				}
				if got, exp := mmaplog.Level(recs[i].Type), mmaplog.LevelFromSlog(levels[i]); got != exp {
					t.Errorf("%s: level %v, want %v", c.name, got, exp)
				}
			}
		})
	}
}

// TestSlogHandlerEmptiedGroup: where ReplaceAttr removes every attribute of
// a group, SlogHandler writes valid JSON (JSONHandler drops the comma after
// it) and gives ReplaceAttr the right groups afterwards.
func TestSlogHandlerEmptiedGroup(t *testing.T) {
	w, dir := openLog(t, nil)
	var groups []string
	h := mmaplog.NewSlogHandler(w, &slog.HandlerOptions{ReplaceAttr: func(gs []string, a slog.Attr) slog.Attr {
		switch a.Key {
		case slog.TimeKey:
			return slog.Attr{}
		case "drop":
			return slog.Attr{}
		case "b":
			groups = append(groups, strings.Join(gs, "/"))
		}
		return a
	}})
	slog.New(h).WithGroup("w").Info("m", "a", 1, slog.Group("g", "drop", 1, slog.Group("h", "drop", 2)), "b", 2)
	w.Close()
	recs := readRecords(t, dir)
	const want = `{"level":"INFO","msg":"m","w":{"a":1,"b":2}}`
	if len(recs) != 1 || string(recs[0].Payload) != want {
		t.Fatalf("got %d records: %v, want one: %s", len(recs), recs, want)
	}
	if len(groups) != 1 || groups[0] != "w" {
		t.Fatalf("ReplaceAttr saw groups %q for b, want [w]", groups)
	}
}

// TestSlogLevels: every slog level, named or in between, lands in the
// record header as LevelFromSlog maps it, which rounds down to a named
// level (below Debug: trace; at or above Error: error).
func TestSlogLevels(t *testing.T) {
	cases := []struct {
		l    slog.Level
		want mmaplog.Level
	}{
		{slog.LevelDebug - 8, mmaplog.LevelTrace},
		{slog.LevelDebug - 1, mmaplog.LevelTrace},
		{slog.LevelDebug, mmaplog.LevelDebug},
		{slog.LevelDebug + 3, mmaplog.LevelDebug},
		{slog.LevelInfo, mmaplog.LevelInfo},
		{slog.LevelInfo + 2, mmaplog.LevelInfo},
		{slog.LevelWarn, mmaplog.LevelWarn},
		{slog.LevelError - 1, mmaplog.LevelWarn},
		{slog.LevelError, mmaplog.LevelError},
		{slog.LevelError + 4, mmaplog.LevelError},
		{slog.Level(math.MaxInt), mmaplog.LevelError},
		{slog.Level(math.MinInt), mmaplog.LevelTrace},
	}
	w, dir := openLog(t, nil)
	log := slog.New(mmaplog.NewSlogHandler(w, &slog.HandlerOptions{Level: slog.Level(math.MinInt)}))
	for _, c := range cases {
		if got := mmaplog.LevelFromSlog(c.l); got != c.want {
			t.Errorf("LevelFromSlog(%d) = %v, want %v", c.l, got, c.want)
		}
		log.Log(context.Background(), c.l, "m")
	}
	w.Close()
	recs := readRecords(t, dir)
	if len(recs) != len(cases) {
		t.Fatalf("%d records, want %d", len(recs), len(cases))
	}
	for i, c := range cases {
		if got := mmaplog.Level(recs[i].Type); got != c.want {
			t.Errorf("slog level %d: record level %v, want %v", c.l, got, c.want)
		}
	}
}

// TestSlogHandlerErrors: Handle returns the Writer's errors.
func TestSlogHandlerErrors(t *testing.T) {
	w, _ := openLog(t, &mmaplog.Options{MaxRecordSize: 100})
	h := mmaplog.NewSlogHandler(w, nil)
	r := slog.NewRecord(testTime, slog.LevelInfo, strings.Repeat("x", 100), 0)
	if err := h.Handle(context.Background(), r); !errors.Is(err, mmaplog.ErrTooLarge) {
		t.Fatalf("Handle of a large record: %v, want ErrTooLarge", err)
	}
	w.Close()
	r = slog.NewRecord(testTime, slog.LevelInfo, "m", 0)
	if err := h.Handle(context.Background(), r); !errors.Is(err, mmaplog.ErrClosed) {
		t.Fatalf("Handle after Close: %v, want ErrClosed", err)
	}
}

// TestSlogHandlerConcurrent: many goroutines log through handlers that
// share their WithAttrs parents; every record arrives whole, as valid JSON,
// with the level its payload names.
func TestSlogHandlerConcurrent(t *testing.T) {
	const goroutines, each = 16, 500
	w, dir := openLog(t, &mmaplog.Options{SegmentSize: 256 << 10}) // rotations too
	base := slog.New(mmaplog.NewSlogHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})).With("service", "checkout")
	levels := []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError}
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			log := base.WithGroup("req").With("goroutine", g)
			for i := range each {
				log.Log(context.Background(), levels[(g+i)%len(levels)], "handled", "i", i, slog.Group("user", "id", "u-7"))
			}
		}()
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	recs := readRecords(t, dir)
	if len(recs) != goroutines*each {
		t.Fatalf("%d records, want %d", len(recs), goroutines*each)
	}
	seen := make(map[[2]int]bool)
	for _, rec := range recs {
		var ev struct {
			Level   string
			Service string
			Req     struct {
				Goroutine, I int
				User         struct{ ID string }
			}
		}
		if err := json.Unmarshal(rec.Payload, &ev); err != nil {
			t.Fatalf("record %d: %v: %s", rec.Seq, err, rec.Payload)
		}
		var l slog.Level
		if err := l.UnmarshalText([]byte(ev.Level)); err != nil {
			t.Fatal(err)
		}
		if got, want := mmaplog.Level(rec.Type), mmaplog.LevelFromSlog(l); got != want {
			t.Fatalf("record %d: level %v, payload says %s", rec.Seq, got, ev.Level)
		}
		if ev.Service != "checkout" || ev.Req.User.ID != "u-7" {
			t.Fatalf("record %d: %s", rec.Seq, rec.Payload)
		}
		k := [2]int{ev.Req.Goroutine, ev.Req.I}
		if seen[k] {
			t.Fatalf("record %d: duplicate %v", rec.Seq, k)
		}
		seen[k] = true
	}
}

// TestSlogHandlerAllocs: a log call allocates nothing in the steady state,
// with strings longer than any stack buffer, groups and WithAttrs, at
// every level; with ReplaceAttr too when it returns values as they are.
// Through slog.Logger the call has five attributes (a Record holds five
// without allocating, for any handler); Handle alone is given a record
// of many.
func TestSlogHandlerAllocs(t *testing.T) {
	if raceOn {
		t.Log("under -race the instrumentation allocates: the counts are not checked")
	}
	w, _ := openLog(t, nil)
	defer w.Close()
	long := strings.Repeat("a long value with \"quotes\" and é ", 8)
	five := []slog.Attr{
		slog.String("path", long), slog.Int("status", 200), slog.Float64("latency_ms", 3.25),
		slog.Group("user", slog.String("id", "u-7"), slog.Uint64("n", 42), slog.Bool("ok", true)),
		slog.Any("err", io.ErrUnexpectedEOF),
	}
	more := append([]slog.Attr{slog.Duration("d", time.Second), slog.Time("at", testTime), slog.Float64("tiny", 1e-9)}, five...)
	keep := func(_ []string, a slog.Attr) slog.Attr { return a }
	ctx := context.Background()
	for _, opts := range []*slog.HandlerOptions{{Level: slog.LevelDebug}, {Level: slog.LevelDebug, ReplaceAttr: keep}} {
		h := mmaplog.NewSlogHandler(w, opts).WithAttrs([]slog.Attr{slog.String("service", "checkout")}).WithGroup("req")
		log := slog.New(h)
		for _, l := range []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError, slog.LevelError + 2} {
			if opts.ReplaceAttr != nil && (l < 0 || l > 255) {
				continue // slog.Any boxes the level for ReplaceAttr, in JSONHandler too
			}
			if n := testing.AllocsPerRun(1000, func() { log.LogAttrs(ctx, l, long, five...) }); n != 0 && !raceOn {
				t.Errorf("%v, ReplaceAttr %v: %v allocations per log call, want 0", l, opts.ReplaceAttr != nil, n)
			}
			r := slog.NewRecord(testTime, l, long, 0)
			r.AddAttrs(more...)
			if n := testing.AllocsPerRun(1000, func() { h.Handle(ctx, r) }); n != 0 && !raceOn {
				t.Errorf("%v, ReplaceAttr %v: %v allocations per Handle, want 0", l, opts.ReplaceAttr != nil, n)
			}
		}
	}
}

// BenchmarkSlog compares one log call (five attributes of several kinds,
// one a group, and a WithAttrs attribute) through SlogHandler into a
// Writer with slog.JSONHandler into io.Discard (the encoding alone) and
// into the Writer (no level in the header), from one goroutine and from
// all CPUs at once. (JSONHandler's allocation is the float64 it boxes for
// encoding/json.) cpu-ns/op is the process's CPU time per call, less
// disturbed than ns/op by other processes on a busy machine.
func BenchmarkSlog(b *testing.B) {
	attrs := []slog.Attr{
		slog.String("path", "/api/v1/checkout"), slog.Int("status", 200), slog.Float64("latency_ms", 3.25),
		slog.Duration("took", 3250*time.Microsecond),
		slog.Group("order", slog.String("user", "u-1042"), slog.Int("id", 1042), slog.Bool("paid", true)),
	}
	run := func(b *testing.B, h slog.Handler, parallel bool) {
		log := slog.New(h).With("service", "checkout")
		ctx := context.Background()
		b.ReportAllocs()
		defer reportCPU(b)()
		if !parallel {
			for range b.N {
				log.LogAttrs(ctx, slog.LevelInfo, "order placed", attrs...)
			}
			return
		}
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				log.LogAttrs(ctx, slog.LevelInfo, "order placed", attrs...)
			}
		})
	}
	for _, parallel := range []bool{false, true} {
		suffix := ""
		if parallel {
			suffix = "-parallel"
		}
		b.Run("JSONHandler-discard"+suffix, func(b *testing.B) {
			run(b, slog.NewJSONHandler(io.Discard, nil), parallel)
		})
		b.Run("JSONHandler-writer"+suffix, func(b *testing.B) {
			w, _ := openLog(b, nil)
			defer w.Close()
			run(b, slog.NewJSONHandler(w, nil), parallel)
		})
		b.Run("SlogHandler"+suffix, func(b *testing.B) {
			w, _ := openLog(b, nil)
			defer w.Close()
			run(b, mmaplog.NewSlogHandler(w, nil), parallel)
		})
	}
}

// reportCPU resets the benchmark timer and returns a function that reports
// the process's CPU time (user and system) per operation since then.
func reportCPU(b *testing.B) func() {
	cpu := func() time.Duration {
		var ru unix.Rusage
		if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
			b.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	b.ResetTimer()
	start := cpu()
	return func() {
		b.StopTimer()
		b.ReportMetric(float64(cpu()-start)/float64(b.N), "cpu-ns/op")
	}
}
