package mmaplog

import (
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/mmaplog/mmaplog/internal/cursorfile"
	"github.com/mmaplog/mmaplog/rotate"
)

// Errors of Options.KeepUnshipped. Test for them with errors.Is.
var (
	// ErrUnshippedRemoved: MaxTotalSize removed a rolled segment holding
	// records that a registered cursor had not passed yet. The error is
	// an *UnshippedError, which says which records and which cursors.
	ErrUnshippedRemoved = errors.New("mmaplog: records removed before every registered cursor passed them")
	// ErrCursorIgnored: a file under DIR/cursors is not a cursor of this
	// log (another log's, or one that cannot be read): KeepUnshipped keeps
	// nothing for it. Reported once to OnError, until the file changes.
	ErrCursorIgnored = errors.New("mmaplog: cursor ignored by KeepUnshipped")
)

// CursorPos is a registered cursor: its file name under DIR/cursors and
// the first record its consumer has not passed.
type CursorPos struct {
	Name    string
	NextSeq uint64
	// CursorFile is, for the registration of a cursor kept elsewhere (a
	// shipper's --cursor-dir), where that cursor is.
	CursorFile string
}

func (c CursorPos) String() string {
	s := fmt.Sprintf("%s (next %d", c.Name, c.NextSeq)
	if c.CursorFile != "" {
		s += ", cursor " + c.CursorFile
	}
	return s + ")"
}

// UnshippedError reports a rolled segment that MaxTotalSize removed while a
// registered cursor still needed records in it (Options.KeepUnshipped).
// It wraps ErrUnshippedRemoved.
type UnshippedError struct {
	Path string // the segment file removed
	// FirstSeq to LastSeq are the records removed that a registered
	// cursor had not passed (the segment's records from the lowest
	// cursor's NextSeq on); both 0 if its header could not be read.
	FirstSeq, LastSeq uint64
	// Cursors are the registered cursors that had not passed LastSeq,
	// lowest first.
	Cursors      []CursorPos
	MaxTotalSize int64
}

// Records returns how many records the error says were removed unshipped.
func (e *UnshippedError) Records() uint64 {
	if e.LastSeq == 0 {
		return 0
	}
	return e.LastSeq - e.FirstSeq + 1
}

func (e *UnshippedError) Error() string {
	what := "records not known (its header could not be read)"
	if e.LastSeq != 0 {
		what = fmt.Sprintf("records %d to %d (%d)", e.FirstSeq, e.LastSeq, e.Records())
	}
	cs := make([]string, len(e.Cursors))
	for i, c := range e.Cursors {
		cs[i] = c.String()
	}
	return fmt.Sprintf("mmaplog: log over MaxTotalSize=%d: removed %s holding %s that cursor(s) %s had not passed: raise MaxTotalSize, or speed up or unregister (delete the cursor of) the consumer",
		e.MaxTotalSize, e.Path, what, strings.Join(cs, ", "))
}

func (e *UnshippedError) Unwrap() error { return ErrUnshippedRemoved }

// consumers reads the cursors registered under DIR/cursors (retMu held):
// the lowest NextSeq among those of this log (0: none), and them, lowest
// first; and the errors to report about the files it ignored, each once
// until what it says changes (the caller reports them once retMu is
// released).
func (w *Writer) consumers() (keep uint64, cs []CursorPos, report []error) {
	seen := map[string]bool{}
	ignore := func(name string, err error) {
		seen[name] = true
		if w.ignored[name] != err.Error() {
			w.ignored[name] = err.Error()
			report = append(report, err)
		}
	}
	ents, err := cursorfile.List(w.dir)
	if err != nil {
		ignore("", fmt.Errorf("%w: the cursors of %s cannot be listed: %w", ErrCursorIgnored, w.dir, err))
	}
	for _, e := range ents {
		switch {
		case e.Err != nil:
			ignore(e.Name, fmt.Errorf("%w: %w", ErrCursorIgnored, e.Err))
		case e.Cursor.LogID != w.logID:
			ignore(e.Name, fmt.Errorf("%w: cursor %s belongs to another log (id %s, this log's %s): delete it if its consumer is gone",
				ErrCursorIgnored, e.Path, hex.EncodeToString(e.Cursor.LogID[:]), hex.EncodeToString(w.logID[:])))
		default:
			cs = append(cs, CursorPos{Name: e.Name, NextSeq: e.Cursor.NextSeq, CursorFile: e.Cursor.CursorFile})
		}
	}
	// Forget the files gone or mended, so that one that goes wrong again
	// is reported again.
	for n := range w.ignored {
		if !seen[n] {
			delete(w.ignored, n)
		}
	}
	w.mu.Lock()
	w.stats.IgnoredCursors = uint64(len(w.ignored))
	w.mu.Unlock()
	if len(cs) == 0 {
		return 0, nil, report
	}
	sortCursors(cs)
	return cs[0].NextSeq, cs, report
}

func sortCursors(cs []CursorPos) {
	for i := 1; i < len(cs); i++ {
		for j := i; j > 0 && (cs[j].NextSeq < cs[j-1].NextSeq || cs[j].NextSeq == cs[j-1].NextSeq && cs[j].Name < cs[j-1].Name); j-- {
			cs[j], cs[j-1] = cs[j-1], cs[j]
		}
	}
}

// noteKept counts the segments a retention pass removed unshipped (for the
// registered cursors cs, keep the lowest NextSeq), and reports each.
func (w *Writer) noteKept(res rotate.Result, keep uint64, cs []CursorPos) {
	if !w.opts.KeepUnshipped {
		return
	}
	var errs []error
	var removed, records uint64
	for _, a := range res.Actions {
		if !a.Unshipped {
			continue
		}
		e := &UnshippedError{Path: filepath.Clean(a.Path), MaxTotalSize: w.opts.MaxTotalSize}
		if a.NextSeq != 0 && a.NextSeq > max(a.FirstSeq, keep) {
			e.FirstSeq, e.LastSeq = max(a.FirstSeq, keep), a.NextSeq-1
		}
		for _, c := range cs {
			if a.NextSeq == 0 || c.NextSeq < a.NextSeq {
				e.Cursors = append(e.Cursors, c)
			}
		}
		removed++
		records += e.Records()
		errs = append(errs, e)
	}
	w.mu.Lock()
	w.stats.UnshippedRemoved += removed
	w.stats.UnshippedRecords += records
	w.mu.Unlock()
	for _, err := range errs {
		w.backgroundError(err)
	}
}
