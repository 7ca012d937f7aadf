package mmaplog

import (
	"log/slog"

	"github.com/rs/zerolog"
)

// Level is the severity stored in a record's type byte, so that a reader can
// filter records without parsing their payload. 0 means no level.
type Level uint8

// Levels, from least to most severe.
const (
	LevelNone Level = iota
	LevelTrace
	LevelDebug
	LevelInfo
	LevelWarn
	LevelError
	LevelFatal
	LevelPanic
)

var levelNames = [...]string{"", "trace", "debug", "info", "warn", "error", "fatal", "panic"}

// String returns the level's lowercase name ("" for LevelNone).
func (l Level) String() string {
	if int(l) < len(levelNames) {
		return levelNames[l]
	}
	return "level(" + itoa(int(l)) + ")"
}

// ParseLevel returns the level with the given name as String gives it.
func ParseLevel(s string) (Level, bool) {
	for i, n := range levelNames {
		if n == s && i > 0 {
			return Level(i), true
		}
	}
	return LevelNone, false
}

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
