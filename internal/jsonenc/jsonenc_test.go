package jsonenc

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzAppendString: the output is valid JSON that decodes to the input (with
// invalid UTF-8 replaced, as encoding/json does).
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "quote\" back\\slash", "\n\r\t\x00\x1f", "héllo", "\xff\xfe", "\u2028\u2029", `<html>&`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := AppendString(nil, s)
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("%q encoded as invalid JSON %s: %v", s, got, err)
		}
		want, _ := json.Marshal(s)
		var wantBack string
		json.Unmarshal(want, &wantBack)
		if back != wantBack {
			t.Fatalf("%q round-trips to %q, encoding/json gives %q", s, back, wantBack)
		}
	})
}

func FuzzScanObject(f *testing.F) {
	for _, s := range []string{`{}`, ` {"a":1} `, `{"a":[1,2,{"b":null}],"c":"\u00e9\n"}`, `{"a":1,}`, `{"a"}`, `{"a":01}`, `{"a":-0.5e+3}`, `{"a":"\x01"}`, "{\"a\":\"\xff\"}", `[]`, `{"a":tru}`, `{"a\"b":{"c":"}"},"d":[{"e":"]"}]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		var names, values [][]byte
		_, _, ok := ScanObject(p, func(name, value []byte) {
			names = append(names, name)
			values = append(values, value)
		})
		trimmed := strings.TrimLeft(string(p), " \t\r\n")
		want := json.Valid(p) && utf8.Valid(p) && strings.HasPrefix(trimmed, "{")
		if ok != want {
			t.Fatalf("ScanObject(%q) = %v, json.Valid and UTF-8 say %v", p, ok, want)
		}
		if !ok {
			return
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(p, &m); err != nil {
			t.Fatalf("accepted %q, which does not decode as an object: %v", p, err)
		}
		// The members ScanObject and Members list are the object's, each
		// value a valid JSON value, and decoded names are encoding/json's.
		var walked [][]byte
		Members(p, func(name, value []byte) bool {
			walked = append(walked, name, value)
			return true
		})
		if len(walked) != 2*len(names) {
			t.Fatalf("Members found %d members of %q, ScanObject %d", len(walked)/2, p, len(names))
		}
		for i := range names {
			if !bytes.Equal(walked[2*i], names[i]) || !bytes.Equal(walked[2*i+1], values[i]) {
				t.Fatalf("member %d of %q: Members %q:%q, ScanObject %q:%q", i, p, walked[2*i], walked[2*i+1], names[i], values[i])
			}
			if !json.Valid(values[i]) {
				t.Fatalf("member %d of %q: value %q is not valid JSON", i, p, values[i])
			}
			var dec string
			if err := json.Unmarshal(append(append([]byte{'"'}, names[i]...), '"'), &dec); err != nil {
				t.Fatal(err)
			}
			if got := string(AppendUnquoted(nil, names[i])); got != dec {
				t.Fatalf("AppendUnquoted(%q) = %q, encoding/json %q", names[i], got, dec)
			}
			if v, ok := Lookup(p, dec); !strings.Contains(dec, ".") && (!ok || !json.Valid(v)) {
				t.Fatalf("Lookup(%q, %q) = %q, %v", p, dec, v, ok)
			}
		}
	})
}

func TestLookup(t *testing.T) {
	ev := []byte(`{"message":"x","log":{"offset":42,"file":{"path":"/var/log/a"}},"us\u0065r":"u-\"1\"","n":{"a":[1,{"b":2}]}}`)
	for path, want := range map[string]string{
		"log.offset":    "42",
		"log.file.path": `"/var/log/a"`,
		"user":          `"u-\"1\""`,
		"n.a":           `[1,{"b":2}]`,
		"message":       `"x"`,
	} {
		got, ok := Lookup(ev, path)
		if !ok || string(got) != want {
			t.Errorf("Lookup(%s) = %q, %v; want %q", path, got, ok, want)
		}
	}
	for _, path := range []string{"log.nope", "message.x", "n.a.b", "", "nope"} {
		if v, ok := Lookup(ev, path); ok {
			t.Errorf("Lookup(%s) = %q, want none", path, v)
		}
	}
	if got := string(Text(nil, []byte(`"u-\"1\""`))); got != `u-"1"` {
		t.Errorf("Text: %q", got)
	}
	if got := string(Text(nil, []byte(`42`))); got != `42` {
		t.Errorf("Text: %q", got)
	}
}
