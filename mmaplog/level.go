package mmaplog

import (
	"log/slog"

	"github.com/rs/zerolog"

	"github.com/mmaplog/mmaplog/ring"
)

// Level is the severity stored in a record's type byte, so that a reader can
// filter records without parsing their payload. 0 means no level. It is
// ring.Level: the byte's meaning belongs to the record format, which readers
// and shippers use without this package.
type Level = ring.Level

// Levels, from least to most severe.
const (
	LevelNone  = ring.LevelNone
	LevelTrace = ring.LevelTrace
	LevelDebug = ring.LevelDebug
	LevelInfo  = ring.LevelInfo
	LevelWarn  = ring.LevelWarn
	LevelError = ring.LevelError
	LevelFatal = ring.LevelFatal
	LevelPanic = ring.LevelPanic
)

// ParseLevel returns the level with the given name as Level.String gives it.
func ParseLevel(s string) (Level, bool) { return ring.ParseLevel(s) }

// LevelFromZerolog maps a zerolog level to a Level.
func LevelFromZerolog(l zerolog.Level) Level {
	switch l {
	case zerolog.TraceLevel:
		return LevelTrace
	case zerolog.DebugLevel:
		return LevelDebug
	case zerolog.InfoLevel:
		return LevelInfo
	case zerolog.WarnLevel:
		return LevelWarn
	case zerolog.ErrorLevel:
		return LevelError
	case zerolog.FatalLevel:
		return LevelFatal
	case zerolog.PanicLevel:
		return LevelPanic
	}
	return LevelNone
}

// LevelFromSlog maps a log/slog level to a Level (levels between slog's named
// ones round down).
func LevelFromSlog(l slog.Level) Level {
	switch {
	case l < slog.LevelDebug:
		return LevelTrace
	case l < slog.LevelInfo:
		return LevelDebug
	case l < slog.LevelWarn:
		return LevelInfo
	case l < slog.LevelError:
		return LevelWarn
	}
	return LevelError
}
