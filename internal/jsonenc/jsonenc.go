// Package jsonenc is the JSON the event encoders of the log shipper and the
// counter collector need, without encoding/json's reflection and
// allocations: appending strings (AppendString, AppendBytes), checking that a
// record is one JSON object while listing its members (ScanObject), and
// walking JSON known to be valid (Members, SkipValue, Lookup,
// AppendUnquoted), for merging metadata into a record and for picking a
// field out of an event.
package jsonenc

import "unicode/utf8"

// AppendString appends s as a JSON string.
func AppendString(dst []byte, s string) []byte { return AppendBytes(dst, []byte(s)) }

const hexDigits = "0123456789abcdef"

// AppendBytes appends s as a JSON string. Invalid UTF-8 becomes
// U+FFFD, as encoding/json does; HTML characters are left alone.
func AppendBytes(dst, s []byte) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
