package mmapzap

import (
	"go.uber.org/zap/zapcore"

	"github.com/mmaplog/mmaplog/mmaplog"
)

// NewCore returns a zapcore.Core that encodes entries enabled by enab with
// enc and appends each as one record of w, with Level(entry.Level) as the
// record's level. It behaves as zapcore.NewCore(enc, w, enab) does,
// syncing w after entries above ErrorLevel, but returns Sync's error from
// Write (zap reports it to its ErrorOutput) instead of ignoring it: w.Sync
// also returns the errors of the Writer's background work.
func NewCore(enc zapcore.Encoder, w *mmaplog.Writer, enab zapcore.LevelEnabler) zapcore.Core {
	return &core{LevelEnabler: enab, enc: enc, w: w}
}

type core struct {
	zapcore.LevelEnabler
	enc zapcore.Encoder
	w   *mmaplog.Writer
}

// Level returns the minimum enabled level, for zapcore.LevelOf.
func (c *core) Level() zapcore.Level { return zapcore.LevelOf(c.LevelEnabler) }

func (c *core) With(fields []zapcore.Field) zapcore.Core {
	clone := &core{LevelEnabler: c.LevelEnabler, enc: c.enc.Clone(), w: c.w}
	for i := range fields {
		fields[i].AddTo(clone.enc)
	}
	return clone
}

func (c *core) Check(ent zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(ent.Level) {
		return ce.AddCore(ent, c)
	}
	return ce
}

func (c *core) Write(ent zapcore.Entry, fields []zapcore.Field) error {
	buf, err := c.enc.EncodeEntry(ent, fields)
	if err != nil {
		return err
	}
	_, err = c.w.AppendLine(Level(ent.Level), buf.Bytes())
	buf.Free()
	if err != nil {
		return err
	}
	if ent.Level > zapcore.ErrorLevel {
		// The program may be about to exit or panic.
		return c.w.Sync()
	}
	return nil
}

func (c *core) Sync() error { return c.w.Sync() }

// Level maps a zap level to an mmaplog level, by name: Debug, Info, Warn,
// Error, Panic and Fatal are the levels of the same names. DPanic, "a
// particularly important error" that panics only in development, is an
// error; levels below Debug are trace, and levels above Fatal fatal.
func Level(l zapcore.Level) mmaplog.Level {
	switch {
	case l < zapcore.DebugLevel:
		return mmaplog.LevelTrace
	case l == zapcore.DebugLevel:
		return mmaplog.LevelDebug
	case l == zapcore.InfoLevel:
		return mmaplog.LevelInfo
	case l == zapcore.WarnLevel:
		return mmaplog.LevelWarn
	case l == zapcore.ErrorLevel, l == zapcore.DPanicLevel:
		return mmaplog.LevelError
	case l == zapcore.PanicLevel:
		return mmaplog.LevelPanic
	}
	return mmaplog.LevelFatal
}
