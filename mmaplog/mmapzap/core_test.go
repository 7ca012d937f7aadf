package mmapzap_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/sys/unix"

	"github.com/mmaplog/mmaplog/internal/testutil"
	"github.com/mmaplog/mmaplog/mmaplog"
	"github.com/mmaplog/mmaplog/mmaplog/mmapzap"
	"github.com/mmaplog/mmaplog/tail"
)

func TestMain(m *testing.M) { testutil.VerifyTestMain(m) }

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

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time                         { return c.t }
func (c fixedClock) NewTicker(d time.Duration) *time.Ticker { return time.NewTicker(d) }

var testTime = time.Date(2026, 11, 23, 11, 36, 48, 123456789, time.UTC)

func productionEncoder() zapcore.Encoder {
	return zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
}

// logEveryLevel logs one entry at each zap level through log, recovering
// from Panic and DPanic (in development) and Fatal (its hook panics).
func logEveryLevel(log *zap.Logger) {
	calls := []func(string, ...zap.Field){log.Debug, log.Info, log.Warn, log.Error, log.DPanic, log.Panic, log.Fatal}
	for i, f := range calls {
		func() {
			defer func() { recover() }()
			f("entry", zap.Int("i", i))
		}()
	}
	log.Log(zapcore.DebugLevel-1, "below debug")
}

// TestLevels: every zap level lands in the record header as Level maps it.
func TestLevels(t *testing.T) {
	want := []mmaplog.Level{
		mmaplog.LevelDebug, mmaplog.LevelInfo, mmaplog.LevelWarn, mmaplog.LevelError,
		mmaplog.LevelError, mmaplog.LevelPanic, mmaplog.LevelFatal, mmaplog.LevelTrace,
	}
	w, dir := openLog(t, nil)
	log := zap.New(mmapzap.NewCore(productionEncoder(), w, zapcore.DebugLevel-1), zap.WithFatalHook(zapcore.WriteThenPanic))
	logEveryLevel(log)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	recs := readRecords(t, dir)
	if len(recs) != len(want) {
		t.Fatalf("%d records, want %d", len(recs), len(want))
	}
	for i, rec := range recs {
		if got := mmaplog.Level(rec.Type); got != want[i] {
			t.Errorf("record %s: level %v, want %v", rec.Payload, got, want[i])
		}
	}
	for l, want := range map[zapcore.Level]mmaplog.Level{
		zapcore.DebugLevel - 10: mmaplog.LevelTrace,
		zapcore.FatalLevel + 1:  mmaplog.LevelFatal,
		127:                     mmaplog.LevelFatal,
	} {
		if got := mmapzap.Level(l); got != want {
			t.Errorf("Level(%d) = %v, want %v", l, got, want)
		}
	}
}

// TestMatchesZapCore: the records are the lines zapcore.NewCore writes for
// the same logger calls (fields of many kinds, With, Named, namespaces,
// caller, stack traces), with KeepNewline or without.
func TestMatchesZapCore(t *testing.T) {
	for _, keepNewline := range []bool{false, true} {
		t.Run(fmt.Sprint("keepNewline=", keepNewline), func(t *testing.T) {
			w, dir := openLog(t, &mmaplog.Options{KeepNewline: keepNewline})
			var buf bytes.Buffer
			opts := []zap.Option{zap.WithClock(fixedClock{testTime}), zap.AddCaller(), zap.AddStacktrace(zapcore.ErrorLevel),
				zap.WithFatalHook(zapcore.WriteThenPanic)}
			cfg := zap.NewProductionEncoderConfig()
			cfg.EncodeTime = zapcore.RFC3339NanoTimeEncoder
			loggers := []*zap.Logger{
				zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(cfg), zapcore.AddSync(&buf), zapcore.DebugLevel-1), opts...),
				zap.New(mmapzap.NewCore(zapcore.NewJSONEncoder(cfg), w, zapcore.DebugLevel-1), opts...),
			}
			for _, log := range loggers {
				log = log.Named("svc").With(zap.String("service", "checkout"), zap.Namespace("req"), zap.Int("id", 7))
				log.Info("fields", zap.String("esc", "quote\" \n\t<html> \xff é"), zap.Int64("i", -1), zap.Uint64("u", 1<<63),
					zap.Float64("f", 3.25), zap.Bool("b", true), zap.Duration("d", time.Second), zap.Time("t", testTime),
					zap.Error(errors.New("it failed")), zap.Strings("ss", []string{"a", "b"}), zap.Any("m", map[string]int{"k": 1}),
					zap.Binary("bin", []byte{0, 1, 2}), zap.ByteString("bs", []byte("text")), zap.Namespace("inner"), zap.Int("deep", 1))
				log.With(zap.Int("more", 2)).Warn("with more")
				logEveryLevel(log)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			lines := strings.SplitAfter(buf.String(), "\n")
			lines = lines[:len(lines)-1]
			recs := readRecords(t, dir)
			if len(recs) != len(lines) {
				t.Fatalf("%d records, zapcore.NewCore wrote %d lines", len(recs), len(lines))
			}
			for i, rec := range recs {
				want := lines[i]
				if !keepNewline {
					want = strings.TrimSuffix(want, "\n")
				}
				// The callers differ in their line only: both logged
				// from the same lines of the same loop.
				if got := string(rec.Payload); got != want {
					t.Errorf("record %d:\n got %s\nwant %s", rec.Seq, got, want)
				}
			}
		})
	}
}

// TestWriteErrors: the Writer's errors reach zap's ErrorOutput.
func TestWriteErrors(t *testing.T) {
	w, _ := openLog(t, &mmaplog.Options{MaxRecordSize: 200})
	var errOut bytes.Buffer
	log := zap.New(mmapzap.NewCore(productionEncoder(), w, zapcore.InfoLevel), zap.ErrorOutput(zapcore.AddSync(&errOut)))
	log.Info(strings.Repeat("x", 200))
	if !strings.Contains(errOut.String(), mmaplog.ErrTooLarge.Error()) {
		t.Fatalf("ErrorOutput has %q, want ErrTooLarge", errOut.String())
	}
	w.Close()
	c := mmapzap.NewCore(productionEncoder(), w, zapcore.InfoLevel)
	if err := c.Write(zapcore.Entry{Level: zapcore.InfoLevel, Message: "m"}, nil); !errors.Is(err, mmaplog.ErrClosed) {
		t.Fatalf("Write after Close: %v, want ErrClosed", err)
	}
	if err := c.Sync(); !errors.Is(err, mmaplog.ErrClosed) {
		t.Fatalf("Sync after Close: %v, want ErrClosed", err)
	}
}

// TestEnabled: the core enables what its LevelEnabler does, and reports
// its level to zapcore.LevelOf.
func TestEnabled(t *testing.T) {
	w, dir := openLog(t, nil)
	lvl := zap.NewAtomicLevelAt(zapcore.WarnLevel)
	c := mmapzap.NewCore(productionEncoder(), w, lvl)
	if got := zapcore.LevelOf(c); got != zapcore.WarnLevel {
		t.Fatalf("LevelOf = %v, want warn", got)
	}
	log := zap.New(c)
	log.Info("dropped")
	log.Warn("kept")
	lvl.SetLevel(zapcore.InfoLevel)
	log.Info("kept too")
	w.Close()
	recs := readRecords(t, dir)
	if len(recs) != 2 || !bytes.Contains(recs[0].Payload, []byte(`"kept"`)) || !bytes.Contains(recs[1].Payload, []byte(`"kept too"`)) {
		t.Fatalf("records %v", recs)
	}
}

// TestConcurrent: many goroutines log through cores sharing a parent; every
// record arrives whole, as valid JSON, with the level its payload names.
func TestConcurrent(t *testing.T) {
	const goroutines, each = 16, 500
	w, dir := openLog(t, &mmaplog.Options{SegmentSize: 256 << 10}) // rotations too
	base := zap.New(mmapzap.NewCore(productionEncoder(), w, zapcore.DebugLevel)).With(zap.String("service", "checkout"))
	levels := []zapcore.Level{zapcore.DebugLevel, zapcore.InfoLevel, zapcore.WarnLevel, zapcore.ErrorLevel}
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			log := base.With(zap.Int("goroutine", g))
			for i := range each {
				log.Log(levels[(g+i)%len(levels)], "handled", zap.Int("i", i))
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
			Level, Service string
			Goroutine, I   int
		}
		if err := json.Unmarshal(rec.Payload, &ev); err != nil {
			t.Fatalf("record %d: %v: %s", rec.Seq, err, rec.Payload)
		}
		var l zapcore.Level
		if err := l.UnmarshalText([]byte(ev.Level)); err != nil {
			t.Fatal(err)
		}
		if got, want := mmaplog.Level(rec.Type), mmapzap.Level(l); got != want {
			t.Fatalf("record %d: level %v, payload says %s", rec.Seq, got, ev.Level)
		}
		k := [2]int{ev.Goroutine, ev.I}
		if ev.Service != "checkout" || seen[k] {
			t.Fatalf("record %d: %s (duplicate: %v)", rec.Seq, rec.Payload, seen[k])
		}
		seen[k] = true
	}
}

// TestAllocs: the core allocates nothing in the steady state, at every
// level up to Error. Write is called as zap.Logger calls it; through
// zap.Logger a call with fields allocates once, with zap's own core too
// (the variadic fields escape into the Core interface): the logger's
// figure must be zap's own core's, which is 0 for a call without fields.
func TestAllocs(t *testing.T) {
	if raceOn {
		t.Log("under -race the instrumentation allocates: the counts are not checked")
	}
	w, _ := openLog(t, nil)
	defer w.Close()
	long := strings.Repeat("a long value with \"quotes\" and é ", 8)
	fields := []zap.Field{zap.String("path", long), zap.Int("status", 200), zap.Float64("latency_ms", 3.25),
		zap.Bool("ok", true), zap.Duration("took", time.Millisecond), zap.Error(io.ErrUnexpectedEOF)}
	c := mmapzap.NewCore(productionEncoder(), w, zapcore.DebugLevel).With([]zap.Field{zap.String("service", "checkout")})
	log := zap.New(c)
	ref := zap.New(zapcore.NewCore(productionEncoder(), zapcore.AddSync(io.Discard), zapcore.DebugLevel)).With(zap.String("service", "checkout"))
	for _, l := range []zapcore.Level{zapcore.DebugLevel, zapcore.InfoLevel, zapcore.WarnLevel, zapcore.ErrorLevel} {
		ent := zapcore.Entry{Level: l, Time: testTime, Message: long}
		if n := testing.AllocsPerRun(1000, func() { c.Write(ent, fields) }); n != 0 && !raceOn {
			t.Errorf("%v: %v allocations per Write, want 0", l, n)
		}
		if n := testing.AllocsPerRun(1000, func() { log.Log(l, long) }); n != 0 && !raceOn {
			t.Errorf("%v: %v allocations per log call without fields, want 0", l, n)
		}
		call := func(log *zap.Logger) func() {
			return func() {
				log.Log(l, long, zap.String("path", long), zap.Int("status", 200), zap.Float64("latency_ms", 3.25),
					zap.Bool("ok", true), zap.Duration("took", time.Millisecond), zap.Error(io.ErrUnexpectedEOF))
			}
		}
		got, want := testing.AllocsPerRun(1000, call(log)), testing.AllocsPerRun(1000, call(ref))
		if got != want && !raceOn {
			t.Errorf("%v: %v allocations per log call with fields, zap's own core into io.Discard %v", l, got, want)
		}
	}
}

// BenchmarkZap compares one log call (six fields and a With field) through
// NewCore into a Writer with zap's own core into io.Discard (the encoding
// alone) and into the Writer as a WriteSyncer (no level in the header),
// from one goroutine and from all CPUs at once. cpu-ns/op is the process's
// CPU time per call, less disturbed than ns/op by other processes on a busy
// machine. (The allocation is zap's: the variadic fields escape.)
func BenchmarkZap(b *testing.B) {
	run := func(b *testing.B, c zapcore.Core, parallel bool) {
		log := zap.New(c).With(zap.String("service", "checkout"))
		call := func() {
			log.Info("order placed", zap.String("path", "/api/v1/checkout"), zap.Int("status", 200),
				zap.Float64("latency_ms", 3.25), zap.Duration("took", 3250*time.Microsecond),
				zap.String("user", "u-1042"), zap.Int("order", 1042))
		}
		b.ReportAllocs()
		defer reportCPU(b)()
		if !parallel {
			for range b.N {
				call()
			}
			return
		}
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				call()
			}
		})
	}
	for _, parallel := range []bool{false, true} {
		suffix := ""
		if parallel {
			suffix = "-parallel"
		}
		b.Run("zapcore-discard"+suffix, func(b *testing.B) {
			run(b, zapcore.NewCore(productionEncoder(), zapcore.AddSync(io.Discard), zapcore.InfoLevel), parallel)
		})
		b.Run("zapcore-writer"+suffix, func(b *testing.B) {
			w, _ := openLog(b, nil)
			defer w.Close()
			run(b, zapcore.NewCore(productionEncoder(), w, zapcore.InfoLevel), parallel)
		})
		b.Run("mmapzap"+suffix, func(b *testing.B) {
			w, _ := openLog(b, nil)
			defer w.Close()
			run(b, mmapzap.NewCore(productionEncoder(), w, zapcore.InfoLevel), parallel)
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
