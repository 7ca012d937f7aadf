package ship_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/mmaplog/mmaplog/mmaplog"
	"github.com/mmaplog/mmaplog/mmaplog/mmapzap"
	"github.com/mmaplog/mmaplog/ship"
	"github.com/mmaplog/mmaplog/tail"
)

// TestLogLevelFromLoggers: events of records written through log/slog's
// and zap's adapters carry the logger's level as ECS log.level, taken from
// the record header; records written through slog.JSONHandler into the
// Writer (an io.Writer, no level) carry none.
func TestLogLevelFromLoggers(t *testing.T) {
	dir := t.TempDir()
	w, err := mmaplog.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	var want []string // log.level per record, "" for none
	ctx := context.Background()

	sl := slog.New(mmaplog.NewSlogHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug - 4}))
	for l, name := range map[slog.Level]string{
		slog.LevelDebug - 4: "trace", slog.LevelDebug: "debug", slog.LevelInfo: "info", slog.LevelInfo + 1: "info",
		slog.LevelWarn: "warn", slog.LevelError: "error", slog.LevelError + 4: "error",
	} {
		sl.Log(ctx, l, "from slog")
		want = append(want, name)
	}

	zl := zap.New(mmapzap.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), w, zapcore.DebugLevel),
		zap.WithPanicHook(zapcore.WriteThenGoexit), zap.WithFatalHook(zapcore.WriteThenGoexit))
	for l, name := range map[zapcore.Level]string{
		zapcore.DebugLevel: "debug", zapcore.InfoLevel: "info", zapcore.WarnLevel: "warn", zapcore.ErrorLevel: "error",
		zapcore.DPanicLevel: "error", zapcore.PanicLevel: "panic", zapcore.FatalLevel: "fatal",
	} {
		done := make(chan struct{})
		go func() { // Panic and Fatal end the goroutine (Goexit) after writing
			defer close(done)
			zl.Log(l, "from zap")
		}()
		<-done
		want = append(want, name)
	}

	slog.New(slog.NewJSONHandler(w, nil)).Warn("through Write")
	want = append(want, "")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	enc, err := ship.NewEncoder(dir, "web-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := tail.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	n := 0
	for ; r.Next(); n++ {
		var ev struct {
			Msg string
			Log struct{ Level *string }
		}
		b := enc.Append(nil, r.Record())
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Fatalf("event %s: %v", b, err)
		}
		if n >= len(want) {
			t.Fatalf("more records than written: %s", b)
		}
		switch {
		case want[n] == "" && ev.Log.Level != nil:
			t.Errorf("event %s: log.level %q, want none", b, *ev.Log.Level)
		case want[n] != "" && (ev.Log.Level == nil || *ev.Log.Level != want[n]):
			t.Errorf("event %s: want log.level %q", b, want[n])
		}
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if n != len(want) {
		t.Fatalf("%d events, want %d", n, len(want))
	}
}
