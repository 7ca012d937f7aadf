package main

// The deployment examples in docs/deploy are checked here: the systemd unit
// by systemd-analyze, the Logstash pipeline by a parser of Logstash's
// configuration syntax, and both against what mmaptail really accepts and
// ships.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"
)

const deployDir = "../../docs/deploy"

func TestDeploySystemdUnit(t *testing.T) {
	unit, err := os.ReadFile(filepath.Join(deployDir, "mmaptail-ship.service"))
	if err != nil {
		t.Fatal(err)
	}
	bin := builtMmaptail(t)
	// systemd-analyze checks the unit as an instance, with the binary at
	// the path the unit names replaced by the one just built (it must exist).
	dir := t.TempDir()
	path := filepath.Join(dir, "mmaptail-ship.service")
	text := strings.ReplaceAll(string(unit), "/usr/local/bin/mmaptail", bin)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatal("systemd-analyze is not installed (Debian package systemd; scripts/test installs it)")
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	// It exits 0 on unknown keys and only warns: any output is a finding.
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}

	// What the unit promises: restart on failure, the state directory the
	// example file keeps the cursors in, a stop that lets the shipper
	// drain, a reload by SIGHUP, the configuration file.
	for _, want := range []string{"\nRestart=on-failure\n", "\nStateDirectory=mmaptail\n", "\nKillSignal=SIGTERM\n", "\nExecReload=/bin/kill -HUP $MAINPID\n", " ship -c /etc/mmaptail/ship.yml"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("the unit lacks %q", want)
		}
	}
	// Every flag of its ExecStart is one that `mmaptail ship` has.
	m := regexp.MustCompile(`(?m)^ExecStart=\S+ ship (.*)$`).FindStringSubmatch(string(unit))
	if m == nil {
		t.Fatal("no ExecStart=... ship line in the unit")
	}
	_, help, _ := runBuilt(t, "ship", "--help")
	for _, f := range strings.Fields(m[1]) {
		if strings.HasPrefix(f, "-") && !strings.Contains(help, "  -"+strings.TrimLeft(f, "-")+" ") {
			t.Errorf("the unit's ExecStart uses %s, which `mmaptail ship --help` does not list", f)
		}
	}
}

// TestDeployShipConfig: the example configuration file is one the binary
// takes (every key known, every value accepted, the inputs valid), and
// keeps the cursors in the unit's state directory.
func TestDeployShipConfig(t *testing.T) {
	path := filepath.Join(deployDir, "ship.yml")
	// --to stdout overrides the example's hosts, which are not there to
	// connect to: the rest of the file is checked as it is.
	code, stdout, stderr := runBuilt(t, "ship", "-c", path, "--check", "--to", "stdout")
	if code != 0 || !strings.HasPrefix(stdout, "config "+path+": OK\n") || !strings.HasSuffix(stdout, "check: OK\n") {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	f := newShipFlags(io.Discard)
	if err := f.parse([]string{"-c", path}); err != nil {
		t.Fatal(err)
	}
	for i, in := range f.file.Inputs {
		if in.CursorDir != "/var/lib/mmaptail" {
			t.Errorf("input %d keeps its cursors in %q, not the unit's state directory /var/lib/mmaptail", i+1, in.CursorDir)
		}
	}
	if !strings.HasPrefix(*f.to, "beats://") {
		t.Errorf("the example ships to %s", *f.to)
	}
}

func TestDeployLogstashPipeline(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(deployDir, "logstash.conf"))
	if err != nil {
		t.Fatal(err)
	}
	sections, err := parseLogstash(string(src))
	if err != nil {
		t.Fatalf("logstash.conf: %v", err)
	}
	// Each plugin's options are ones the plugin has (a typo would make
	// Logstash refuse to start).
	known := map[string][]string{
		"beats":         {"port", "host", "id", "ssl_enabled", "ssl_certificate", "ssl_key", "ssl_certificate_authorities", "ssl_client_authentication"},
		"fingerprint":   {"source", "concatenate_sources", "method", "target", "key", "id"},
		"elasticsearch": {"hosts", "index", "document_id", "action", "user", "password", "api_key", "ssl_enabled", "ssl_certificate_authorities", "data_stream", "id"},
	}
	plugins := map[string]map[string]lsValue{}
	for _, sec := range sections {
		for _, p := range sec.plugins {
			opts, ok := known[p.name]
			if !ok {
				t.Errorf("%s plugin %q: not one this pipeline is expected to use", sec.name, p.name)
				continue
			}
			for k := range p.attrs {
				if !contains(opts, k) {
					t.Errorf("%s %s: unknown option %q", sec.name, p.name, k)
				}
			}
			plugins[sec.name+"/"+p.name] = p.attrs
		}
	}
	beats, fp, es := plugins["input/beats"], plugins["filter/fingerprint"], plugins["output/elasticsearch"]
	if beats == nil || fp == nil || es == nil {
		t.Fatalf("want input beats, filter fingerprint and output elasticsearch; have %v", keys(plugins))
	}
	if beats["port"].s != "5044" {
		t.Errorf("beats port %q, want 5044 (mmaptail's examples use it)", beats["port"].s)
	}
	sources := fp["source"].list
	for _, want := range []string{"[log][file][path]", "[log][offset]"} {
		if !contains(sources, want) {
			t.Errorf("fingerprint source %v lacks %s", sources, want)
		}
	}
	if fp["concatenate_sources"].s != "true" || fp["target"].s != "[@metadata][fingerprint]" {
		t.Errorf("fingerprint: concatenate_sources %q, target %q", fp["concatenate_sources"].s, fp["target"].s)
	}
	if es["document_id"].s != "%{[@metadata][fingerprint]}" {
		t.Errorf("elasticsearch document_id %q, want the fingerprint", es["document_id"].s)
	}

	// The fields the fingerprint reads are in the events mmaptail ships.
	dir := filepath.Join(t.TempDir(), "log")
	cmd := exec.Command(builtMmaptail(t), "write", dir)
	cmd.Stdin = strings.NewReader("plain line\n{\"message\":\"json\",\"level\":\"info\"}\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("write: %v %s", err, out)
	}
	ship := exec.Command(builtMmaptail(t), "ship", "--log", dir, "--to", "stdout")
	pr, _ := ship.StdoutPipe()
	if err := ship.Start(); err != nil {
		t.Fatal(err)
	}
	defer ship.Wait()
	defer ship.Process.Kill()
	br := bufio.NewReader(pr)
	for i := 0; i < 2; i++ {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("ship --to stdout: %v after %q", err, line)
		}
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("event %q: %v", line, err)
		}
		for _, f := range sources {
			if lsField(ev, f) == nil {
				t.Errorf("event %s has no %s, which the fingerprint reads", line, f)
			}
		}
	}
}

// lsField returns the value at a Logstash field reference ("[a][b]").
func lsField(ev map[string]any, ref string) any {
	var v any = ev
	for _, part := range strings.Split(strings.Trim(ref, "[]"), "][") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[part]
	}
	return v
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func keys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// A parser of Logstash's pipeline configuration syntax (the grammar of
// logstash-core's treetop grammar, without conditionals, which the example
// does not use): sections of plugins, each with "name => value" options,
// values being strings, numbers, barewords, arrays and hashes; comments from
// '#' to the end of the line.

type lsSection struct {
	name    string
	plugins []lsPlugin
}

type lsPlugin struct {
	name  string
	attrs map[string]lsValue
}

// lsValue is a scalar (s) or an array of scalars (list); hashes are
// checked for syntax and kept as their keys.
type lsValue struct {
	s    string
	list []string
}

type lsParser struct {
	src  string
	pos  int
	line int
}

func parseLogstash(src string) ([]lsSection, error) {
	p := &lsParser{src: src, line: 1}
	var secs []lsSection
	for {
		p.space()
		if p.pos == len(p.src) {
			break
		}
		name := p.word()
		switch name {
		case "input", "filter", "output":
		default:
			return nil, p.errorf("want input, filter or output, got %q", name)
		}
		if err := p.expect("{"); err != nil {
			return nil, err
		}
		sec := lsSection{name: name}
		for {
			p.space()
			if p.peek() == '}' {
				p.pos++
				break
			}
			pl, err := p.plugin()
			if err != nil {
				return nil, err
			}
			sec.plugins = append(sec.plugins, pl)
		}
		secs = append(secs, sec)
	}
	if len(secs) == 0 {
		return nil, p.errorf("no sections")
	}
	return secs, nil
}

func (p *lsParser) plugin() (lsPlugin, error) {
	name := p.word()
	if name == "" {
		return lsPlugin{}, p.errorf("want a plugin name, got %q", p.rest())
	}
	if name == "if" || name == "else" {
		return lsPlugin{}, p.errorf("conditionals are not expected in this pipeline")
	}
	pl := lsPlugin{name: name, attrs: map[string]lsValue{}}
	if err := p.expect("{"); err != nil {
		return pl, err
	}
	for {
		p.space()
		if p.peek() == '}' {
			p.pos++
			return pl, nil
		}
		key := p.word()
		if key == "" {
			return pl, p.errorf("want an option name, got %q", p.rest())
		}
		if err := p.expect("=>"); err != nil {
			return pl, err
		}
		v, err := p.value()
		if err != nil {
			return pl, err
		}
		if _, dup := pl.attrs[key]; dup {
			return pl, p.errorf("option %q given twice", key)
		}
		pl.attrs[key] = v
	}
}

func (p *lsParser) value() (lsValue, error) {
	p.space()
	switch p.peek() {
	case '"', '\'':
		s, err := p.str()
		return lsValue{s: s}, err
	case '[':
		p.pos++
		var v lsValue
		for {
			p.space()
			if p.peek() == ']' {
				p.pos++
				return v, nil
			}
			if len(v.list) > 0 {
				if err := p.expect(","); err != nil {
					return v, err
				}
				p.space()
			}
			e, err := p.value()
			if err != nil {
				return v, err
			}
			if e.list != nil {
				return v, p.errorf("nested arrays are not expected")
			}
			v.list = append(v.list, e.s)
		}
	case '{':
		p.pos++
		var v lsValue
		for {
			p.space()
			if p.peek() == '}' {
				p.pos++
				return v, nil
			}
			k, err := p.value()
			if err != nil || k.list != nil {
				return v, p.errorf("want a hash key")
			}
			if err := p.expect("=>"); err != nil {
				return v, err
			}
			if _, err := p.value(); err != nil {
				return v, err
			}
			v.list = append(v.list, k.s)
		}
	}
	w := p.word()
	if w == "" {
		return lsValue{}, p.errorf("want a value, got %q", p.rest())
	}
	return lsValue{s: w}, nil
}

func (p *lsParser) str() (string, error) {
	q := p.src[p.pos]
	p.pos++
	var b strings.Builder
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		p.pos++
		switch {
		case c == q:
			return b.String(), nil
		case c == '\\' && p.pos < len(p.src):
			b.WriteByte(p.src[p.pos])
			p.pos++
		default:
			if c == '\n' {
				p.line++
			}
			b.WriteByte(c)
		}
	}
	return "", p.errorf("unterminated string")
}

// word is a bareword or number: letters, digits, '_', '-', '.', '@'.
func (p *lsParser) word() string {
	p.space()
	start := p.pos
	for p.pos < len(p.src) {
		r := rune(p.src[p.pos])
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && !strings.ContainsRune("_-.@", r) {
			break
		}
		p.pos++
	}
	return p.src[start:p.pos]
}

func (p *lsParser) expect(tok string) error {
	p.space()
	if !strings.HasPrefix(p.src[p.pos:], tok) {
		return p.errorf("want %q, got %q", tok, p.rest())
	}
	p.pos += len(tok)
	return nil
}

func (p *lsParser) space() {
	for p.pos < len(p.src) {
		switch c := p.src[p.pos]; {
		case c == '\n':
			p.line++
			p.pos++
		case c == ' ' || c == '\t' || c == '\r':
			p.pos++
		case c == '#':
			for p.pos < len(p.src) && p.src[p.pos] != '\n' {
				p.pos++
			}
		default:
			return
		}
	}
}

func (p *lsParser) peek() byte {
	if p.pos < len(p.src) {
		return p.src[p.pos]
	}
	return 0
}

func (p *lsParser) rest() string {
	r := p.src[p.pos:]
	if len(r) > 20 {
		r = r[:20]
	}
	return r
}

func (p *lsParser) errorf(format string, a ...any) error {
	return fmt.Errorf("line %d: %s", p.line, fmt.Sprintf(format, a...))
}

// The parser rejects what Logstash rejects, so the test above can fail.
func TestLogstashParserRejects(t *testing.T) {
	for _, bad := range []string{
		"",
		"inputs { }",
		"input { beats { port => 5044 }",
		"input { beats { port 5044 } }",
		"filter { fingerprint { source => [\"a\" \"b\"] } }",
		"filter { fingerprint { target => \"x } }",
		"output { elasticsearch { hosts => [\"h\"] hosts => [\"i\"] } }",
	} {
		if _, err := parseLogstash(bad); err == nil {
			t.Errorf("parsed %q", bad)
		}
	}
	good := "input { beats { port => 5044 } } # c\nfilter { x { a => { \"k\" => 1 } b => [1, 'two'] } }"
	if _, err := parseLogstash(good); err != nil {
		t.Errorf("%q: %v", good, err)
	}
}
