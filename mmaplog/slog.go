package mmaplog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"reflect"
	"strconv"
	"sync"
	"time"

	"github.com/mmaplog/mmaplog/internal/jsonenc"
)

// SlogHandler is a log/slog Handler that writes each record into a Writer
// as one record, with the slog level in the record's type byte
// (LevelFromSlog), so that readers filter by level and the shipper sets the
// event's log.level without parsing the JSON.
//
// The JSON is byte for byte what slog.JSONHandler writes for the same
// record and options: the "time", "level", "source" and "msg" members,
// then the attributes, groups as nested objects, WithAttrs, WithGroup and
// HandlerOptions (Level, AddSource, ReplaceAttr) as JSONHandler has them.
// One exception: where ReplaceAttr removes every attribute of a group,
// JSONHandler writes the next member without its comma (invalid JSON);
// SlogHandler writes the comma.
// Unlike JSONHandler it takes no lock: records from many goroutines are
// appended at once. A log call allocates nothing unless a value needs
// encoding/json (a KindAny value other than an error or a slog.Level), an
// option asks for what allocates in JSONHandler too (AddSource, a
// ReplaceAttr that boxes values), or the record is larger than 16 KiB.
// (slog.Logger itself allocates for a call with more than five
// attributes, whatever the handler.)
//
// Handle returns the Writer's error (ErrTooLarge, ErrClosed); slog.Logger
// drops it, as it does JSONHandler's.
type SlogHandler struct {
	w    *Writer
	opts slog.HandlerOptions
	// pre holds the attributes given to WithAttrs, encoded, with the
	// groups opened before them (the first nOpen of groups).
	pre    []byte
	groups []string // every group given to WithGroup
	nOpen  int
}

// NewSlogHandler returns a SlogHandler writing into w with the given
// options (nil: the defaults, as for slog.NewJSONHandler).
func NewSlogHandler(w *Writer, opts *slog.HandlerOptions) *SlogHandler {
	h := &SlogHandler{w: w}
	if opts != nil {
		h.opts = *opts
	}
	return h
}

// Enabled reports whether records at level l are handled: those at or
// above HandlerOptions.Level (default slog.LevelInfo).
func (h *SlogHandler) Enabled(_ context.Context, l slog.Level) bool {
	minLevel := slog.LevelInfo
	if h.opts.Level != nil {
		minLevel = h.opts.Level.Level()
	}
	return l >= minLevel
}

// WithAttrs returns a handler whose records have h's attributes followed by
// as. They are encoded once, here.
func (h *SlogHandler) WithAttrs(as []slog.Attr) slog.Handler {
	empty := 0
	for _, a := range as {
		if isEmptyGroup(a.Value) {
			empty++
		}
	}
	if empty == len(as) {
		return h
	}
	h2 := h.clone()
	s := h2.newState(h2.pre)
	if len(s.buf) > 0 {
		s.sep = ","
		if s.buf[len(s.buf)-1] == '{' {
			s.sep = ""
		}
	}
	pos := len(s.buf)
	s.openGroups()
	if !s.appendAttrs(as) {
		s.buf = s.buf[:pos]
	} else {
		h2.nOpen = len(h2.groups)
	}
	h2.pre = s.buf
	return h2
}

// WithGroup returns a handler that puts the attributes that follow into a
// group (a nested object) called name.
func (h *SlogHandler) WithGroup(name string) slog.Handler {
	h2 := h.clone()
	h2.groups = append(h2.groups, name)
	return h2
}

func (h *SlogHandler) clone() *SlogHandler {
	return &SlogHandler{
		w:      h.w,
		opts:   h.opts,
		pre:    h.pre[:len(h.pre):len(h.pre)],
		groups: h.groups[:len(h.groups):len(h.groups)],
		nOpen:  h.nOpen,
	}
}

// Handle writes r into the Writer as one record whose level is
// LevelFromSlog(r.Level).
func (h *SlogHandler) Handle(_ context.Context, r slog.Record) error {
	s := statePool.Get().(*slogState)
	s.h, s.buf, s.sep = h, append(s.buf[:0], '{'), ""
	s.groups = s.groups[:0]
	rep := h.opts.ReplaceAttr
	// The built-in members are in no group: ReplaceAttr sees none.
	s.inGroups = false
	if !r.Time.IsZero() {
		t := r.Time.Round(0) // no monotonic reading, as in an Attr
		if rep == nil {
			s.appendKey(slog.TimeKey)
			s.appendTime(t)
		} else {
			s.appendAttr(slog.Time(slog.TimeKey, t))
		}
	}
	if rep == nil {
		s.appendKey(slog.LevelKey)
		s.buf = append(s.buf, '"')
		s.buf = appendSlogLevel(s.buf, r.Level)
		s.buf = append(s.buf, '"')
	} else {
		s.appendAttr(slog.Any(slog.LevelKey, r.Level))
	}
	if h.opts.AddSource {
		src := r.Source()
		if src == nil {
			src = &slog.Source{}
		}
		s.appendAttr(slog.Any(slog.SourceKey, src))
	}
	if rep == nil {
		s.appendKey(slog.MessageKey)
		s.appendString(r.Message)
	} else {
		s.appendAttr(slog.String(slog.MessageKey, r.Message))
	}
	s.inGroups = true
	s.groups = append(s.groups, h.groups[:h.nOpen]...)
	s.appendNonBuiltIns(r)
	if h.w.opts.KeepNewline {
		s.buf = append(s.buf, '\n')
	}
	_, err := h.w.Append(LevelFromSlog(r.Level), s.buf)
	s.free()
	return err
}

// slogState is the state of one Handle or WithAttrs call.
type slogState struct {
	h   *SlogHandler
	buf []byte
	sep string // written before the next key
	// groups are the groups open at this point, for ReplaceAttr; inGroups
	// is false while the built-in members are written (in no group).
	groups   []string
	inGroups bool
}

// maxPooledBuffer bounds the buffers kept for reuse, as slog's own pool does.
const maxPooledBuffer = 16 << 10

var statePool = sync.Pool{New: func() any { return &slogState{buf: make([]byte, 0, 1024), groups: make([]string, 0, 10)} }}

func (s *slogState) free() {
	s.h = nil
	if cap(s.buf) > maxPooledBuffer {
		s.buf = make([]byte, 0, 1024)
	}
	clear(s.groups[:cap(s.groups)])
	s.groups = s.groups[:0]
	statePool.Put(s)
}

// newState returns the state for WithAttrs, appending to buf.
func (h *SlogHandler) newState(buf []byte) *slogState {
	s := &slogState{h: h, buf: buf, inGroups: true, groups: make([]string, 0, len(h.groups))}
	s.groups = append(s.groups, h.groups[:h.nOpen]...)
	return s
}

func (s *slogState) appendNonBuiltIns(r slog.Record) {
	h := s.h
	if len(h.pre) > 0 {
		s.buf = append(s.buf, s.sep...)
		s.buf = append(s.buf, h.pre...)
		s.sep = ","
		if h.pre[len(h.pre)-1] == '{' {
			s.sep = ""
		}
	}
	// The record's attributes are in the groups of WithGroup; a record
	// without attributes opens none.
	nOpen := h.nOpen
	if r.NumAttrs() > 0 {
		// ReplaceAttr may remove every attribute: then nothing of the
		// groups opened here is kept.
		pos := len(s.buf)
		s.openGroups()
		nOpen = len(h.groups)
		empty := true
		r.Attrs(func(a slog.Attr) bool {
			if s.appendAttr(a) {
				empty = false
			}
			return true
		})
		if empty {
			s.buf = s.buf[:pos]
			nOpen = h.nOpen
		}
	}
	for range nOpen {
		s.buf = append(s.buf, '}')
	}
	s.buf = append(s.buf, '}')
}

func (s *slogState) openGroups() {
	for _, n := range s.h.groups[s.h.nOpen:] {
		s.openGroup(n)
	}
}

func (s *slogState) openGroup(name string) {
	s.appendKey(name)
	s.buf = append(s.buf, '{')
	s.sep = ""
	s.groups = append(s.groups, name)
}

func (s *slogState) closeGroup() {
	s.buf = append(s.buf, '}')
	s.sep = ","
	s.groups = s.groups[:len(s.groups)-1]
}

// appendAttrs appends as and reports whether it appended anything.
func (s *slogState) appendAttrs(as []slog.Attr) bool {
	nonEmpty := false
	for _, a := range as {
		if s.appendAttr(a) {
			nonEmpty = true
		}
	}
	return nonEmpty
}

// appendAttr appends a, after ReplaceAttr, and reports whether it appended
// anything: an Attr with no key and no value is left out, and so is a
// group all of whose attributes are.
func (s *slogState) appendAttr(a slog.Attr) bool {
	a.Value = a.Value.Resolve()
	if rep := s.h.opts.ReplaceAttr; rep != nil && a.Value.Kind() != slog.KindGroup {
		var gs []string
		if s.inGroups {
			gs = s.groups
		}
		a = rep(gs, a)
		a.Value = a.Value.Resolve() // ReplaceAttr may return an unresolved value
	}
	if a.Key == "" && a.Value.Kind() == slog.KindAny && a.Value.Any() == nil {
		return false
	}
	if v := a.Value; v.Kind() == slog.KindAny {
		if src, ok := v.Any().(*slog.Source); ok {
			if src == nil || *src == (slog.Source{}) {
				return false
			}
			a.Value = sourceGroup(src)
		}
	}
	if a.Value.Kind() != slog.KindGroup {
		s.appendKey(a.Key)
		s.appendValue(a.Value)
		return true
	}
	attrs := a.Value.Group()
	if len(attrs) > 0 {
		pos, sep, ngroups := len(s.buf), s.sep, len(s.groups)
		if a.Key != "" { // a group without a key is inlined
			s.openGroup(a.Key)
		}
		if !s.appendAttrs(attrs) {
			// Nothing of it was kept: undo the group's opening.
			// (JSONHandler keeps the separator and the group name
			// it took back, and writes the next member without
			// a comma.)
			s.buf, s.sep, s.groups = s.buf[:pos], sep, s.groups[:ngroups]
			return false
		}
		if a.Key != "" {
			s.closeGroup()
		}
	}
	return true
}

// sourceGroup is the JSON form of a source location.
func sourceGroup(src *slog.Source) slog.Value {
	var as []slog.Attr
	if src.Function != "" {
		as = append(as, slog.String("function", src.Function))
	}
	if src.File != "" {
		as = append(as, slog.String("file", src.File))
	}
	if src.Line != 0 {
		as = append(as, slog.Int("line", src.Line))
	}
	return slog.GroupValue(as...)
}

func isEmptyGroup(v slog.Value) bool { return v.Kind() == slog.KindGroup && len(v.Group()) == 0 }

func (s *slogState) appendKey(key string) {
	s.buf = append(s.buf, s.sep...)
	s.appendString(key)
	s.buf = append(s.buf, ':')
	s.sep = ","
}

func (s *slogState) appendString(str string) { s.buf = jsonenc.AppendString(s.buf, str) }

func (s *slogState) appendError(err error) { s.appendString(fmt.Sprintf("!ERROR:%v", err)) }

var errYearRange = errors.New("time.Time year outside of range [0,9999]")

func (s *slogState) appendTime(t time.Time) {
	if y := t.Year(); y < 0 || y >= 10000 {
		s.appendError(errYearRange) // and the time after it, as JSONHandler does
	}
	s.buf = append(s.buf, '"')
	s.buf = t.AppendFormat(s.buf, time.RFC3339Nano)
	s.buf = append(s.buf, '"')
}

func (s *slogState) appendValue(v slog.Value) {
	defer func() {
		if r := recover(); r != nil {
			// A method of the value (Error, MarshalJSON) panicked: most
			// likely on a nil pointer, written "<nil>" as fmt does.
			if v.Kind() == slog.KindAny {
				if rv := reflect.ValueOf(v.Any()); rv.Kind() == reflect.Pointer && rv.IsNil() {
					s.appendString("<nil>")
					return
				}
			}
			s.appendString(fmt.Sprintf("!PANIC: %v", r))
		}
	}()
	if err := s.appendJSONValue(v); err != nil {
		s.appendError(err)
	}
}

// appendJSONValue appends v as encoding/json would, but an error as its
// Error text.
func (s *slogState) appendJSONValue(v slog.Value) error {
	switch v.Kind() {
	case slog.KindString:
		s.appendString(v.String())
	case slog.KindInt64:
		s.buf = strconv.AppendInt(s.buf, v.Int64(), 10)
	case slog.KindUint64:
		s.buf = strconv.AppendUint(s.buf, v.Uint64(), 10)
	case slog.KindFloat64:
		f := v.Float64()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return appendJSONMarshal(&s.buf, f) // encoding/json's error
		}
		s.buf = appendJSONFloat(s.buf, f)
	case slog.KindBool:
		s.buf = strconv.AppendBool(s.buf, v.Bool())
	case slog.KindDuration:
		s.buf = strconv.AppendInt(s.buf, int64(v.Duration()), 10) // as encoding/json does
	case slog.KindTime:
		s.appendTime(v.Time())
	case slog.KindAny:
		a := v.Any()
		if l, ok := a.(slog.Level); ok { // its MarshalJSON quotes its String
			s.buf = append(s.buf, '"')
			s.buf = appendSlogLevel(s.buf, l)
			s.buf = append(s.buf, '"')
			return nil
		}
		_, jm := a.(json.Marshaler)
		if err, ok := a.(error); ok && !jm {
			s.appendString(err.Error())
			return nil
		}
		return appendJSONMarshal(&s.buf, a)
	default:
		panic(fmt.Sprintf("bad kind: %s", v.Kind()))
	}
	return nil
}

// appendJSONFloat appends a finite f as encoding/json writes a float64.
func appendJSONFloat(b []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// 1e-07 becomes 1e-7.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

type jsonEncoder struct {
	buf bytes.Buffer
	enc *json.Encoder
}

var jsonEncoderPool = sync.Pool{New: func() any {
	e := &jsonEncoder{}
	e.enc = json.NewEncoder(&e.buf)
	e.enc.SetEscapeHTML(false)
	return e
}}

// appendJSONMarshal appends v encoded by encoding/json without escaping
// HTML, as JSONHandler does; nothing if it fails.
func appendJSONMarshal(dst *[]byte, v any) error {
	e := jsonEncoderPool.Get().(*jsonEncoder)
	defer func() {
		if e.buf.Cap() <= maxPooledBuffer {
			e.buf.Reset()
			jsonEncoderPool.Put(e)
		}
	}()
	if err := e.enc.Encode(v); err != nil {
		return err
	}
	b := e.buf.Bytes()
	*dst = append(*dst, b[:len(b)-1]...) // without Encode's newline
	return nil
}

// appendSlogLevel appends l.String() without building the string.
func appendSlogLevel(b []byte, l slog.Level) []byte {
	base, name := slog.LevelError, "ERROR"
	switch {
	case l < slog.LevelInfo:
		base, name = slog.LevelDebug, "DEBUG"
	case l < slog.LevelWarn:
		base, name = slog.LevelInfo, "INFO"
	case l < slog.LevelError:
		base, name = slog.LevelWarn, "WARN"
	}
	b = append(b, name...)
	if d := l - base; d != 0 {
		if d > 0 {
			b = append(b, '+')
		}
		b = strconv.AppendInt(b, int64(d), 10)
	}
	return b
}
