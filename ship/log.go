package ship

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mmaplog/mmaplog/output"
	"github.com/mmaplog/mmaplog/tail"
)

// logShipper ships one log: a following reader, an encoder, the log's own
// source of the output (its acknowledgements come back in its order), its
// window, and its cursor with the cursor's lock and saver.
type logShipper struct {
	s        *Shipper
	dir      string
	in       *input
	announce bool // say when it starts: it was found by a pattern, or appeared later
	cpath    string
	// cursorInDir: the cursor is under the log directory, and goes with it.
	cursorInDir bool
	reg         registration // of a cursor kept elsewhere (register.go)

	// ctx is the log's own (Run's, or cancelled to stop this log alone);
	// waitCtx is cancelled (wake) to end a Wait for the writer, when the
	// directory is gone and the log is to be read to its end and let go.
	ctx, waitCtx context.Context
	cancel, wake context.CancelFunc
	why          releaseReason // why it is being let go (under s.mu)
	exited       bool          // run returned (under s.mu)
	gone         atomic.Bool   // the directory was removed or replaced
	noSave       atomic.Bool   // the cursor is under the gone directory: never saved again
	drained      bool          // run read to the end of what was readable, after gone
	dev, ino     uint64        // of the directory, when the log was started
	inflight     atomic.Int64  // batches published and not acknowledged
	acksIdle     chan struct{} // inflight came to 0
	src          output.Publisher
	enc          *Encoder
	r            *tail.Reader
	lock         *cursorLock
	logID        [16]byte
	window       window

	// pending: the reader's record is read and not in a batch yet (the
	// budget had no room for it). slack is what the encoder adds to a
	// record, at most, besides the escaping of its text (see place).
	pending bool
	slack   int
	// idle: the last Next found nothing. holding: this log is one of the
	// Shipper's holders (doneReading).
	idle, holding bool

	// beyond is the sequence number shipping resumes at while the cursor
	// (or From) is beyond the end of the log; 0 otherwise.
	beyond atomic.Uint64

	mu        sync.Mutex
	cursor    tail.Cursor // the last acknowledged position
	dirty     bool        // cursor not saved yet
	saveKick  chan struct{}
	saverDone chan struct{}
	saving    bool // the saver runs
	saveErr   error
	unsavedEv int           // events acknowledged and not saved yet
	unsavedB  int           // their bytes
	halfKick  chan struct{} // half the window waits for a save
	err       error

	read, acked, lost, damage, batches, bytes, saves, saveErrs atomic.Uint64
	ackedSeq, lastTime                                         atomic.Uint64
	lag                                                        lagCache
}

// LogError is why the shipping of one log stopped. Run reports it through
// Config.Logf when it happens and returns it in its error at the end.
type LogError struct {
	Dir string
	Err error
}

func (e *LogError) Error() string { return e.Dir + ": " + e.Err.Error() }
func (e *LogError) Unwrap() error { return e.Err }

// Unreported returns err without the LogErrors in it (nil if that leaves
// nothing): what Run's caller has not been told through Config.Logf.
func Unreported(err error) error {
	var le *LogError
	if err == nil || errors.As(err, &le) && le == err {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var rest []error
		for _, e := range j.Unwrap() {
			if e := Unreported(e); e != nil {
				rest = append(rest, e)
			}
		}
		return errors.Join(rest...)
	}
	return err
}

// window bounds one log's events and bytes in flight: published, and not
// yet acknowledged and saved in the cursor. Only the log's goroutine adds
// to it.
type window struct {
	maxEvents, maxBytes int
	mu                  sync.Mutex
	events, bytes       int
	freed               chan struct{}
}

// room waits until the window has room for a batch, and returns how many
// events and bytes the batch may take (at least one event).
func (w *window) room(ctx context.Context) (events, bytes int, err error) {
	for {
		if events, bytes, ok := w.tryRoom(); ok {
			return events, bytes, nil
		}
		select {
		case <-w.freed:
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		}
	}
}

// tryRoom is room without the wait: ok false when the window is full.
func (w *window) tryRoom() (events, bytes int, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.events == 0 {
		return w.maxEvents, w.maxBytes, true
	}
	if w.events < w.maxEvents && w.bytes < w.maxBytes {
		return w.maxEvents - w.events, w.maxBytes - w.bytes, true
	}
	return 0, 0, false
}

func (w *window) add(events, bytes int) {
	w.mu.Lock()
	w.events += events
	w.bytes += bytes
	w.mu.Unlock()
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

func newLogShipper(s *Shipper, dir string, in *input) *logShipper {
	l := &logShipper{s: s, dir: dir, in: in, cpath: in.cursorFor(dir),
		window:   window{maxEvents: s.cfg.Window, maxBytes: s.cfg.WindowBytes, freed: make(chan struct{}, 1)},
		saveKick: make(chan struct{}, 1), halfKick: make(chan struct{}, 1), saverDone: make(chan struct{}), acksIdle: make(chan struct{}, 1)}
	l.cursorInDir = l.cpath != "" && within(l.cpath, dir)
	l.reg.path = registrationPath(dir, l.cpath, in)
	return l
}

// open locks and loads the cursor and opens the reader.
func (l *logShipper) open() error {
	cfg := &l.s.cfg
	enc, err := NewEncoder(l.dir, cfg.Host, l.in.fields)
	if err != nil {
		return err
	}
	l.enc, l.slack = enc, enc.slack()
	ro := cfg.Reader
	ro.Follow = true
	ro.FromSeq, ro.FromEnd, ro.LogID = 0, false, [16]byte{}
	haveCursor := false
	if l.cpath != "" {
		lock, err := lockCursor(l.cpath)
		if err != nil {
			return err
		}
		l.lock = lock
		c, err := tail.LoadCursor(l.cpath)
		switch {
		case err == nil:
			if id, ok := tail.LogID(l.dir); ok {
				if err := c.Check(id, l.cpath); err != nil {
					return err
				}
			}
			haveCursor = true
			l.cursor = c
			l.register(c)
			ro.FromSeq, ro.LogID = c.NextSeq, c.LogID
			l.ackedSeq.Store(c.NextSeq - 1)
			l.lost.Store(c.Lost)
		case errors.Is(err, tail.ErrNoCursor):
		default:
			return err
		}
	}
	if !haveCursor {
		l.in.start.Apply(&ro)
	}
	if ro.FromSeq > 1 {
		l.checkBeyond(ro.FromSeq, haveCursor)
	}
	userDamage := ro.OnDamage
	ro.OnDamage = func(d tail.Damage) {
		l.lost.Add(d.Lost)
		l.damage.Add(1)
		if userDamage != nil {
			userDamage(d)
		}
		if cfg.OnDamage != nil {
			cfg.OnDamage(d)
		}
	}
	userStall := ro.OnStall
	ro.OnStall = func(s tail.Stall) {
		if userStall != nil {
			userStall(s)
		}
		word := "warning"
		if s.Over {
			word = "note"
		}
		cfg.Logf("%s: %s: %s", l.dir, word, s)
	}
	r, err := tail.Open(l.dir, &ro)
	if err != nil {
		return err
	}
	l.r = r
	return nil
}

// checkBeyond warns when shipping would start past the log's newest record.
func (l *logShipper) checkBeyond(next uint64, cursor bool) {
	e, err := tail.End(l.dir)
	if err != nil {
		return
	}
	st := Locate(next, e)
	if st.Position != BeyondEnd {
		return
	}
	l.beyond.Store(next)
	what := "--from " + fmt.Sprint(next)
	if cursor {
		what = "the cursor " + l.cpath
	}
	l.s.cfg.Logf("%s: warning: %s asks for record %d but the newest record is %d: nothing is shipped until the log grows past it, and records %d to %d never are (a log restored from an older copy? delete the cursor to ship from --from)",
		l.dir, what, next, st.Newest, st.Newest+1, next-1)
}

// run ships the log until ctx is done or it cannot go on.
func (l *logShipper) run(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			err = &LogError{Dir: l.dir, Err: err}
			l.mu.Lock()
			l.err = err
			l.mu.Unlock()
		}
	}()
	if err := l.open(); err != nil {
		return err
	}
	l.src = l.s.cfg.Output.NewSource()
	l.mu.Lock()
	l.saving = true
	l.mu.Unlock()
	go l.saver()
	defer func() {
		l.r.Close()
		if l.holding {
			l.s.holders.Add(-1)
		}
	}()
	if l.announce {
		l.s.cfg.Logf("%s: picked up, shipping (cursor %s)", l.dir, orNone(l.cpath))
	}
	reading := false // holding a reading token (readSlot)
	for {
		if !l.pending {
			if err := l.readSlot(ctx); err != nil {
				return nil
			}
			if !l.r.Next() {
				if stop, err := l.caughtUp(ctx); stop {
					return err
				}
				continue
			}
			l.readOne()
			reading = true
		}
		err := l.batch(ctx, reading)
		reading = false
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

// caughtUp is what run does when the reader found no record: it waits for
// the writer, unless the log is to stop (stop: with err, or nil where it
// stops as asked or its directory went).
func (l *logShipper) caughtUp(ctx context.Context) (stop bool, err error) {
	// The pages may stay mapped for the next record (doneReading); found
	// nothing twice in a row: the log is quiet, they go.
	l.doneReading(!l.idle && !l.gone.Load())
	l.idle = true
	if err := l.r.Err(); err != nil {
		if l.gone.Load() || l.dirGone() {
			// The directory went while the reader was between
			// segments: what is left is gone.
			l.s.cfg.Logf("%s: removed; reading on stopped at record %d: %s", l.dir, l.r.NextSeq(), err)
			return true, nil
		}
		return true, err
	}
	if l.gone.Load() {
		l.drained = true // everything still readable is read
		return true, nil
	}
	if l.r.Wait(l.waitCtx) != nil && ctx.Err() != nil {
		return true, nil
	}
	return false, nil
}

// readSlot waits for one of the few tokens that let a log read records
// (Shipper.reading), in turn: the channel's waiters are served in order.
// Reading a record maps the page-cache folio that holds it (the kernel maps
// folios of up to a few MiB whole), so with a hundred logs reading at once
// the shipper would hold a hundred of them; with the tokens only those
// logs that read right now hold any, and each gives its pages back
// (doneReading) before it lets go. Waits for the window, the budget and
// the writer happen without a token.
func (l *logShipper) readSlot(ctx context.Context) error {
	select {
	case l.s.reading <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// doneReading gives back the reading token and the segment pages the
// reader mapped (the events are copied out; it costs one madvise, and one
// fault at the next read). With keep, a log that caught up keeps them for
// its next record, which comes soon if the log is busy, so that a log
// getting a record every millisecond costs no madvise per record; but only
// readers() logs at once may keep pages (Shipper.holders): when many logs
// catch up together, or many busy logs each get a record now and then,
// the others give theirs back, and the pages mapped stay a few folios
// whatever the number of logs. A log kept waiting for its next record
// gives them back itself (tail.Reader.Wait).
func (l *logShipper) doneReading(keep bool) {
	if keep && !l.holding {
		if l.s.holders.Add(1) <= int32(readers()) {
			l.holding = true
		} else {
			l.s.holders.Add(-1)
			keep = false
		}
	}
	if !keep {
		l.r.Release()
		if l.holding {
			l.holding = false
			l.s.holders.Add(-1)
		}
	}
	<-l.s.reading
}

// readers is how many logs read records at once, and how many keep their
// pages while caught up: enough to keep the cores busy (decoding and
// encoding take about a microsecond an event, far more than an output
// takes), few enough that their mapped pages stay a few MiB whatever the
// number of cores.
func readers() int { return min(8, max(2, 2*runtime.GOMAXPROCS(0))) }

// readOne notes that the reader has a record: pending until a batch has
// it.
func (l *logShipper) readOne() {
	l.idle, l.pending = false, true
	l.read.Add(1)
}

func orNone(p string) string {
	if p == "" {
		return "none"
	}
	return p
}

// batch makes a batch starting with the pending record, as long as the
// window, the batch limits and the shared budget allow and records are
// there, and publishes it. A record the budget has no room for now stays
// pending for the next batch.
//
// With reading, the caller holds a reading token, which batch gives back.
// It keeps it (and the pages mapped) only while it need not wait for the
// window or the budget: waits happen without a token, and without pages.
func (l *logShipper) batch(ctx context.Context, reading bool) error {
	maxEv, maxBy, ok := l.window.tryRoom()
	if !ok {
		l.stopReading(&reading)
		var err error
		if maxEv, maxBy, err = l.window.room(ctx); err != nil {
			return err
		}
	}
	maxEv, maxBy = min(maxEv, l.s.cfg.BatchSize), min(maxBy, l.s.cfg.BatchBytes)
	b := newShipBatch(l)
	caughtUp, err := l.fill(ctx, b, maxEv, maxBy, &reading)
	if reading {
		// Caught up, the pages may stay for the next record;
		// otherwise other logs read next, and this one's pages go.
		l.doneReading(caughtUp)
	}
	if err != nil {
		b.free(l.s)
		return err
	}
	if seq := l.beyond.Load(); seq != 0 && b.last.Seq >= seq {
		l.beyond.Store(0)
		l.s.cfg.Logf("%s: the log has grown past where shipping was to resume (%d): shipping", l.dir, seq)
	}
	return l.publish(ctx, b)
}

// fill puts records into b, the pending one first, until b holds maxEv
// events or maxBy bytes, the reader has caught up (caughtUp), or the
// budget has no room for the next record now.
func (l *logShipper) fill(ctx context.Context, b *shipBatch, maxEv, maxBy int, reading *bool) (caughtUp bool, err error) {
	for {
		if ok, err := l.place(ctx, b, reading); !ok || err != nil {
			return false, err
		}
		if len(b.events) >= maxEv || b.size >= maxBy {
			return false, nil
		}
		if !*reading {
			// Past the budget's wait: from here on the loop only reads.
			if err := l.readSlot(ctx); err != nil {
				return false, err
			}
			*reading = true
		}
		if !l.r.Next() {
			l.idle = true
			return true, nil
		}
		l.readOne()
	}
}

// place encodes the reader's record, the pending one, into b: straight into
// the memory b's last chunk has left, a chunk taken from the budget first
// where it may not have room enough. The first event of a batch waits for
// the budget; a later one that finds no room in it now is left pending
// (ok false) for the next batch.
//
// Whether the room is enough is known once the event is encoded: a JSON
// object record takes its own size and the metadata (slack), any other
// record its text escaped, which may be up to six times its size. An event
// that outgrows the room (append moved it) is copied into a new chunk: the
// one event of a chunk, and the large or escaped ones, copied twice.
func (l *logShipper) place(ctx context.Context, b *shipBatch, reading *bool) (ok bool, err error) {
	rec := l.r.Record()
	if need := len(rec.Payload) + l.slack + 1; b.room() < need {
		if ok, err := l.grow(ctx, b, need, reading); !ok {
			return false, err
		}
	}
	if ev, in := b.encode(l.enc, rec); !in {
		if ok, err := l.grow(ctx, b, len(ev)+1, reading); !ok {
			return false, err
		}
		b.appendEvent(ev)
	}
	rec.Payload = nil
	b.last = rec
	l.pending = false
	return true, nil
}

// grow adds a chunk of at least n bytes to b, taken from the budget: at
// once, or for b's first event once the budget has it (ok false with ctx's
// error if ctx is done first), or not at all (ok false) where a later event
// would have to wait. A chunk no event went into is given back first, so
// that the wait holds none.
func (l *logShipper) grow(ctx context.Context, b *shipBatch, n int, reading *bool) (ok bool, err error) {
	if c := b.dropEmptyChunk(); c != nil {
		l.s.recycle(c)
		l.s.budget.release(int64(cap(c)))
	}
	size := int64(max(chunkSize, n))
	if !l.s.budget.tryAcquire(size) {
		if len(b.events) > 0 {
			return false, nil // the budget is taken: ship what there is
		}
		l.stopReading(reading)
		if err := l.s.budget.acquire(ctx, size); err != nil {
			return false, err
		}
	}
	b.addChunk(l.s.chunk(int(size)))
	return true, nil
}

// stopReading gives back the reading token and the pages, if held, before
// a wait.
func (l *logShipper) stopReading(reading *bool) {
	if *reading {
		l.doneReading(false)
		*reading = false
	}
}

// publish hands b to the output. Its window share and budget are given back
// when b is acknowledged and the cursor holding it is saved.
func (l *logShipper) publish(ctx context.Context, b *shipBatch) error {
	if c := b.dropEmptyChunk(); c != nil {
		l.s.recycle(c)
		l.s.budget.release(int64(cap(c)))
	}
	l.mu.Lock()
	serr := l.saveErr
	l.mu.Unlock()
	if serr != nil {
		b.free(l.s)
		return serr // shipping on without a durable cursor would not be at least once
	}
	n, size := len(b.events), b.size
	l.window.add(n, size)
	if id, ok := l.r.LogID(); ok {
		l.logID = id
	}
	b.logID = l.logID
	b.sent = time.Now()
	l.inflight.Add(1)
	err := l.src.Publish(ctx, b)
	if err != nil {
		l.inflight.Add(-1)
		l.window.release(n, size)
		b.free(l.s)
	}
	return err
}

// ackBatch runs on the output's goroutine when b is acknowledged.
func (l *logShipper) ackBatch(b *shipBatch) {
	last, id, n, size := b.last, b.logID, len(b.events), b.size
	if m := l.s.cfg.Metrics; m != nil {
		m.batchLatency.Observe(time.Since(b.sent).Seconds())
	}
	l.acked.Add(uint64(n))
	l.bytes.Add(uint64(size))
	l.batches.Add(1)
	l.ackedSeq.Store(last.Seq)
	l.lastTime.Store(uint64(last.Time))
	b.free(l.s) // the output is done with the events: their memory is free
	defer l.doneInflight()
	if l.cpath == "" {
		l.window.release(n, size)
		return
	}
	l.mu.Lock()
	l.cursor = tail.Cursor{LogID: id, NextSeq: last.Seq + 1, Segment: last.Segment, Offset: last.Offset + int64(last.Size), Time: last.Time, Lost: l.lost.Load()}
	l.dirty = true
	l.unsavedEv += n
	l.unsavedB += size
	half := l.unsavedEv >= l.window.maxEvents/2 || l.unsavedB >= l.window.maxBytes/2
	l.mu.Unlock()
	select {
	case l.saveKick <- struct{}{}:
	default:
	}
	if half {
		select {
		case l.halfKick <- struct{}{}:
		default:
		}
	}
}

// nackBatch runs when the output gave up on b (it was closed first): its
// memory and window share are given back; the cursor stays where it was.
func (l *logShipper) nackBatch(b *shipBatch) {
	n, size := len(b.events), b.size
	b.free(l.s)
	l.window.release(n, size)
	l.doneInflight()
}

// doneInflight counts a batch the output is done with.
func (l *logShipper) doneInflight() {
	if l.inflight.Add(-1) == 0 {
		select {
		case l.acksIdle <- struct{}{}:
		default:
		}
	}
}

// saver saves the cursor after acknowledgements, and frees the window share
// of the batches a save covered. Saves coalesce the acknowledgements that
// come meanwhile, and come at most every SaveInterval while less than half
// the window waits for them: a save is two fsyncs, and a shipper of many
// logs saving after each batch of each would do thousands a second.
func (l *logShipper) saver() {
	defer close(l.saverDone)
	var last time.Time
	for range l.saveKick {
		if wait := l.s.cfg.SaveInterval - time.Since(last); wait > 0 {
			t := time.NewTimer(wait)
		wait:
			for {
				select {
				case <-t.C:
					break wait
				case <-l.halfKick:
					t.Stop()
					break wait
				case _, ok := <-l.saveKick:
					if !ok { // finishing
						t.Stop()
						break wait
					}
				}
			}
		}
		l.saveNow()
		last = time.Now()
	}
	l.saveNow()
}

func (l *logShipper) saveNow() {
	l.mu.Lock()
	if !l.dirty {
		l.mu.Unlock()
		return
	}
	c := l.cursor
	ev, by := l.unsavedEv, l.unsavedB
	l.unsavedEv, l.unsavedB = 0, 0
	l.dirty = false
	l.mu.Unlock()
	c.Saved = 0
	if l.cursorInDir && (l.noSave.Load() || l.dirGone()) {
		// The log directory is gone: saving would make it again
		// (or write into a new log's directory at the same path).
		l.noSave.Store(true)
		l.window.release(ev, by)
		return
	}
	err := l.saveCursor(c)
	if err != nil {
		l.saveErrs.Add(1)
		l.mu.Lock()
		if l.saveErr == nil {
			l.saveErr = fmt.Errorf("ship: %w", err)
		}
		l.mu.Unlock()
	}
	l.saves.Add(1)
	l.window.release(ev, by)
}

// finish, once the output is closed (every acknowledgement in), saves the
// cursor a last time and releases its lock. It returns a save's error.
func (l *logShipper) finish() error {
	l.mu.Lock()
	saving := l.saving
	l.mu.Unlock()
	if saving {
		close(l.saveKick)
		<-l.saverDone
	}
	l.lock.release()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.saveErr
}

// failed returns why the log stopped on an error, or nil.
func (l *logShipper) failed() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

func (l *logShipper) stats() LogStats {
	l.mu.Lock()
	err := l.err
	l.mu.Unlock()
	return LogStats{Dir: l.dir, Cursor: l.cpath, Read: l.read.Load(), Acked: l.acked.Load(), AckedSeq: l.ackedSeq.Load(),
		Lost: l.lost.Load(), Damage: l.damage.Load(), Batches: l.batches.Load(), Bytes: l.bytes.Load(),
		CursorSaves: l.saves.Load(), SaveErrors: l.saveErrs.Load(), BeyondEnd: l.beyond.Load() != 0, Err: err}
}
