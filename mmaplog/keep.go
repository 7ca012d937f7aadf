package mmaplog

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

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

// noteUnshipped counts the segments a retention pass removed though a
// registered cursor of cs (lowest first) still needed them, and reports
// each as an *UnshippedError.
func (w *Writer) noteUnshipped(removed []rotate.Action, cs []rotate.Cursor) {
	var keep uint64 // the lowest NextSeq of the cursors
	if len(cs) > 0 {
		keep = cs[0].NextSeq
	}
	var errs []error
	var records uint64
	for _, a := range removed {
		e := &UnshippedError{Path: filepath.Clean(a.Path), MaxTotalSize: w.opts.MaxTotalSize}
		if a.NextSeq != 0 && a.NextSeq > max(a.FirstSeq, keep) {
			e.FirstSeq, e.LastSeq = max(a.FirstSeq, keep), a.NextSeq-1
		}
		for _, c := range cs {
			if a.NextSeq == 0 || c.NextSeq < a.NextSeq {
				e.Cursors = append(e.Cursors, CursorPos(c))
			}
		}
		records += e.Records()
		errs = append(errs, e)
	}
	w.mu.Lock()
	w.stats.UnshippedRemoved += uint64(len(removed))
	w.stats.UnshippedRecords += records
	w.mu.Unlock()
	for _, err := range errs {
		w.backgroundError(err)
	}
}
