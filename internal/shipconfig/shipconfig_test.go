package shipconfig

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mmaplog/mmaplog/tail"
)

// testFlags is a command's flags as the file sets them: a top-level few
// and output ones of every kind.
func testFlags() (*flag.FlagSet, Schema) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(new(strings.Builder))
	fs.String("metrics", "", "")
	fs.Int("batch", 2048, "")
	fs.String("host", "", "")
	fs.String("cursor-name", "", "")
	fs.String("to", "", "")
	fs.Bool("tls", false, "")
	fs.String("tls-ca", "", "")
	fs.Bool("loadbalance", false, "")
	fs.Int("workers", 1, "")
	fs.Duration("timeout", 30*time.Second, "")
	fs.Duration("backoff-init", time.Second, "")
	fs.String("kafka-acks", "all", "")
	fs.Int("kafka-max-message-bytes", 1<<20, "")
	return fs, Schema{Top: []string{"metrics", "batch", "host", "cursor-name"},
		Output: []string{"to", "tls", "tls-ca", "loadbalance", "workers", "timeout", "backoff-init", "kafka-acks", "kafka-max-message-bytes"}}
}

func parse(t *testing.T, text string) (*Config, *flag.FlagSet, error) {
	t.Helper()
	fs, schema := testFlags()
	c, err := Parse("ship.yml", []byte(text), schema)
	if err != nil {
		return nil, fs, err
	}
	return c, fs, c.Apply(fs, nil)
}

// TestEveryKey: a file using every kind of key: inputs with each of their
// keys, fields nested and dotted, output flags flat, nested and with
// enabled, top-level flags; the flags get the file's values.
func TestEveryKey(t *testing.T) {
	c, fs, err := parse(t, `# a comment
inputs:
  - logs: ["/var/log/apps/*", /var/log/one]
    fields:
      service: {name: checkout}
      team.owner: payments
    cursor_name: ls
    cursor_dir: /var/lib/mmaptail
    from: end
  - logs: /var/log/single
    cursor: /var/lib/mmaptail/single.cursor
    from: "42"
fields: {env: prod, "n": 7}
output:
  to: beats://ls1:5044,ls2:5044
  loadbalance: true
  workers: 3
  timeout: 45s
  backoff: {init: 250ms}
  tls:
    enabled: true
    ca: /etc/mmaptail/ca.pem
  kafka:
    acks: leader
  kafka_max_message_bytes: 2000000
metrics: 127.0.0.1:9464
batch: 512
host: web-1
cursor_name: default
`)
	if err != nil {
		t.Fatal(err)
	}
	end, at42 := tail.StartEnd, tail.StartAt(42)
	wantInputs := []Input{
		{Logs: []string{"/var/log/apps/*", "/var/log/one"}, Fields: map[string]string{"service.name": "checkout", "team.owner": "payments"},
			CursorName: "ls", CursorDir: "/var/lib/mmaptail", From: &end, Line: 3},
		{Logs: []string{"/var/log/single"}, Cursor: "/var/lib/mmaptail/single.cursor", From: &at42, Line: 10},
	}
	if !reflect.DeepEqual(c.Inputs, wantInputs) {
		t.Errorf("inputs\n%+v\nwant\n%+v", c.Inputs, wantInputs)
	}
	if want := map[string]string{"env": "prod", "n": "7"}; !reflect.DeepEqual(c.Fields, want) || c.FieldsLine != 13 {
		t.Errorf("fields %v (line %d)", c.Fields, c.FieldsLine)
	}
	for name, want := range map[string]string{
		"to": "beats://ls1:5044,ls2:5044", "loadbalance": "true", "workers": "3", "timeout": "45s", "backoff-init": "250ms",
		"tls": "true", "tls-ca": "/etc/mmaptail/ca.pem", "kafka-acks": "leader", "kafka-max-message-bytes": "2000000",
		"metrics": "127.0.0.1:9464", "batch": "512", "host": "web-1", "cursor-name": "default",
	} {
		if got := fs.Lookup(name).Value.String(); got != want {
			t.Errorf("--%s = %q, want %q", name, got, want)
		}
	}
	if l := c.Line("workers"); l != 17 {
		t.Errorf("workers on line %d, want 17", l)
	}
	var keys []string
	for _, s := range c.Settings {
		keys = append(keys, s.Key)
	}
	if got := strings.Join(keys, " "); got != "output.to output.loadbalance output.workers output.timeout output.backoff.init output.tls.enabled output.tls.ca output.kafka.acks output.kafka_max_message_bytes metrics batch host cursor_name" {
		t.Errorf("keys %s", got)
	}
}

// TestFlagsOverride: flags given on the command line keep their value.
func TestFlagsOverride(t *testing.T) {
	fs, schema := testFlags()
	if err := fs.Parse([]string{"--workers", "5", "--to", "stdout"}); err != nil {
		t.Fatal(err)
	}
	c, err := Parse("ship.yml", []byte("inputs: [{logs: /a}]\noutput: {to: beats://x:1, workers: 2, timeout: 1m}\n"), schema)
	if err != nil {
		t.Fatal(err)
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if err := c.Apply(fs, given); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"workers": "5", "to": "stdout", "timeout": "1m0s"} {
		if got := fs.Lookup(name).Value.String(); got != want {
			t.Errorf("--%s = %q, want %q", name, got, want)
		}
	}
}

// TestErrors: each mistake is one error naming the file and the line.
func TestErrors(t *testing.T) {
	for _, c := range []struct {
		name, text, want string
	}{
		{"unknown top-level key", "inputs: [{logs: /a}]\n\nmetric: x\n", `ship.yml:3: unknown key "metric" at the top level (known: inputs, fields, output, batch, cursor_name, host, metrics)`},
		{"unknown output key", "output:\n  to: stdout\n  wokers: 2\n", `ship.yml:3: unknown key "wokers" in output`},
		{"unknown nested output key", "output:\n  kafka:\n    ack: all\n", `ship.yml:3: unknown key "ack" in output.kafka`},
		{"enabled without a flag", "output:\n  kafka:\n    enabled: true\n", `ship.yml:3: unknown key "enabled" in output.kafka`},
		{"unknown input key", "inputs:\n  - logs: /a\n    field: {a: b}\n", `ship.yml:3: input 1: unknown key "field" (known: logs, fields, cursor, cursor_name, cursor_dir, from)`},
		{"input without logs", "inputs:\n  - from: end\n", `ship.yml:2: input 1: no logs`},
		{"inputs not a list", "inputs:\n  logs: /a\n", `ship.yml:2: inputs: want a list`},
		{"a list for a flag", "output:\n  to: [a, b]\n", `ship.yml:2: output.to: want a single value, not a list`},
		{"no value", "output:\n  workers:\n", `ship.yml:2: output.workers: no value`},
		{"key twice", "output:\n  to: stdout\n  to: stdout\n", `ship.yml:3: output: key "to" given twice (first on line 2)`},
		{"field twice", "fields:\n  a.b: 1\n  a: {b: 2}\n", `ship.yml:3: fields: a.b given twice (first on line 2)`},
		{"a list in fields", "fields:\n  a: [1]\n", `ship.yml:2: fields: a: want a single value, not a list`},
		{"bad int", "output:\n  to: stdout\n  workers: many\n", `ship.yml:3: output.workers: "many": want a whole number`},
		{"bad bool", "output:\n  loadbalance: yes please\n", `ship.yml:2: output.loadbalance: "yes please": want true or false`},
		{"bad duration", "output:\n  timeout: 30\n", `ship.yml:2: output.timeout: "30": want a duration such as 30s or 1m30s`},
		{"bad nested int", "output:\n  kafka:\n    max_message_bytes: 1e99\n", `ship.yml:3: output.kafka.max_message_bytes: "1e99": want a whole number`},
		{"bad YAML", "output:\n  to: [stdout\n", `ship.yml:1: did not find expected ',' or ']'`},
		{"tab indentation", "output:\n\tto: stdout\n", `ship.yml:2: found character that cannot start any token`},
		{"empty", "", `ship.yml: empty`},
		{"a list at the top", "- a\n", `ship.yml:1: the file: want a mapping`},
		{"two documents", "output: {to: stdout}\n---\noutput: {to: stdout}\n", `ship.yml:2: a second YAML document`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := parse(t, c.text)
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %v (%T), want an *Error", err, err)
			}
			if !strings.HasPrefix(err.Error(), c.want) {
				t.Fatalf("error\n%s\nwant it to start with\n%s", err, c.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error of more than one line: %q", err)
			}
		})
	}
}

// TestLoad: Load reads a file, and says which when it cannot.
func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ship.yml")
	if err := os.WriteFile(path, []byte("inputs:\n  - logs: /a\noutput: {to: stdout}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, schema := testFlags()
	c, err := Load(path, schema)
	if err != nil || len(c.Inputs) != 1 || c.Path != path {
		t.Fatalf("%+v, %v", c, err)
	}
	if _, err := Load(filepath.Join(dir, "nope.yml"), schema); err == nil || !strings.Contains(err.Error(), "nope.yml") {
		t.Fatalf("a missing file: %v", err)
	}
	big := filepath.Join(dir, "big.yml")
	os.WriteFile(big, []byte("# "+strings.Repeat("x", MaxSize)), 0o600)
	if _, err := Load(big, schema); err == nil {
		t.Fatal("a file over MaxSize was read")
	}
}

// FuzzParse: whatever the bytes, Parse returns a Config or one error, and
// an *Error names a line within the file.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"inputs: [{logs: /a}]\noutput: {to: stdout, workers: 2}\n", "output:\n  kafka: {acks: all}\n", "fields: {a: {b: 1}}", "- x", "a: &x {b: 1}\nc: *x\n", "{", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, schema := testFlags()
		_, err := Parse("f.yml", b, schema)
		var ce *Error
		if errors.As(err, &ce) && ce.Line > strings.Count(string(b), "\n")+2 {
			t.Fatalf("line %d of a file of %d lines: %v", ce.Line, strings.Count(string(b), "\n")+1, err)
		}
		_ = fmt.Sprint(err)
	})
}

// TestInputFrom: an input's from is read where the file says it, into
// where the input's logs start; a value that is not begin, end or a
// sequence number is an error naming its line.
func TestInputFrom(t *testing.T) {
	c, _, err := parse(t, "inputs:\n  - logs: /a\n    from: begin\n  - logs: /b\n")
	if err != nil {
		t.Fatal(err)
	}
	if c.Inputs[0].From == nil || *c.Inputs[0].From != tail.StartBegin || c.Inputs[1].From != nil {
		t.Fatalf("from %v and %v, want begin and none", c.Inputs[0].From, c.Inputs[1].From)
	}
	_, _, err = parse(t, "inputs:\n  - logs: /a\n    from: middle\n")
	want := `ship.yml:3: input 1: from "middle": want begin, end or a sequence number`
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("error %v, want %s", err, want)
	}
}
