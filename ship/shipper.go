package ship

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mmaplog/mmaplog/output"
	"github.com/mmaplog/mmaplog/tail"
)

// Defaults of Config.
const (
	DefaultBatchSize    = 2048
	DefaultBatchBytes   = 2 << 20
	DefaultWindow       = 8192
	DefaultWindowBytes  = 16 << 20
	DefaultDrainTimeout = 10 * time.Second
	// OutputWindow is the number of batches the shipper lets an output
	// have in flight (Window and WindowBytes bound them first).
	OutputWindow = 64
)

// Config says what to ship where.
type Config struct {
	// Dir is the log directory.
	Dir string
	// Output is where the events go. Run closes it.
	Output output.Output
	// CursorPath is the cursor file. If it exists, shipping continues
	// after it (a cursor of another log is refused); it is saved after
	// every acknowledged batch. "" ships without a cursor.
	CursorPath string
	// From is where to start when there is no cursor: "begin" (the oldest
	// record; the default), "end" (records written from now on) or a
	// sequence number.
	From string
	// Host is host.name in every event. Default: os.Hostname().
	Host string
	// Fields are extra members of every event (see Encoder).
	Fields map[string]string
	// BatchSize and BatchBytes bound a batch (events, and bytes of JSON).
	// A batch is sent when full, or at once when the shipper has caught up
	// with the writer. Defaults DefaultBatchSize, DefaultBatchBytes.
	BatchSize, BatchBytes int
	// Window is the number of events in flight: published and not yet
	// both acknowledged and saved in the cursor. After a crash of the
	// shipper at most this many events are shipped again. WindowBytes
	// bounds the bytes of JSON they take (and so the shipper's memory).
	// A batch larger than either is sent alone. Defaults DefaultWindow,
	// DefaultWindowBytes. The output's own window (in batches) should be
	// at least OutputWindow.
	Window, WindowBytes int
	// DrainTimeout bounds how long Run waits, once ctx is done, for the
	// batches in flight to be acknowledged. Default DefaultDrainTimeout.
	DrainTimeout time.Duration
	// OnDamage is told about damage (and records lost) the reader met.
	OnDamage func(tail.Damage)
	// Metrics, if set, are updated as the shipper goes.
	Metrics *Metrics
	// Reader tunes the follow reader (HoleWait, WaitTimeout). Its start
	// fields are set from the cursor or From.
	Reader tail.Options
}

// Stats are what a Shipper did.
type Stats struct {
	Read        uint64 // records read
	Acked       uint64 // events acknowledged by the output
	AckedSeq    uint64 // sequence number of the last acknowledged record
	Lost        uint64 // records lost to damage or retention before they were read
	Batches     uint64 // batches acknowledged
	CursorSaves uint64
}

// Shipper follows a log and ships its records to an output, at least once.
type Shipper struct {
	cfg Config
	enc *Encoder
	r   *tail.Reader

	win  window
	free chan *shipBatch

	mu        sync.Mutex
	cursor    tail.Cursor // the last acknowledged position
	dirty     bool        // cursor not saved yet
	saveKick  chan struct{}
	saverDone chan struct{}
	saveErr   error
	unsavedEv int // events acknowledged and not saved yet
	unsavedB  int // their bytes

	read, acked, lost, batches, saves atomic.Uint64
	ackedSeq                          atomic.Uint64
}

type shipBatch struct {
	buf    []byte
	events [][]byte
	last   tail.Record // the batch's last record (Payload not kept)
	sent   time.Time
}

// window bounds the events and bytes in flight: published, and not yet
// acknowledged and saved in the cursor.
type window struct {
	maxEvents, maxBytes int
	mu                  sync.Mutex
	events, bytes       int
	freed               chan struct{}
}

func (w *window) acquire(ctx context.Context, events, bytes int) error {
	for {
		w.mu.Lock()
		if w.events == 0 || w.events+events <= w.maxEvents && w.bytes+bytes <= w.maxBytes {
			w.events += events
			w.bytes += bytes
			w.mu.Unlock()
			return nil
		}
		w.mu.Unlock()
		select {
		case <-w.freed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (w *window) release(events, bytes int) {
	w.mu.Lock()
	w.events -= events
	w.bytes -= bytes
	w.mu.Unlock()
	select {
	case w.freed <- struct{}{}:
	default:
	}
}

// New prepares a shipper: it loads the cursor and opens the log. Run ships.
func New(cfg Config) (*Shipper, error) {
	if cfg.Output == nil {
		return nil, errors.New("ship: no output")
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.BatchBytes <= 0 {
		cfg.BatchBytes = DefaultBatchBytes
	}
	if cfg.Window <= 0 {
		cfg.Window = DefaultWindow
	}
	if cfg.WindowBytes <= 0 {
		cfg.WindowBytes = DefaultWindowBytes
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = DefaultDrainTimeout
	}
	if cfg.Host == "" {
		cfg.Host, _ = os.Hostname()
	}
	enc, err := NewEncoder(cfg.Dir, cfg.Host, cfg.Fields)
	if err != nil {
		return nil, fmt.Errorf("ship: %w", err)
	}
	s := &Shipper{cfg: cfg, enc: enc,
		win:      window{maxEvents: cfg.Window, maxBytes: cfg.WindowBytes, freed: make(chan struct{}, 1)},
		free:     make(chan *shipBatch, 8),
		saveKick: make(chan struct{}, 1), saverDone: make(chan struct{})}
	ro := cfg.Reader
	ro.Follow = true
	ro.FromSeq, ro.FromEnd, ro.LogID = 0, false, [16]byte{}
	haveCursor := false
	if cfg.CursorPath != "" {
		c, err := tail.LoadCursor(cfg.CursorPath)
		switch {
		case err == nil:
			haveCursor = true
			s.cursor = c
			ro.FromSeq, ro.LogID = c.NextSeq, c.LogID
			s.ackedSeq.Store(c.NextSeq - 1)
			s.lost.Store(c.Lost)
		case errors.Is(err, tail.ErrNoCursor):
		default:
			return nil, fmt.Errorf("ship: %w", err)
		}
	}
	if !haveCursor {
		switch cfg.From {
		case "", "begin":
		case "end":
			ro.FromEnd = true
		default:
			n, err := strconv.ParseUint(cfg.From, 10, 64)
			if err != nil || n == 0 {
				return nil, fmt.Errorf("ship: from %q: want begin, end or a sequence number (1 or more)", cfg.From)
			}
			ro.FromSeq = n
		}
	}
	userDamage := ro.OnDamage
	ro.OnDamage = func(d tail.Damage) {
		s.lost.Add(d.Lost)
		if cfg.Metrics != nil {
			cfg.Metrics.lost.Add(float64(d.Lost))
			cfg.Metrics.damage.Inc()
		}
		if userDamage != nil {
			userDamage(d)
		}
		if cfg.OnDamage != nil {
			cfg.OnDamage(d)
		}
	}
	r, err := tail.Open(cfg.Dir, &ro)
	if err != nil {
		return nil, fmt.Errorf("ship: %w", err)
	}
	s.r = r
	if cfg.Metrics != nil {
		cfg.Metrics.attach(s)
	}
	return s, nil
}

// Run ships until ctx is done, then waits (DrainTimeout at most) for the
// batches in flight, saves the cursor, closes the output and returns. It
// returns an error if the log cannot be read on (such as a cursor of
// another log), if the cursor cannot be saved, or if batches were left
// unacknowledged.
func (s *Shipper) Run(ctx context.Context) (err error) {
	go s.saver()
	defer s.r.Close()
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), s.cfg.DrainTimeout)
		defer cancel()
		if cerr := s.cfg.Output.Close(dctx); err == nil && cerr != nil {
			err = fmt.Errorf("ship: %w", cerr)
		}
		close(s.saveKick)
		<-s.saverDone
		if err == nil && s.saveErr != nil {
			err = s.saveErr
		}
	}()
	b := s.newBatch()
	for {
		for len(b.events) < s.cfg.BatchSize && len(b.buf) < s.cfg.BatchBytes && s.r.Next() {
			rec := s.r.Record()
			start := len(b.buf)
			b.buf = s.enc.Append(b.buf, rec)
			b.events = append(b.events, b.buf[start:len(b.buf):len(b.buf)])
			rec.Payload = nil
			b.last = rec
			s.read.Add(1)
		}
		if len(b.events) > 0 {
			if err := s.publish(ctx, b); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			b = s.newBatch()
			continue
		}
		if err := s.r.Err(); err != nil {
			return fmt.Errorf("ship: %w", err)
		}
		if s.r.Wait(ctx) != nil {
			return nil
		}
	}
}

func (s *Shipper) newBatch() *shipBatch {
	select {
	case b := <-s.free:
		b.buf, b.events = b.buf[:0], b.events[:0]
		return b
	default:
		return &shipBatch{buf: make([]byte, 0, s.cfg.BatchBytes+64<<10), events: make([][]byte, 0, s.cfg.BatchSize)}
	}
}

// publish hands b to the output once a window slot is free. The slot is
// given back when b is acknowledged and the cursor holding it is saved.
func (s *Shipper) publish(ctx context.Context, b *shipBatch) error {
	s.mu.Lock()
	serr := s.saveErr
	s.mu.Unlock()
	if serr != nil {
		return serr // shipping on without a durable cursor would not be at least once
	}
	n, size := len(b.events), len(b.buf)
	if err := s.win.acquire(ctx, n, size); err != nil {
		return err
	}
	id, _ := s.r.LogID()
	b.sent = time.Now()
	err := s.cfg.Output.Publish(ctx, b.events, func() { s.ackBatch(b, id, n, size) })
	if err != nil {
		s.win.release(n, size)
	}
	return err
}

// ackBatch runs on the output's goroutine when b is acknowledged.
func (s *Shipper) ackBatch(b *shipBatch, id [16]byte, n, size int) {
	last := b.last
	if m := s.cfg.Metrics; m != nil {
		m.batchLatency.Observe(time.Since(b.sent).Seconds())
		m.events.Add(float64(n))
		m.bytes.Add(float64(size))
		m.ackedSeq.Set(float64(last.Seq))
		m.lastTime.Store(last.Time)
	}
	s.acked.Add(uint64(n))
	s.batches.Add(1)
	s.ackedSeq.Store(last.Seq)
	// The batch's memory goes back for reuse.
	select {
	case s.free <- b:
	default:
	}
	if s.cfg.CursorPath == "" {
		s.win.release(n, size)
		return
	}
	s.mu.Lock()
	s.cursor = tail.Cursor{LogID: id, NextSeq: last.Seq + 1, Segment: last.Segment, Offset: last.Offset + int64(last.Size), Time: last.Time, Lost: s.lost.Load()}
	s.dirty = true
	s.unsavedEv += n
	s.unsavedB += size
	s.mu.Unlock()
	select {
	case s.saveKick <- struct{}{}:
	default:
	}
}

// saver saves the cursor after acknowledgements, coalescing those that come
// while a save is in progress, and frees the window slots of the batches a
// save covered.
func (s *Shipper) saver() {
	defer close(s.saverDone)
	for range s.saveKick {
		s.saveNow()
	}
	s.saveNow()
}

func (s *Shipper) saveNow() {
	s.mu.Lock()
	if !s.dirty {
		s.mu.Unlock()
		return
	}
	c := s.cursor
	ev, by := s.unsavedEv, s.unsavedB
	s.unsavedEv, s.unsavedB = 0, 0
	s.dirty = false
	s.mu.Unlock()
	c.Saved = 0
	err := c.Save(s.cfg.CursorPath)
	if err != nil {
		s.mu.Lock()
		if s.saveErr == nil {
			s.saveErr = fmt.Errorf("ship: %w", err)
		}
		s.mu.Unlock()
	}
	s.saves.Add(1)
	if m := s.cfg.Metrics; m != nil {
		m.saves.Inc()
		if err != nil {
			m.saveErrors.Inc()
		}
	}
	s.win.release(ev, by)
}

// Stats returns the shipper's counters. It is safe to call while Run runs.
func (s *Shipper) Stats() Stats {
	return Stats{Read: s.read.Load(), Acked: s.acked.Load(), AckedSeq: s.ackedSeq.Load(), Lost: s.lost.Load(),
		Batches: s.batches.Load(), CursorSaves: s.saves.Load()}
}
