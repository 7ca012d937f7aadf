package jsonenc

import (
	"bytes"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// The functions below walk JSON that is known to be valid (checked by
// ScanObject, or written by this program): they skip values without
// validating them again, and on anything unexpected they stop rather than
// read out of bounds.

// Members calls fn with each member of the JSON object obj (valid JSON, white
// space allowed around it): its name between the quotes (escapes not
// decoded) and its value's bytes. fn returns false to stop early.
func Members(obj []byte, fn func(name, value []byte) bool) {
	it := NewMemberIter(obj)
	for {
		name, value, ok := it.Next()
		if !ok || !fn(name, value) {
			return
		}
	}
}

// MemberIter goes through the members of a valid JSON object, as Members
// does, without a callback.
type MemberIter struct {
	p     []byte
	i     int
	state int8 // 0: before '{', 1: in the object, 2: done
}

// NewMemberIter returns an iterator over the members of obj.
func NewMemberIter(obj []byte) MemberIter { return MemberIter{p: obj} }

// Next returns the next member; ok is false after the last one.
func (it *MemberIter) Next() (name, value []byte, ok bool) {
	p, i := it.p, it.i
	switch it.state {
	case 0:
		i = skipWS(p, 0)
		if i >= len(p) || p[i] != '{' {
			it.state = 2
			return nil, nil, false
		}
		i++
		it.state = 1
	case 1:
		i = skipWS(p, i)
		if i >= len(p) || p[i] != ',' {
			it.state = 2
			return nil, nil, false
		}
		i++
	default:
		return nil, nil, false
	}
	i = skipWS(p, i)
	if i >= len(p) || p[i] != '"' {
		it.state = 2
		return nil, nil, false
	}
	end := skipString(p, i)
	if end < 0 {
		it.state = 2
		return nil, nil, false
	}
	name = p[i+1 : end-1]
	i = skipWS(p, end)
	if i >= len(p) || p[i] != ':' {
		it.state = 2
		return nil, nil, false
	}
	i = skipWS(p, i+1)
	vend := SkipValue(p, i)
	if vend < 0 {
		it.state = 2
		return nil, nil, false
	}
	it.i = vend
	return name, p[i:vend], true
}

// IsObject reports whether the valid JSON value v is an object.
func IsObject(v []byte) bool {
	i := skipWS(v, 0)
	return i < len(v) && v[i] == '{'
}

// SkipValue returns the offset just after the valid JSON value starting at
// p[i], or -1 if p ends first.
func SkipValue(p []byte, i int) int {
	if i >= len(p) {
		return -1
	}
	switch c := p[i]; c {
	case '"':
		return skipString(p, i)
	case '{', '[':
		depth := 0
		for i < len(p) {
			switch p[i] {
			case '"':
				i = skipString(p, i)
				if i < 0 {
					return -1
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return -1
	default: // number, true, false, null
		for i < len(p) {
			switch p[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return i
			}
			i++
		}
		return i
	}
}

// skipString returns the offset just after the string whose opening quote is
// at p[i], or -1.
func skipString(p []byte, i int) int {
	i++
	for {
		q := bytes.IndexByte(p[i:], '"')
		if q < 0 {
			return -1
		}
		b := bytes.IndexByte(p[i:i+q], '\\')
		if b < 0 {
			return i + q + 1
		}
		// An escape before the quote: skip it and look again (\uXXXX: the
		// hex digits are plain bytes).
		i += b + 2
		if i > len(p) {
			return -1
		}
	}
}

func skipWS(p []byte, i int) int {
	for i < len(p) && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r') {
		i++
	}
	return i
}

// AppendUnquoted appends the decoded content of a JSON string, given without
// its quotes (as Members and ScanObject give names), to dst. Invalid escapes
// and lone surrogates become U+FFFD.
func AppendUnquoted(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			k := bytes.IndexByte(s[i:], '\\')
			if k < 0 {
				return append(dst, s[i:]...)
			}
			dst = append(dst, s[i:i+k]...)
			i += k
			continue
		}
		if i+1 >= len(s) {
			return utf8.AppendRune(dst, utf8.RuneError)
		}
		switch s[i+1] {
		case '"', '\\', '/':
			dst = append(dst, s[i+1])
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, n := hexRune(s[i+2:])
			if n == 0 {
				dst = utf8.AppendRune(dst, utf8.RuneError)
				i += 2
				continue
			}
			i += 2 + n
			if utf16.IsSurrogate(r) {
				if len(s) >= i+6 && s[i] == '\\' && s[i+1] == 'u' {
					if r2, n2 := hexRune(s[i+2:]); n2 > 0 {
						if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
							dst = utf8.AppendRune(dst, dec)
							i += 2 + n2
							continue
						}
					}
				}
				r = utf8.RuneError
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default:
			dst = utf8.AppendRune(dst, utf8.RuneError)
		}
		i += 2
	}
	return dst
}

func hexRune(s []byte) (rune, int) {
	if len(s) < 4 {
		return 0, 0
	}
	n, err := strconv.ParseUint(string(s[:4]), 16, 32)
	if err != nil {
		return 0, 0
	}
	return rune(n), 4
}

// Lookup returns the value at a dotted path ("log.offset") in the valid JSON
// object obj: the member named by the path's first part, and inside it, if
// it is an object, the next part, and so on. Names with escapes are decoded
// to compare them.
func Lookup(obj []byte, path string) (value []byte, ok bool) {
	for {
		part, rest, more := strings.Cut(path, ".")
		var found []byte
		var scratch [64]byte
		Members(obj, func(name, v []byte) bool {
			if bytes.IndexByte(name, '\\') >= 0 {
				name = AppendUnquoted(scratch[:0], name)
			}
			if string(name) == part {
				found = v
				return false
			}
			return true
		})
		if found == nil {
			return nil, false
		}
		if !more {
			return found, true
		}
		if !IsObject(found) {
			return nil, false
		}
		obj, path = found, rest
	}
}

// Text returns a valid JSON value as text for a key or a message: a
// string's decoded content (appended to dst only when it has escapes,
// otherwise a slice of v), any other value's JSON as it is.
func Text(dst, v []byte) []byte {
	if len(v) >= 2 && v[0] == '"' {
		inner := v[1 : len(v)-1]
		if bytes.IndexByte(inner, '\\') < 0 {
			return inner
		}
		return AppendUnquoted(dst, inner)
	}
	return v
}
