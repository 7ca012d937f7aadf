// Package shipconfig reads the configuration file of `mmaptail ship`, a
// YAML file in the manner of filebeat.yml:
//
//	inputs:                        # the logs, in groups with settings of their own
//	  - logs: ["/var/log/apps/*"]  # directories or shell patterns (one string or a list)
//	    fields: {service.name: checkout}   # added to this input's events (dotted or nested keys)
//	    cursor_name: logstash      # cursor, cursor_name, cursor_dir, from: as the flags, for this input
//	fields: {env: prod}            # added to every event
//	output:
//	  to: beats://ls1:5044,ls2:5044
//	  loadbalance: true            # any output flag, by its name
//	  tls: {ca: /etc/mmaptail/ca.pem}
//	  kafka: {acks: all}
//	metrics: 127.0.0.1:9464        # any other flag of the command, by its name
//
// The package knows the structure (inputs, fields, output) and nothing of
// the flags: every other key names a flag of the command, given by the
// caller (Schema), so that a flag added to the command has its key in the
// file without more code. A flag's key is its name with the dashes as
// underscores, and may be split into nested mappings at any dash:
// --kafka-max-message-bytes is output key kafka_max_message_bytes, or
// kafka: {max_message_bytes: ...}; in a nested mapping, the key enabled
// names the mapping's own flag (tls: {enabled: true} is --tls). Values are
// given to the flag's own parser (Apply), so a value the command line
// refuses is refused in the file too, with the file and line named.
//
// An unknown key, a value of the wrong kind (a list where a word is
// wanted), a key given twice or a value a flag refuses is an error naming
// the file and line.
package shipconfig

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mmaplog/mmaplog/tail"
)

// Schema says which flags the file may set.
type Schema struct {
	// Top are the flags set by top-level keys (such as "metrics",
	// "batch").
	Top []string
	// Output are the flags set by the keys of the output mapping (such
	// as "to", "workers", "kafka-acks").
	Output []string
}

// Config is a configuration file read.
type Config struct {
	// Path is the file's path, as given to Load.
	Path string
	// Inputs are the inputs, in the file's order.
	Inputs []Input
	// Fields are the top-level fields, dotted keys (service.name).
	Fields map[string]string
	// FieldsLine is the line of the top-level fields key (0: none).
	FieldsLine int
	// Settings are the flags the file sets, in the file's order.
	Settings []Setting
}

// Input is one of the file's inputs.
type Input struct {
	Logs       []string
	Fields     map[string]string // dotted keys
	Cursor     string            // cursor: the cursor file of the input's one log
	CursorName string            // cursor_name
	CursorDir  string            // cursor_dir
	From       *tail.Start       // from (nil: not given)
	Line       int               // where the input starts
}

// Setting is a flag set by the file.
type Setting struct {
	Flag  string // the flag's name ("kafka-acks")
	Key   string // the key as written, dotted from its section ("output.kafka.acks")
	Value string
	Line  int
}

// Error is a mistake in the file: an unknown key, a bad value.
type Error struct {
	Path string
	Line int
	Msg  string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.Path, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.Path, e.Msg)
}

// MaxSize is the largest file Load reads.
const MaxSize = 1 << 20

// Load reads and checks the file at path against the schema.
func Load(path string, schema Schema) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if len(b) > MaxSize {
		return nil, &Error{Path: path, Msg: fmt.Sprintf("%d bytes: a configuration file is at most %d", len(b), MaxSize)}
	}
	return Parse(path, b, schema)
}

// Parse is Load of the file's content.
func Parse(path string, content []byte, schema Schema) (*Config, error) {
	p := &parser{path: path, cfg: &Config{Path: path}, top: set(schema.Top), out: set(schema.Output)}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(content))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{Path: path, Msg: "empty: want at least inputs and output"}
		}
		msg, line := strings.TrimPrefix(err.Error(), "yaml: "), 0
		if n, err := fmt.Sscanf(msg, "line %d: ", &line); n == 1 && err == nil {
			_, msg, _ = strings.Cut(msg, ": ")
		}
		return nil, &Error{Path: path, Line: line, Msg: msg}
	}
	var more yaml.Node
	if err := dec.Decode(&more); err == nil {
		return nil, p.errorf(&more, "a second YAML document: want one")
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if err := p.root(root); err != nil {
		return nil, err
	}
	return p.cfg, nil
}

type parser struct {
	path     string
	cfg      *Config
	top, out map[string]bool
}

func set(names []string) map[string]bool {
	m := map[string]bool{}
	for _, n := range names {
		m[n] = true
	}
	return m
}

func (p *parser) errorf(n *yaml.Node, format string, args ...any) error {
	return &Error{Path: p.path, Line: n.Line, Msg: fmt.Sprintf(format, args...)}
}

// members returns the key and value nodes of a mapping, refusing other
// kinds and keys given twice.
func (p *parser) members(n *yaml.Node, what string) ([][2]*yaml.Node, error) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind != yaml.MappingNode {
		return nil, p.errorf(n, "%s: want a mapping (KEY: VALUE lines), not %s", what, kind(n))
	}
	seen := map[string]int{}
	var out [][2]*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Tag == "!!merge" {
			return nil, p.errorf(k, "%s: a key must be a plain word", what)
		}
		if first, ok := seen[k.Value]; ok {
			return nil, p.errorf(k, "%s: key %q given twice (first on line %d)", what, k.Value, first)
		}
		seen[k.Value] = k.Line
		if v.Kind == yaml.AliasNode {
			v = v.Alias
		}
		out = append(out, [2]*yaml.Node{k, v})
	}
	return out, nil
}

func kind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "this"
}

// scalar returns the text of a scalar value.
func (p *parser) scalar(n *yaml.Node, what string) (string, error) {
	if n.Kind != yaml.ScalarNode {
		return "", p.errorf(n, "%s: want a single value, not %s", what, kind(n))
	}
	if n.Tag == "!!null" {
		return "", p.errorf(n, "%s: no value", what)
	}
	return n.Value, nil
}

func (p *parser) root(root *yaml.Node) error {
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return &Error{Path: p.path, Msg: "empty: want at least inputs and output"}
	}
	ms, err := p.members(root, "the file")
	if err != nil {
		return err
	}
	for _, m := range ms {
		k, v := m[0], m[1]
		switch k.Value {
		case "inputs":
			if err := p.inputs(v); err != nil {
				return err
			}
		case "fields":
			f, err := p.fields(v, "fields")
			if err != nil {
				return err
			}
			p.cfg.Fields, p.cfg.FieldsLine = f, k.Line
		case "output":
			if err := p.flags(v, "output", "", p.out); err != nil {
				return err
			}
		default:
			if err := p.flag(k, v, k.Value, strings.ReplaceAll(k.Value, "_", "-"), "", p.top); err != nil {
				return err
			}
		}
	}
	return nil
}

func keysOf(m map[string]bool) []string {
	var out []string
	for n := range m {
		out = append(out, strings.ReplaceAll(n, "-", "_"))
	}
	sort.Strings(out)
	return out
}

// flags reads a mapping of flag keys (the output's, or a nested one)
// whose flags' names start with prefix.
func (p *parser) flags(n *yaml.Node, section, prefix string, allowed map[string]bool) error {
	ms, err := p.members(n, section)
	if err != nil {
		return err
	}
	for _, m := range ms {
		k, v := m[0], m[1]
		name := strings.ReplaceAll(k.Value, "_", "-")
		if prefix != "" {
			name = prefix + "-" + name
			if k.Value == "enabled" {
				name = prefix
			}
		}
		if err := p.flag(k, v, section+"."+k.Value, name, section, allowed); err != nil {
			return err
		}
	}
	return nil
}

// hasPrefix reports whether a flag's name starts with name and a dash.
func hasPrefix(allowed map[string]bool, name string) bool {
	for a := range allowed {
		if strings.HasPrefix(a, name+"-") {
			return true
		}
	}
	return false
}

// flag records the setting of the flag name by the key k (key: its dotted
// path), in section ("" at the top), or goes into a nested mapping of
// flags whose names start with name.
func (p *parser) flag(k, v *yaml.Node, key, name, section string, allowed map[string]bool) error {
	if v.Kind == yaml.MappingNode && hasPrefix(allowed, name) {
		return p.flags(v, key, name, allowed)
	}
	if !allowed[name] {
		known := keysOf(allowed)
		where := "in " + section
		if section == "" {
			known = append([]string{"inputs", "fields", "output"}, known...)
			where = "at the top level"
		}
		return p.errorf(k, "unknown key %q %s (known: %s)", k.Value, where, strings.Join(known, ", "))
	}
	val, err := p.scalar(v, key)
	if err != nil {
		return err
	}
	p.cfg.Settings = append(p.cfg.Settings, Setting{Flag: name, Key: key, Value: val, Line: v.Line})
	return nil
}

var inputKeys = []string{"logs", "fields", "cursor", "cursor_name", "cursor_dir", "from"}

func (p *parser) inputs(n *yaml.Node) error {
	if n.Kind != yaml.SequenceNode {
		return p.errorf(n, "inputs: want a list of inputs (lines starting with -), not %s", kind(n))
	}
	for i, item := range n.Content {
		what := fmt.Sprintf("input %d", i+1)
		ms, err := p.members(item, what)
		if err != nil {
			return err
		}
		in := Input{Line: item.Line}
		for _, m := range ms {
			k, v := m[0], m[1]
			var dst *string
			switch k.Value {
			case "logs":
				if in.Logs, err = p.strings(v, what+": logs"); err != nil {
					return err
				}
				continue
			case "fields":
				if in.Fields, err = p.fields(v, what+": fields"); err != nil {
					return err
				}
				continue
			case "cursor":
				dst = &in.Cursor
			case "cursor_name":
				dst = &in.CursorName
			case "cursor_dir":
				dst = &in.CursorDir
			case "from":
				if in.From, err = p.start(v, what+": from"); err != nil {
					return err
				}
				continue
			default:
				return p.errorf(k, "%s: unknown key %q (known: %s)", what, k.Value, strings.Join(inputKeys, ", "))
			}
			if *dst, err = p.scalar(v, what+": "+k.Value); err != nil {
				return err
			}
		}
		if len(in.Logs) == 0 {
			return p.errorf(item, "%s: no logs: want logs: [DIR or PATTERN, ...]", what)
		}
		p.cfg.Inputs = append(p.cfg.Inputs, in)
	}
	return nil
}

// start reads where to start: begin, end or a sequence number.
func (p *parser) start(n *yaml.Node, what string) (*tail.Start, error) {
	s, err := p.scalar(n, what)
	if err != nil {
		return nil, err
	}
	st, err := tail.ParseStart(s)
	if err != nil {
		return nil, p.errorf(n, "%s %q: want begin, end or a sequence number (1 or more)", what, s)
	}
	return &st, nil
}

// strings reads one string or a list of them.
func (p *parser) strings(n *yaml.Node, what string) ([]string, error) {
	if n.Kind == yaml.ScalarNode {
		s, err := p.scalar(n, what)
		if err != nil {
			return nil, err
		}
		return []string{s}, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, p.errorf(n, "%s: want a path or a list of them, not %s", what, kind(n))
	}
	var out []string
	for _, c := range n.Content {
		s, err := p.scalar(c, what)
		if err != nil {
			return nil, err
		}
		if s == "" {
			return nil, p.errorf(c, "%s: an empty path", what)
		}
		out = append(out, s)
	}
	return out, nil
}

// fields reads a mapping of fields, nested mappings giving dotted keys.
func (p *parser) fields(n *yaml.Node, what string) (map[string]string, error) {
	out := map[string]string{}
	lines := map[string]int{}
	var walk func(n *yaml.Node, prefix string) error
	walk = func(n *yaml.Node, prefix string) error {
		ms, err := p.members(n, what)
		if err != nil {
			return err
		}
		for _, m := range ms {
			k, v := m[0], m[1]
			key := k.Value
			if prefix != "" {
				key = prefix + "." + key
			}
			if v.Kind == yaml.MappingNode {
				if err := walk(v, key); err != nil {
					return err
				}
				continue
			}
			val, err := p.scalar(v, what+": "+key)
			if err != nil {
				return err
			}
			if first, ok := lines[key]; ok {
				return p.errorf(k, "%s: %s given twice (first on line %d)", what, key, first)
			}
			out[key], lines[key] = val, k.Line
		}
		return nil
	}
	if err := walk(n, ""); err != nil {
		return nil, err
	}
	return out, nil
}

// Line returns where the file sets the flag name (0: it does not).
func (c *Config) Line(name string) int {
	for _, s := range c.Settings {
		if s.Flag == name {
			return s.Line
		}
	}
	return 0
}

// Apply sets the flags of fs the file sets, except those in skip (given on
// the command line, which override the file). A value the flag refuses is
// an *Error naming the line.
func (c *Config) Apply(fs *flag.FlagSet, skip map[string]bool) error {
	for _, s := range c.Settings {
		if skip[s.Flag] {
			continue
		}
		if fs.Lookup(s.Flag) == nil {
			return &Error{Path: c.Path, Line: s.Line, Msg: fmt.Sprintf("%s: no such flag --%s", s.Key, s.Flag)}
		}
		f := fs.Lookup(s.Flag)
		if err := fs.Set(s.Flag, s.Value); err != nil {
			return &Error{Path: c.Path, Line: s.Line, Msg: fmt.Sprintf("%s: %q: %s", s.Key, s.Value, want(f, err))}
		}
	}
	return nil
}

// want says what a flag wants, after it refused a value: by the kind of
// its value for the flag package's own kinds, or the flag's own message.
func want(f *flag.Flag, err error) string {
	if g, ok := f.Value.(flag.Getter); ok {
		switch g.Get().(type) {
		case bool:
			return "want true or false"
		case int, int64, uint, uint64:
			return "want a whole number"
		case float64:
			return "want a number"
		case time.Duration:
			return "want a duration such as 30s or 1m30s"
		}
	}
	msg := err.Error()
	if _, after, ok := strings.Cut(msg, ": "); ok && strings.HasPrefix(msg, "invalid value") {
		msg = after
	}
	return msg
}
