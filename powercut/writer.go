package powercut

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/mmaplog/mmaplog/flush"
	"github.com/mmaplog/mmaplog/mmaplog"
	"github.com/mmaplog/mmaplog/ring"
)

// WriterConfig is what a writer process does: open the log with these
// options and append records from Goroutines goroutines until it is killed
// (or has written Limit records).
type WriterConfig struct {
	Dir         string
	Policy      string // flush policy, as flush.Parse reads it
	SegmentSize int64
	MaxBackups  int  // -1 keeps every segment
	NoReuse     bool // every segment a new file
	Goroutines  int
	Life        int    // which writer process of the log this is (in every payload)
	Seed        uint64 // of the payloads
	SyncEvery   int    // call Sync after every this many records (0: never)
	Limit       int    // records to write at most
	Events      string // the FIFO to report on
}

// Options returns the mmaplog options of the configuration.
func (c WriterConfig) Options() (*mmaplog.Options, error) {
	p, err := flush.Parse(c.Policy)
	if err != nil {
		return nil, err
	}
	return &mmaplog.Options{SegmentSize: c.SegmentSize, MaxBackups: c.MaxBackups, NoReuse: c.NoReuse, Flush: p}, nil
}

// The writer reports on the events FIFO, one line per event, each written
// with one write(2) under one mutex, so that the order of the lines is the
// order in which things happened (the lazyfs daemon writes its fsync lines
// to the same FIFO):
//
//	O PID                    the log is open
//	A G IDX SEQ S0 S1 SIZE   Append of record IDX of goroutine G returned
//	                         SEQ; the active segment was S0 before the call
//	                         and S1 after it; the record takes SIZE bytes
//	S N                      Sync is called; N records were acknowledged
//	Y N                      that Sync returned nil
//	E TEXT                   an error (Sync, Append)
//	L                        the writer wrote Limit records and idles
type reporter struct {
	mu    sync.Mutex
	f     *os.File
	count int
	buf   []byte
}

func (r *reporter) line(b []byte) {
	r.f.Write(b) // a FIFO write of less than PIPE_BUF bytes is atomic
}

// pending is an acknowledgement not reported yet.
type pending struct {
	idx  int
	seq  uint64
	size int
}

// acks reports a batch of records of goroutine g, all appended while the
// active segment went from s0 to s1, in one write: the appends run
// back to back, as in a busy program, instead of one system call apart.
// It returns the number of records acknowledged so far.
func (r *reporter) acks(g int, batch []pending, s0, s1 uint64) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.buf[:0]
	for _, p := range batch {
		b = append(b, 'A', ' ')
		b = strconv.AppendInt(b, int64(g), 10)
		b = append(b, ' ')
		b = strconv.AppendInt(b, int64(p.idx), 10)
		b = append(b, ' ')
		b = strconv.AppendUint(b, p.seq, 10)
		b = append(b, ' ')
		b = strconv.AppendUint(b, s0, 10)
		b = append(b, ' ')
		b = strconv.AppendUint(b, s1, 10)
		b = append(b, ' ')
		b = strconv.AppendInt(b, int64(p.size), 10)
		b = append(b, '\n')
	}
	r.buf = b
	r.line(b)
	r.count += len(batch)
	return r.count
}

func (r *reporter) printf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.line(fmt.Appendf(nil, format, args...))
}

// syncStart writes "S N" and returns N, atomically with respect to acks.
func (r *reporter) syncStart() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.line(fmt.Appendf(nil, "S %d\n", r.count))
	return r.count
}

// runWriter is the writer process: it opens the log as config (a
// WriterConfig in JSON) says, appends records and reports them on the
// events FIFO until it is killed (idling once it has written Limit
// records).
func runWriter(config string) error {
	var c WriterConfig
	if err := json.Unmarshal([]byte(config), &c); err != nil {
		return err
	}
	f, err := os.OpenFile(c.Events, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	rep := &reporter{f: f}
	opts, err := c.Options()
	if err != nil {
		return err
	}
	w, err := mmaplog.Open(c.Dir, opts)
	if err != nil {
		rep.printf("E open: %s\n", oneLine(err))
		return err
	}
	rep.printf("O %d\n", os.Getpid())
	wr := &writer{c: c, w: w, rep: rep, syncs: make(chan struct{}, 1)}
	if c.SyncEvery > 0 {
		go wr.syncLoop()
	}
	var wg sync.WaitGroup
	for g := range c.Goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wr.appendLoop(g)
		}()
	}
	wg.Wait()
	rep.printf("L\n")
	for {
		time.Sleep(time.Hour) // until the power cut
	}
}

// writer is what the goroutines of a writer process share.
type writer struct {
	c     WriterConfig
	w     *mmaplog.Writer
	rep   *reporter
	syncs chan struct{} // asks syncLoop for a Sync

	mu      sync.Mutex
	written int // records claimed, of c.Limit
}

// syncLoop calls Sync whenever asked on syncs, reporting its start and
// its outcome.
func (wr *writer) syncLoop() {
	for range wr.syncs {
		n := wr.rep.syncStart()
		if err := wr.w.Sync(); err != nil {
			wr.rep.printf("E sync: %s\n", oneLine(err))
			continue
		}
		wr.rep.printf("Y %d\n", n)
	}
}

// claim takes one of the c.Limit records to write; it reports false once
// all are taken.
func (wr *writer) claim() bool {
	wr.mu.Lock()
	defer wr.mu.Unlock()
	if wr.written >= wr.c.Limit {
		return false
	}
	wr.written++
	return true
}

// appendLoop is writing goroutine g: it appends records until the limit
// is reached or an Append fails, reporting them in batches of random
// size, pausing now and then, and asking for a Sync after every
// c.SyncEvery records acknowledged.
func (wr *writer) appendLoop(g int) {
	c := wr.c
	rng := rand.New(rand.NewPCG(c.Seed, uint64(g)))
	var batch []pending
	s0 := wr.w.Stats().Segment
	for idx := 0; ; idx++ {
		if !wr.claim() {
			return
		}
		p := Payload(c.Seed, c.Life, g, idx)
		seq, err := wr.w.Append(mmaplog.LevelNone, p)
		if err != nil {
			wr.rep.printf("E append: %s\n", oneLine(err))
			return
		}
		batch = append(batch, pending{idx, seq, ring.RecordSize(len(p))})
		if len(batch) < 1+rng.IntN(maxBatch) {
			continue
		}
		s1 := wr.w.Stats().Segment
		n := wr.rep.acks(g, batch, s0, s1)
		crossed := c.SyncEvery > 0 && n/c.SyncEvery != (n-len(batch))/c.SyncEvery
		batch, s0 = batch[:0], s1
		if rng.IntN(pauseOneIn) == 0 {
			// A program that writes in bursts, as most do: the
			// flushes keep up between them.
			time.Sleep(pause)
		}
		if crossed {
			wr.askSync()
		}
	}
}

// askSync asks syncLoop for a Sync, unless one is asked for already.
func (wr *writer) askSync() {
	select {
	case wr.syncs <- struct{}{}:
	default:
	}
}

// A writing goroutine pauses after one batch in pauseOneIn.
const (
	pauseOneIn = 8
	pause      = 200 * time.Microsecond
)

// maxBatch bounds the acknowledgements reported in one write (each line
// is under 80 bytes: a batch stays under PIPE_BUF, so that the daemon's
// lines never land inside it).
const maxBatch = 8

func oneLine(err error) string {
	b := []byte(err.Error())
	for i, c := range b {
		if c == '\n' {
			b[i] = ' '
		}
	}
	return string(b)
}

// Payload returns the payload of record idx of goroutine g of writer life:
// an identity (magic, life, goroutine, index) followed by bytes that only
// the identity and seed determine, so that a checker can tell a record
// that is exactly what was written from anything else. Most are short;
// one in ten is long enough to span pages.
func Payload(seed uint64, life, g, idx int) []byte {
	rng := rand.New(rand.NewPCG(seed^uint64(life)<<48^uint64(g)<<40, uint64(idx)))
	n := 16 + rng.IntN(300)
	if rng.IntN(10) == 0 {
		n = 300 + rng.IntN(3000)
	}
	p := make([]byte, n)
	copy(p, payloadMagic)
	binary.LittleEndian.PutUint16(p[2:], uint16(life))
	binary.LittleEndian.PutUint16(p[4:], uint16(g))
	binary.LittleEndian.PutUint32(p[6:], uint32(idx))
	for i := 10; i < n; i++ {
		p[i] = 'a' + byte(rng.IntN(26))
	}
	return p
}

const payloadMagic = "PC"

// ParsePayload returns the identity of a payload, if it has one.
func ParsePayload(p []byte) (life, g, idx int, ok bool) {
	if len(p) < 16 || string(p[:2]) != payloadMagic {
		return 0, 0, 0, false
	}
	return int(binary.LittleEndian.Uint16(p[2:])), int(binary.LittleEndian.Uint16(p[4:])), int(binary.LittleEndian.Uint32(p[6:])), true
}
