package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	plog "github.com/phuslu/log"
	"github.com/rs/zerolog/diode"
	"golang.org/x/sys/unix"
	"gopkg.in/natefinch/lumberjack.v2"

	"github.com/mmaplog/mmaplog/flush"
	"github.com/mmaplog/mmaplog/mmaplog"
)

// A Target is an opened sink: what the writing goroutines call. Every
// target is safe for concurrent use (a sink that is not, bufio.Writer, is
// given the mutex its users would have to add).
type Target interface {
	Write(p []byte) (int, error)
	Close() error
}

// deliverer is a Target that can drop records: after Close it counts the
// records that reached the file, and the harness reports the difference
// from what was written as dropped. A drop alerter alone would miss the
// records still queued when Close is called.
type deliverer interface{ Delivered() (uint64, error) }

// rotator is a Target that counts its own rotations.
type rotator interface{ Rotations() uint64 }

// rotationWaiter is a Target that counts rotations that had to wait, and
// times the preparation of the segments it waits for.
type rotationWaiter interface {
	RotationWaits() (n uint64, longest time.Duration)
	MaxPrepareTime() time.Duration
}

// Sink is one way of writing log records, as registered in the sink
// registry. A Sink is opened once per case in a fresh directory.
type Sink struct {
	ID      string // unique, used by -sinks and in the JSON: "osfile", "mmaplog/none"
	Name    string // what the table and charts show
	Policy  string // mmaplog's flush policy, "" for other sinks
	Rotates bool   // rotates at the group's segment size
	// Slow marks a sink that takes milliseconds per record (msync per
	// Write): its passes are bounded by time like every other, and the
	// charts leave it out of linear-scale throughput bars where it would
	// not show.
	Slow bool
	// EncodeOnly marks a sink measured only where the loop encodes
	// zerolog events (it keeps nothing: only the encoding costs).
	EncodeOnly bool
	// Note says in one line what the sink is, for the README and -list.
	Note string
	Open func(dir string, segment int64) (Target, error)
}

var sinkRegistry []*Sink

// registerSink adds a sink. Sinks are run in registration order on the
// first repetition (then the order alternates; see Run).
func registerSink(s *Sink) {
	for _, o := range sinkRegistry {
		if o.ID == s.ID {
			panic("bench: sink " + s.ID + " registered twice")
		}
	}
	sinkRegistry = append(sinkRegistry, s)
}

// BaselineSink is the sink every ratio is computed against.
const BaselineSink = "mmaplog/none"

func init() {
	registerSink(&Sink{
		ID: "mmaplog/none", Name: "mmaplog (flush none)", Policy: "none", Rotates: true,
		Note: "mmaplog.Writer, kernel writeback (the default)",
		Open: openMmaplog(flush.NoFlush()),
	})
	registerSink(&Sink{
		ID: "mmaplog/exact-clock", Name: "mmaplog, exact clock", Policy: "none", Rotates: true,
		Note: "mmaplog.Writer with Options.ExactClock: the time read for every record",
		Open: openMmaplogWith(mmaplog.Options{ExactClock: true}),
	})
	registerSink(&Sink{
		ID: "mmaplog/fresh", Name: "mmaplog, new file per segment", Policy: "none", Rotates: true,
		Note: "mmaplog.Writer with Options.NoReuse: every segment a new file, none made from a removed one",
		Open: openMmaplogWith(mmaplog.Options{NoReuse: true}),
	})
	registerSink(&Sink{
		ID: "mmaplog/interval", Name: "mmaplog (interval=100ms)", Policy: "interval=100ms", Rotates: true,
		Note: "mmaplog.Writer, the dirty range msynced (MS_SYNC) every 100 ms in the background",
		Open: openMmaplog(flush.EveryInterval(100 * time.Millisecond)),
	})
	registerSink(&Sink{
		ID: "mmaplog/bytes", Name: "mmaplog (bytes=4MiB)", Policy: "bytes=4MiB", Rotates: true,
		Note: "mmaplog.Writer, background msync(MS_SYNC) every 4 MiB",
		Open: openMmaplog(flush.EveryBytes(4 << 20)),
	})
	registerSink(&Sink{
		ID: "mmaplog/rotate", Name: "mmaplog (rotate)", Policy: "rotate", Rotates: true,
		Note: "mmaplog.Writer, each rolled segment msync'ed in the background",
		Open: openMmaplog(flush.AtRotation()),
	})
	registerSink(&Sink{
		ID: "mmaplog/write", Name: "mmaplog (write: msync each)", Policy: "write", Rotates: true, Slow: true,
		Note: "mmaplog.Writer, msync(MS_SYNC) of each record's pages in Write: durable",
		Open: openMmaplog(flush.EachWrite()),
	})
	registerSink(&Sink{
		ID: "osfile", Name: "os.File O_APPEND",
		Note: "one write(2) per record with O_APPEND: what zerolog.New(file) does",
		Open: openOSFile,
	})
	registerSink(&Sink{
		ID: "bufio", Name: "bufio.Writer 64KiB",
		Note: "bufio.Writer of 64 KiB into a file, behind a mutex; flushed at Close (not crash-safe)",
		Open: openBufio,
	})
	registerSink(&Sink{
		ID: "lumberjack", Name: "lumberjack", Rotates: true,
		Note: "gopkg.in/natefinch/lumberjack.v2 Logger, MaxSize = the segment size",
		Open: openLumberjack,
	})
	registerSink(&Sink{
		ID: "diode", Name: "zerolog diode -> file",
		Note: "zerolog/diode.NewWriter(file, 1000, 10ms): non-blocking, drops records when the file falls behind",
		Open: openDiode,
	})
	registerSink(&Sink{
		ID: "phuslu", Name: "phuslu/log FileWriter", Rotates: true,
		Note: "github.com/phuslu/log FileWriter, MaxSize = the segment size",
		Open: openPhuslu,
	})
	registerSink(&Sink{
		ID: "discard", Name: "io.Discard (encoding only)", EncodeOnly: true,
		Note: "io.Discard: what the zerolog event costs on its own, written nowhere",
		Open: func(string, int64) (Target, error) { return discardTarget{}, nil },
	})
	registerSink(&Sink{
		ID: "memcopy", Name: "memory copy (limit)",
		Note: "copy into a 64 MiB anonymous mapping after an atomic add: the physical limit, keeps nothing",
		Open: openMemcopy,
	})
}

// sinkByID returns the registered sink with that ID, or nil.
func sinkByID(id string) *Sink {
	for _, s := range sinkRegistry {
		if s.ID == id {
			return s
		}
	}
	return nil
}

// --- mmaplog -----------------------------------------------------------------

type mmaplogTarget struct {
	*mmaplog.Writer
	steady int64
	base   *mmaplog.Stats // counters when the measured passes began
}

// SteadyBytes is how much to write, untimed, before measuring mmaplog in
// the steady state of a service that has logged for a while: the default
// retention bound, after which each rotation's segment is made from the
// file retention removed (or, under NoReuse, a new file among the page
// cache's old pages) rather than the first segments of a new directory.
func (t mmaplogTarget) SteadyBytes() int64 { return t.steady }

// StartMeasuring makes the rotation figures cover what follows only, not
// the warm-up and the untimed writing to the steady state.
func (t mmaplogTarget) StartMeasuring() { *t.base = t.ResetMaxima() }

func (t mmaplogTarget) Rotations() uint64 { return t.Stats().Rotations - t.base.Rotations }

// RotationWaits reports the rotations that found the next segment not yet
// prepared, and the longest wait: where mmaplog's Write blocks.
func (t mmaplogTarget) RotationWaits() (uint64, time.Duration) {
	st := t.Stats()
	return st.RotationWaits - t.base.RotationWaits, st.MaxRotationWait
}

// MaxPrepareTime is the longest a segment took to be prepared (created or
// made from a removed one, cleared, mapped and pre-faulted in the
// background): a rotation waits when the writer fills a segment faster
// than that.
func (t mmaplogTarget) MaxPrepareTime() time.Duration { return t.Stats().MaxPrepareTime }

func openMmaplog(p flush.Policy) func(dir string, segment int64) (Target, error) {
	return openMmaplogWith(mmaplog.Options{Flush: p})
}

func openMmaplogWith(o mmaplog.Options) func(dir string, segment int64) (Target, error) {
	return func(dir string, segment int64) (Target, error) {
		o := o
		o.SegmentSize = segment
		w, err := mmaplog.Open(filepath.Join(dir, "log"), &o)
		if err != nil {
			return nil, err
		}
		return mmaplogTarget{w, (mmaplog.DefaultMaxBackups + 3) * segment, &mmaplog.Stats{}}, nil
	}
}

// --- plain files ------------------------------------------------------------

func createFile(dir string) (*os.File, error) {
	return os.OpenFile(filepath.Join(dir, "app.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND|os.O_EXCL, 0o600)
}

func openOSFile(dir string, _ int64) (Target, error) { return createFile(dir) }

// bufioTarget is bufio.Writer with the mutex that concurrent use needs.
type bufioTarget struct {
	mu sync.Mutex
	f  *os.File
	w  *bufio.Writer
}

func openBufio(dir string, _ int64) (Target, error) {
	f, err := createFile(dir)
	if err != nil {
		return nil, err
	}
	return &bufioTarget{f: f, w: bufio.NewWriterSize(f, 64<<10)}, nil
}

func (t *bufioTarget) Write(p []byte) (int, error) {
	t.mu.Lock()
	n, err := t.w.Write(p)
	t.mu.Unlock()
	return n, err
}

func (t *bufioTarget) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	err := t.w.Flush()
	if cerr := t.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// --- lumberjack ---------------------------------------------------------------

type lumberjackTarget struct {
	*lumberjack.Logger
}

func openLumberjack(dir string, segment int64) (Target, error) {
	if segment%(1<<20) != 0 {
		return nil, fmt.Errorf("lumberjack rotates at whole MiB; segment size %d is not one", segment)
	}
	return lumberjackTarget{&lumberjack.Logger{
		Filename:   filepath.Join(dir, "app.log"),
		MaxSize:    int(segment >> 20), // lumberjack's "megabytes" are MiB
		MaxBackups: 8,
	}}, nil
}

// --- zerolog diode ----------------------------------------------------------

type diodeTarget struct {
	diode.Writer
	path string
}

func openDiode(dir string, _ int64) (Target, error) {
	f, err := createFile(dir)
	if err != nil {
		return nil, err
	}
	// The settings of zerolog's README example. Drops are counted from
	// the file after Close (Delivered), which also sees the records still
	// queued at Close.
	return &diodeTarget{Writer: diode.NewWriter(f, 1000, 10*time.Millisecond, nil), path: f.Name()}, nil
}

// Delivered counts the lines that reached the file.
func (t *diodeTarget) Delivered() (uint64, error) {
	f, err := os.Open(t.path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	var n uint64
	for {
		k, err := f.Read(buf)
		n += uint64(bytes.Count(buf[:k], []byte{'\n'}))
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// --- phuslu/log -------------------------------------------------------------

func openPhuslu(dir string, segment int64) (Target, error) {
	return &plog.FileWriter{
		Filename:   filepath.Join(dir, "app.log"),
		MaxSize:    segment,
		MaxBackups: 8,
		FileMode:   0o600,
	}, nil
}

// --- memory copy --------------------------------------------------------------

// memcopyTarget copies each record into an anonymous mapping, reserving its
// place with one atomic add and wrapping at the end: the least any
// concurrent in-memory log can do, and so the physical limit for the others.
type memcopyTarget struct {
	pos atomic.Uint64
	buf []byte
}

const memcopySize = 64 << 20

func openMemcopy(string, int64) (Target, error) {
	buf, err := unix.Mmap(-1, 0, memcopySize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return nil, fmt.Errorf("memcopy: mmap %d anonymous bytes: %w", memcopySize, err)
	}
	return &memcopyTarget{buf: buf}, nil
}

func (t *memcopyTarget) Write(p []byte) (int, error) {
	n := uint64(len(p))
	end := t.pos.Add(n)
	off := (end - n) % memcopySize
	if off+n > memcopySize {
		off = 0
	}
	copy(t.buf[off:], p)
	return len(p), nil
}

func (t *memcopyTarget) Close() error { return unix.Munmap(t.buf) }

type discardTarget struct{}

func (discardTarget) Write(p []byte) (int, error) { return len(p), nil }
func (discardTarget) Close() error                { return nil }
