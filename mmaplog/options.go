package mmaplog

import (
	"fmt"
	"os"
	"time"

	"github.com/mmaplog/mmaplog/flush"
	"github.com/mmaplog/mmaplog/internal/fileutil"
	"github.com/mmaplog/mmaplog/ring"
)

// Defaults used for zero fields of Options (and for a nil *Options).
const (
	// DefaultSegmentSize is the size of each preallocated segment file.
	DefaultSegmentSize = 64 << 20
	// DefaultMaxBackups is the number of rolled segments kept.
	DefaultMaxBackups = 7
	// preparedAhead is how many segments the writer keeps prepared.
	preparedAhead = 2
	// DefaultMaxRecordSize is the largest payload Write accepts.
	DefaultMaxRecordSize = 1 << 20
	// DefaultFileMode is the permission of segment files.
	DefaultFileMode os.FileMode = 0o600
	// DefaultDirMode is the permission of a log directory that Open creates.
	DefaultDirMode os.FileMode = 0o700
)

// Options configure a Writer. A nil *Options means all defaults; a zero field
// means that field's default. Open never modifies the caller's struct.
//
// With the defaults a log directory never holds more than
// (DefaultMaxBackups+3) * DefaultSegmentSize = 640 MiB: seven rolled
// segments, the active one and the next two, prepared in advance. It is a
// ring: the oldest rolled segment is deleted when an eighth is rolled.
type Options struct {
	// SegmentSize is the size of each segment file in bytes, a multiple of
	// the page size of at most 1 GiB (lumberjack's MaxSize, in bytes).
	// Default 64 MiB.
	SegmentSize int64
	// MaxBackups is how many rolled segments are kept (lumberjack's
	// MaxBackups). Default 7; -1 keeps every segment (then disk use is
	// bounded only by MaxTotalSize and MaxAge, if set). The directory
	// holds at most MaxBackups+3 segments: the rolled ones, the active one
	// and two prepared ahead.
	MaxBackups int
	// MaxAge removes rolled segments rolled longer ago than this
	// (lumberjack's MaxAge, as a duration). Default 0: no age limit.
	MaxAge time.Duration
	// MaxTotalSize bounds the bytes of all segment files of the log,
	// active and prepared segment included; the oldest rolled segments are
	// removed to stay below it. Default 0: bounded by MaxBackups alone.
	MaxTotalSize int64
	// Compress compresses rolled segments with zstd (lumberjack's
	// Compress). Readers read them transparently. Default false.
	Compress bool
	// KeepUnshipped keeps every rolled segment that a registered consumer
	// still needs: MaxBackups and MaxAge remove no segment holding a
	// record at or after the lowest NextSeq of the cursors under
	// DIR/cursors that belong to this log (a shipper's cursor, or the
	// registration of a cursor kept elsewhere). Only MaxTotalSize, which
	// it requires, removes such a segment; each removal is counted
	// (Stats.UnshippedRemoved, UnshippedRecords) and reported to OnError
	// and by the next Sync as an *UnshippedError naming the records and
	// the cursors that still needed them. A cursor of another log, or
	// one that cannot be read, is ignored and reported once to OnError.
	// Deleting a cursor file unregisters its consumer. Default false.
	KeepUnshipped bool

	// MaxRecordSize is the largest payload Write accepts; larger ones get
	// ErrTooLarge. Default 1 MiB, capped by what one segment can hold.
	MaxRecordSize int
	// Flush is the flush policy; see package flush for what survives which
	// failure under each. Default flush.None(): kernel writeback.
	Flush flush.Policy

	// FileMode is the permission of new segment files. Default 0600.
	FileMode os.FileMode
	// DirMode is the permission of the log directory if Open creates it.
	// Default 0700.
	DirMode os.FileMode
	// NoPrefault turns off pre-faulting segments when they are prepared.
	// Pre-faulting keeps page faults off the Write path at the cost of
	// touching a whole segment in the background. Default false.
	NoPrefault bool
	// NoReuse makes every segment from a new file. By default the files
	// of segments that retention removes, and the plain files of
	// compressed segments, are kept (two at most) and cleared to make
	// the next segments: that allocates no new page-cache pages and
	// takes a few milliseconds instead of tens to hundreds. A file is
	// reused only when no live reader has it open.
	NoReuse bool
	// KeepNewline keeps a trailing newline in what Write is given. By
	// default one trailing '\n' (which zerolog, slog and zap end every
	// line with) is dropped: the record framing already delimits records.
	KeepNewline bool

	// OnError receives errors of background work (retention, compression,
	// flushes, finishing rolled segments). They are also returned by the
	// next Sync or Close. Default: nil.
	OnError func(error)
	// ExactClock stamps every record with the time read when its Write
	// began. By default a record's time is read from a clock that a
	// background goroutine advances every ClockResolution while records
	// arrive: one memory load instead of a clock read per record, and a
	// time stamp at most ClockResolution (plus however long the goroutine
	// waits for a CPU) before the Write began.
	ExactClock bool
	// Clock, if set, is called for every record's time stamp (the record
	// clock and the monotonic base are not used). For tests.
	Clock func() time.Time
}

// ClockResolution is how often the record clock advances while records
// arrive (see Options.ExactClock).
const ClockResolution = 500 * time.Microsecond

// options is Options with every default filled in.
type options struct {
	Options
	now func() time.Time
}

func (o *Options) resolve() (options, error) {
	var r options
	if o != nil {
		r.Options = *o
	}
	if r.SegmentSize == 0 {
		r.SegmentSize = DefaultSegmentSize
	}
	page := int64(fileutil.PageSize())
	if r.SegmentSize < 4*page || r.SegmentSize > ring.MaxRegionSize || r.SegmentSize%page != 0 {
		return r, fmt.Errorf("mmaplog: SegmentSize %d: want a multiple of the page size (%d) from %d bytes to 1 GiB", r.SegmentSize, page, 4*page)
	}
	switch {
	case r.MaxBackups == 0:
		r.MaxBackups = DefaultMaxBackups
	case r.MaxBackups < -1:
		return r, fmt.Errorf("mmaplog: MaxBackups %d: want a count, or -1 for unlimited", r.MaxBackups)
	}
	if r.MaxAge < 0 || r.MaxTotalSize < 0 {
		return r, fmt.Errorf("mmaplog: MaxAge and MaxTotalSize must not be negative")
	}
	if r.KeepUnshipped && r.MaxTotalSize == 0 {
		return r, fmt.Errorf("mmaplog: KeepUnshipped needs MaxTotalSize: the most disk the log may take while a consumer lags (past it, records not yet shipped are removed)")
	}
	if min := (preparedAhead + 2) * r.SegmentSize; r.MaxTotalSize > 0 && r.MaxTotalSize < min {
		return r, fmt.Errorf("mmaplog: MaxTotalSize %d is less than %d segments (%d bytes): the active one, the %d prepared ahead and one rolled segment must fit", r.MaxTotalSize, preparedAhead+2, min, preparedAhead)
	}
	maxFit := ring.MaxPayloadFor(int(r.SegmentSize))
	switch {
	case r.MaxRecordSize == 0:
		r.MaxRecordSize = min(DefaultMaxRecordSize, maxFit)
	case r.MaxRecordSize < 0 || r.MaxRecordSize > maxFit:
		return r, fmt.Errorf("mmaplog: MaxRecordSize %d: want 1 to %d (what a %d-byte segment holds)", r.MaxRecordSize, maxFit, r.SegmentSize)
	}
	if err := r.Flush.Validate(); err != nil {
		return r, fmt.Errorf("mmaplog: %w", err)
	}
	if r.FileMode == 0 {
		r.FileMode = DefaultFileMode
	}
	if r.DirMode == 0 {
		r.DirMode = DefaultDirMode
	}
	r.now = time.Now
	if r.Clock != nil {
		r.now = r.Clock
	}
	return r, nil
}

// DiskBound returns the most bytes the log directory can hold under these
// options, or -1 if it is unbounded.
func (o *Options) DiskBound() int64 {
	r, err := o.resolve()
	if err != nil {
		return -1
	}
	bound := int64(-1)
	if r.MaxBackups >= 0 && !r.KeepUnshipped { // KeepUnshipped: MaxTotalSize alone bounds the directory
		bound = int64(r.MaxBackups+1+preparedAhead) * r.SegmentSize
	}
	if r.MaxTotalSize > 0 && (bound < 0 || r.MaxTotalSize < bound) {
		bound = r.MaxTotalSize
	}
	return bound
}
