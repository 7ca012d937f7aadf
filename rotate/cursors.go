package rotate

import (
	"encoding/hex"
	"fmt"
	"sort"

	"github.com/mmaplog/mmaplog/internal/cursorfile"
)

// Cursor is a consumer registered in a log directory's cursors folder, as
// Retention.KeepUnshipped under a Lifecycle reads it: its file name there
// and the first record it has not passed.
type Cursor struct {
	Name    string
	NextSeq uint64
	// CursorFile is, for the registration of a cursor kept elsewhere (a
	// shipper's --cursor-dir), where that cursor is.
	CursorFile string
}

// consumers reads the cursors registered for one log, for the retention
// passes under KeepUnshipped, and remembers the files it ignored (another
// log's, or unreadable) so that each is reported once until what is wrong
// with it changes. Not safe for concurrent use.
type consumers struct {
	ignored map[string]string // file name ("": the folder) -> why, as reported
}

// read returns the lowest NextSeq of the cursors in dir that belong to the
// log logID (0: none), and those cursors, lowest first; and why each file
// newly ignored is ignored.
func (c *consumers) read(dir string, logID [16]byte) (keep uint64, cs []Cursor, report []error) {
	if c.ignored == nil {
		c.ignored = map[string]string{}
	}
	seen := map[string]bool{}
	ignore := func(name string, err error) {
		seen[name] = true
		if c.ignored[name] != err.Error() {
			c.ignored[name] = err.Error()
			report = append(report, err)
		}
	}
	ents, err := cursorfile.List(dir)
	if err != nil {
		ignore("", fmt.Errorf("the cursors of %s cannot be listed: %w", dir, err))
	}
	for _, e := range ents {
		switch {
		case e.Err != nil:
			ignore(e.Name, e.Err)
		case e.Cursor.LogID != logID:
			ignore(e.Name, fmt.Errorf("cursor %s belongs to another log (id %s, this log's %s): delete it if its consumer is gone",
				e.Path, hex.EncodeToString(e.Cursor.LogID[:]), hex.EncodeToString(logID[:])))
		default:
			cs = append(cs, Cursor{Name: e.Name, NextSeq: e.Cursor.NextSeq, CursorFile: e.Cursor.CursorFile})
		}
	}
	// Forget the files gone or mended, so that one that goes wrong again
	// is reported again.
	for n := range c.ignored {
		if !seen[n] {
			delete(c.ignored, n)
		}
	}
	if len(cs) == 0 {
		return 0, nil, report
	}
	sort.SliceStable(cs, func(i, j int) bool {
		return cs[i].NextSeq < cs[j].NextSeq || cs[i].NextSeq == cs[j].NextSeq && cs[i].Name < cs[j].Name
	})
	return cs[0].NextSeq, cs, report
}

// ignoring returns how many files read ignores now.
func (c *consumers) ignoring() int { return len(c.ignored) }
