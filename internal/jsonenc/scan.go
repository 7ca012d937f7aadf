package jsonenc

import "unicode/utf8"

// ScanObject reports whether p is exactly one JSON object (RFC 8259, valid
// UTF-8, surrounding white space allowed) and calls member with each of its
// top-level members as they appear: the name between its quotes (escapes
// not decoded) and the value's bytes (without surrounding white space). It
// also returns where the object's closing brace is, so that members can be
// appended before it, and whether it has any member. member may be nil.
//
// It is a single pass without allocation, several times faster than
// encoding/json.Valid on log-sized objects; FuzzScanObject checks that both
// agree.
func ScanObject(p []byte, member func(name, value []byte)) (closing int, members bool, ok bool) {
	if !utf8.Valid(p) {
		return 0, false, false
	}
	s := scanner{p: p}
	s.ws()
	if s.i >= len(p) || p[s.i] != '{' {
		return 0, false, false
	}
	s.i++
	s.ws()
	if s.i < len(p) && p[s.i] == '}' {
		closing = s.i
		s.i++
	} else {
		for {
			s.ws()
			start := s.i + 1
			if !s.str() {
				return 0, false, false
			}
			name := p[start : s.i-1]
			s.ws()
			if s.i >= len(p) || p[s.i] != ':' {
				return 0, false, false
			}
			s.i++
			s.ws()
			vstart := s.i
			if !s.value(0) {
				return 0, false, false
			}
			if member != nil {
				member(name, p[vstart:s.i])
			}
			members = true
			s.ws()
			if s.i >= len(p) {
				return 0, false, false
			}
			if p[s.i] == ',' {
				s.i++
				continue
			}
			if p[s.i] != '}' {
				return 0, false, false
			}
			closing = s.i
			s.i++
			break
		}
	}
	s.ws()
	return closing, members, s.i == len(p)
}

// maxDepth bounds nesting, as encoding/json does (10000).
const maxDepth = 10000

type scanner struct {
	p []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.p) {
		switch s.p[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// str consumes a string starting at s.i (which must be a quote).
func (s *scanner) str() bool {
	p := s.p
	if s.i >= len(p) || p[s.i] != '"' {
		return false
	}
	s.i++
	for s.i < len(p) {
		c := p[s.i]
		if plain[c] {
			s.i++
			continue
		}
		switch {
		case c == '"':
			s.i++
			return true
		case c == '\\':
			s.i++
			if s.i >= len(p) {
				return false
			}
			switch p[s.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i++
			case 'u':
				if s.i+4 >= len(p) {
					return false
				}
				for k := 1; k <= 4; k++ {
					if !isHex(p[s.i+k]) {
						return false
					}
				}
				s.i += 5
			default:
				return false
			}
		case c < 0x20:
			return false
		default:
			s.i++
		}
	}
	return false
}

// plain marks the bytes a string may hold as they are.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func (s *scanner) value(depth int) bool {
	if depth > maxDepth {
		return false
	}
	s.ws()
	p := s.p
	if s.i >= len(p) {
		return false
	}
	switch c := p[s.i]; {
	case c == '"':
		return s.str()
	case c == '{':
		s.i++
		s.ws()
		if s.i < len(p) && p[s.i] == '}' {
			s.i++
			return true
		}
		for {
			s.ws()
			if !s.str() {
				return false
			}
			s.ws()
			if s.i >= len(p) || p[s.i] != ':' {
				return false
			}
			s.i++
			if !s.value(depth + 1) {
				return false
			}
			if more, ok := s.sep('}'); !more {
				return ok
			}
		}
	case c == '[':
		s.i++
		s.ws()
		if s.i < len(p) && p[s.i] == ']' {
			s.i++
			return true
		}
		for {
			if !s.value(depth + 1) {
				return false
			}
			if more, ok := s.sep(']'); !more {
				return ok
			}
		}
	case c == '-' || c >= '0' && c <= '9':
		return s.number()
	case c == 't':
		return s.lit("true")
	case c == 'f':
		return s.lit("false")
	case c == 'n':
		return s.lit("null")
	}
	return false
}

func (s *scanner) lit(w string) bool {
	if len(s.p)-s.i < len(w) || string(s.p[s.i:s.i+len(w)]) != w {
		return false
	}
	s.i += len(w)
	return true
}

// number consumes -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() bool {
	p := s.p
	if p[s.i] == '-' {
		s.i++
	}
	if s.i >= len(p) {
		return false
	}
	if p[s.i] == '0' {
		s.i++
	} else if p[s.i] >= '1' && p[s.i] <= '9' {
		for s.i < len(p) && p[s.i] >= '0' && p[s.i] <= '9' {
			s.i++
		}
	} else {
		return false
	}
	if s.i < len(p) && p[s.i] == '.' {
		s.i++
		if !s.digits() {
			return false
		}
	}
	if s.i < len(p) && (p[s.i] == 'e' || p[s.i] == 'E') {
		s.i++
		if s.i < len(p) && (p[s.i] == '+' || p[s.i] == '-') {
			s.i++
		}
		if !s.digits() {
			return false
		}
	}
	return true
}

func (s *scanner) digits() bool {
	start := s.i
	for s.i < len(s.p) && s.p[s.i] >= '0' && s.p[s.i] <= '9' {
		s.i++
	}
	return s.i > start
}

// sep reads what follows a member or element: a comma (more members follow)
// or the closing byte (ok: the object or array is complete).
func (s *scanner) sep(closing byte) (more, ok bool) {
	s.ws()
	if s.i >= len(s.p) {
		return false, false
	}
	switch s.p[s.i] {
	case ',':
		s.i++
		return true, false
	case closing:
		s.i++
		return false, true
	}
	return false, false
}
