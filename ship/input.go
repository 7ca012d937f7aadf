package ship

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/mmaplog/mmaplog/tail"
)

// Input is a group of logs shipped with settings of their own: a config
// file's inputs, each with its own fields and cursors. Config.Logs (with
// Config's cursor settings and fields) is one input; Config.Inputs are the
// others. A log that two inputs match is shipped once, with the settings of
// the first one.
type Input struct {
	// Logs are directories or shell patterns of directories, as
	// Config.Logs (at least one).
	Logs []string
	// Fields are extra members of the input's events, added to
	// Config.Fields (the input's value wins where both have a key).
	Fields map[string]string
	// CursorPath is the cursor file of the input's one log (a single plain
	// path in Logs); it is never taken from Config.
	CursorPath string
	// CursorName and CursorDir are as Config's, for the input's logs; ""
	// takes Config's.
	CursorName, CursorDir string
	// From is as Config.From, for the input's logs without a cursor; nil
	// takes Config.From.
	From *tail.Start
}

// input is an Input checked, with Config's defaults filled in.
type input struct {
	logs                              []string // cleaned
	fields                            map[string]string
	cursorPath, cursorName, cursorDir string
	start                             tail.Start
	// key says every setting, so that a reload tells an input whose
	// settings changed from the same one.
	key string
}

// resolveInputs checks the inputs (Config.Logs as the first, then
// Config.Inputs or, on a reload, the list given) and fills in Config's
// defaults.
func resolveInputs(cfg *Config, list []Input) ([]*input, error) {
	var out []*input
	cursors := map[string]bool{}
	for i, in := range list {
		what := fmt.Sprintf("input %d", i+1)
		if len(in.Logs) == 0 {
			return nil, fmt.Errorf("ship: %s: no log to ship", what)
		}
		r := &input{cursorPath: in.CursorPath, cursorName: in.CursorName, cursorDir: in.CursorDir}
		for _, p := range in.Logs {
			if p == "" {
				return nil, fmt.Errorf("ship: %s: an empty log path", what)
			}
			if _, err := filepath.Match(p, ""); err != nil {
				return nil, fmt.Errorf("ship: %s: log pattern %q: %w", what, p, err)
			}
			r.logs = append(r.logs, filepath.Clean(p))
		}
		if r.cursorName == "" {
			r.cursorName = cfg.CursorName
		}
		if r.cursorDir == "" {
			r.cursorDir = cfg.CursorDir
		}
		if r.cursorPath != "" {
			if len(r.logs) != 1 || isPattern(r.logs[0]) {
				return nil, fmt.Errorf("ship: %s: a cursor file is for one log; with several logs or a pattern, name the cursors (CursorName) instead", what)
			}
			if cursors[r.cursorPath] {
				return nil, fmt.Errorf("ship: %s: cursor file %s is another input's already", what, r.cursorPath)
			}
			cursors[r.cursorPath] = true
		}
		if strings.ContainsAny(r.cursorName, `/\`) || r.cursorName == "." || r.cursorName == ".." {
			return nil, fmt.Errorf("ship: %s: cursor name %q: want a file name", what, r.cursorName)
		}
		r.start = cfg.From
		if in.From != nil {
			r.start = *in.From
		}
		r.fields = make(map[string]string, len(cfg.Fields)+len(in.Fields))
		for k, v := range cfg.Fields {
			r.fields[k] = v
		}
		for k, v := range in.Fields {
			r.fields[k] = v
		}
		// The encoder checks the fields once here, so that a bad one is
		// an error before anything runs.
		if _, err := NewEncoder("/", cfg.Host, r.fields); err != nil {
			return nil, fmt.Errorf("ship: %s: %w", what, err)
		}
		key, _ := json.Marshal(struct {
			Logs                  []string
			Fields                map[string]string
			Path, Name, Dir, From string
		}{r.logs, r.fields, r.cursorPath, r.cursorName, r.cursorDir, r.start.String()})
		r.key = string(key)
		out = append(out, r)
	}
	return out, nil
}

// patterns reports whether an input has a pattern, which may bring logs
// later.
func (in *input) patterns() bool {
	for _, p := range in.logs {
		if isPattern(p) {
			return true
		}
	}
	return false
}

// matches reports whether the input names the log in dir (cleaned).
func (in *input) matches(dir string) bool {
	for _, p := range in.logs {
		if p == dir {
			return true
		}
		if isPattern(p) {
			if ok, _ := filepath.Match(p, dir); ok {
				return true
			}
		}
	}
	return false
}

// cursorFor returns the cursor file of the log in dir ("" for none).
func (in *input) cursorFor(dir string) string {
	switch {
	case in.cursorPath != "":
		return in.cursorPath
	case in.cursorDir != "":
		name := in.cursorName
		if name == "" {
			name = "ship"
		}
		return filepath.Join(in.cursorDir, name, CursorFileName(dir))
	case in.cursorName != "":
		return tail.CursorPath(dir, in.cursorName)
	}
	return ""
}

// claim returns the input that ships the log in dir: the first that names
// it (under mu).
func (s *Shipper) claim(dir string) *input {
	for _, in := range s.inputs {
		if in.matches(dir) {
			return in
		}
	}
	return nil
}

// ErrStopped is returned by SetInputs once Run has stopped, or is
// stopping.
var ErrStopped = errors.New("ship: the shipper is stopping")

// SetInputs replaces the inputs (Config.Logs and Config.Inputs alike) while
// Run runs, as `mmaptail ship` does on SIGHUP. A log no input names any
// more stops: what it published is acknowledged and its cursor saved, then
// everything it held is let go. A log whose input's settings changed
// (fields, cursor, From) stops so and starts again with the new ones (with
// the same cursor it goes on where it was). Logs of inputs that stay the
// same go on untouched, and logs of new inputs start at once. An error (a
// bad pattern, fields, cursor) changes nothing.
func (s *Shipper) SetInputs(list []Input) error {
	ins, err := resolveInputs(&s.cfg, list)
	if err != nil {
		return err
	}
	if len(ins) == 0 {
		return errors.New("ship: no log to ship")
	}
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		return ErrStopped
	}
	s.inputs = ins
	var stops []*logShipper
	var whys []releaseReason
	for _, l := range s.order {
		switch in := s.claim(l.dir); {
		case in == nil:
			stops, whys = append(stops, l), append(whys, releaseRemoved)
		case in.key != l.in.key:
			stops, whys = append(stops, l), append(whys, releaseChanged)
		}
	}
	for p := range s.waiting {
		still := false
		for _, in := range ins {
			for _, q := range in.logs {
				still = still || q == p
			}
		}
		if !still {
			delete(s.waiting, p)
		}
	}
	s.mu.Unlock()
	for i, l := range stops {
		s.stopLog(l, whys[i])
	}
	s.kick()
	return nil
}

// kick makes Run look for logs now.
func (s *Shipper) kick() {
	select {
	case s.rescan <- struct{}{}:
	default:
	}
}
