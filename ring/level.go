package ring

import "strconv"

// Level is the severity stored in a record's type byte (offset 24 of the
// record header), so that a reader can filter or label records without
// parsing their payload. 0 means no level; the values 1 to 7 are the levels
// below, from least to most severe. docs/FORMAT.md describes the byte.
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

// Known reports whether l is one of the named levels (LevelNone excluded):
// a type byte a reader can turn into a level name.
func (l Level) Known() bool { return l > LevelNone && int(l) < len(levelNames) }

// String returns the level's lowercase name ("" for LevelNone), the names
// zerolog and the Elastic Common Schema's log.level use.
func (l Level) String() string {
	if int(l) < len(levelNames) {
		return levelNames[l]
	}
	return "level(" + strconv.Itoa(int(l)) + ")"
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
