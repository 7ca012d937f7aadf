package powercut

import (
	"bytes"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mmaplog/mmaplog/flush"
	"github.com/mmaplog/mmaplog/mmaplog"
	"github.com/mmaplog/mmaplog/rotate"
	"github.com/mmaplog/mmaplog/tail"
)

// ID names one record written by the test: writer life, goroutine, index.
type ID struct{ Life, G, Idx int }

func (id ID) String() string {
	return fmt.Sprintf("life %d goroutine %d record %d", id.Life, id.G, id.Idx)
}

// CutResult is what one power cut did to the log.
type CutResult struct {
	Scenario Scenario
	Life     int

	OpenErr  error // mmaplog.Open after the cut failed: the log is lost
	CloseErr error
	ReadErr  error

	Acked     int // records whose Append returned in this writer life
	Expected  int // records that should be there: acknowledged, and not removed by retention
	Delivered int
	Lost      []Loss
	Corrupt   []string // records delivered that are not what was written
	Notes     []string // errors the writer reported, other oddities

	Recovery []string // what Open repaired
	Damage   []string // what the reader reported
}

// Loss is an acknowledged record that is not in the log after the cut.
type Loss struct {
	ID  ID
	Seq uint64
	// Promise is why the policy promised to keep it ("" where losing it
	// is allowed).
	Promise     string
	SyncCovered bool   // a Sync that began after its Append returned had returned
	Middle      bool   // records after it survived
	Report      string // how the loss was reported; "" if it was not
	Misreport   string // a report that says no record was lost there
	Age         time.Duration
	SpanBytes   int // bytes acknowledged from it to the cut
}

// Violation reports whether losing the record broke the policy's promise.
func (l Loss) Violation() bool { return l.Promise != "" }

func (l Loss) String() string {
	s := fmt.Sprintf("%v (seq %d, acknowledged %v before the cut, %d bytes from the end)", l.ID, l.Seq, l.Age.Round(time.Millisecond), l.SpanBytes)
	if l.Promise != "" {
		s += ": PROMISED: " + l.Promise
	}
	switch {
	case l.Misreport != "":
		s += "; MISREPORTED: " + l.Misreport
	case l.Report == "":
		s += "; NOT REPORTED"
	default:
		s += "; reported: " + l.Report
	}
	return s
}

type syncSpan struct {
	start, done int // event positions; done -1 if it never returned
	n           int // records acknowledged before it began
}

// history is the parsed events of one writer life.
type history struct {
	acks   []ackLine
	byID   map[ID]int // index in acks
	syncs  []syncSpan
	fsyncs map[string][]int // file name -> positions of its fsync events
	notes  []string
}

func parseHistory(events []Event, life int) history {
	h := history{byID: map[ID]int{}, fsyncs: map[string][]int{}}
	open := map[int]int{} // n -> index in syncs
	for pos, e := range events {
		f := strings.Fields(e.Line)
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "A":
			a, err := parseAck(e, pos, len(h.acks)+1)
			if err != nil {
				h.notes = append(h.notes, err.Error())
				continue
			}
			a.id = ID{life, a.g, a.idx}
			h.byID[a.id] = len(h.acks)
			h.acks = append(h.acks, a)
		case "S", "Y":
			n, _ := strconv.Atoi(f[1])
			if f[0] == "S" {
				open[n] = len(h.syncs)
				h.syncs = append(h.syncs, syncSpan{start: pos, done: -1, n: n})
			} else if i, ok := open[n]; ok {
				h.syncs[i].done = pos
			}
		case "F":
			h.fsyncs[f[1]] = append(h.fsyncs[f[1]], pos)
		case "E":
			h.notes = append(h.notes, "writer: "+e.Line[2:])
		}
	}
	return h
}

// syncCovered returns how many records (in acknowledgement order) a
// returned Sync covers.
func (h history) syncCovered() int {
	n := 0
	for _, s := range h.syncs {
		if s.done >= 0 {
			n = max(n, s.n)
		}
	}
	return n
}

// inSync reports whether event position pos lies while a Sync ran: a
// flush then may be the Sync's, which covers what was acknowledged before
// the Sync began, not what came after.
func (h history) inSync(pos int) bool {
	for _, s := range h.syncs {
		if pos > s.start && (s.done < 0 || pos < s.done) {
			return true
		}
	}
	return false
}

// flushesAfter returns the positions of the fsyncs of segment num's file
// after position pos that no Sync made.
func (h history) flushesAfter(num uint64, pos int) []int {
	var out []int
	for _, p := range h.fsyncs[rotate.SegmentName(num)] {
		if p > pos && !h.inSync(p) {
			out = append(out, p)
		}
	}
	return out
}

// laterFlush returns the position of the first fsync, after position pos
// and outside a Sync, of a segment numbered above num; -1 if there is none.
func (h history) laterFlush(num uint64, pos int) int {
	best := -1
	for name, ps := range h.fsyncs {
		n, _, ok := rotate.ParseName(name)
		if !ok || n <= num {
			continue
		}
		for _, p := range ps {
			if p > pos && !h.inSync(p) && (best < 0 || p < best) {
				best = p
				break
			}
		}
	}
	return best
}

// bytesAfter returns the bytes of the records with a sequence number
// above seq acknowledged before event position pos: they lie after it.
func (h history) bytesAfter(seq uint64, pos int) int {
	n := 0
	for _, a := range h.acks {
		if a.pos >= pos {
			break
		}
		if a.seq > seq {
			n += a.size
		}
	}
	return n
}

// bytesFrom returns the bytes of the acknowledged records with a sequence
// number of seq or above.
func (h history) bytesFrom(seq uint64) int {
	n := 0
	for _, a := range h.acks {
		if a.seq >= seq {
			n += a.size
		}
	}
	return n
}

// promise says why the policy promised to keep the acknowledged record a
// ("" if losing it is allowed).
func (h history) promise(p flush.Policy, a ackLine) string {
	switch p.Mode {
	case flush.ModeWrite:
		return "policy write, and its Write had returned"
	case flush.ModeBytes, flush.ModeInterval:
		// The flush loop flushes what is written when it starts, up to
		// the page being filled; a flush that completed after the
		// record's Write returned may have started before it. The loop
		// runs one flush at a time, so the next one started after: if it
		// also completed, with at least a page written after the record
		// by then, it covered the record. And once a later segment was
		// flushed (by the loop, which no longer flushes this one, or by
		// the finisher, which finishes segments in order), a flush of
		// this segment is the finisher's, which covers all of it.
		why := ""
		for num := a.s0; num <= a.s1; num++ {
			fl := h.flushesAfter(num, a.pos)
			if len(fl) >= 2 && h.bytesAfter(a.seq, fl[0]) >= pageSize {
				why = fmt.Sprintf("policy %v, and two flushes of %s completed after its Write returned (events %d and %d; %d bytes written after it before the first)",
					p, rotate.SegmentName(num), fl[0], fl[1], h.bytesAfter(a.seq, fl[0]))
				continue
			}
			later := h.laterFlush(num, a.pos)
			if later < 0 {
				return ""
			}
			fl = h.flushesAfter(num, later)
			if len(fl) == 0 {
				return ""
			}
			why = fmt.Sprintf("policy %v, and %s was flushed (event %d) after its Write returned and after a later segment was flushed (event %d): by the finisher, which flushes all of it",
				p, rotate.SegmentName(num), fl[0], later)
		}
		return why
	case flush.ModeRotate:
		// Only the finisher flushes a segment under rotate, once every
		// record in it is published: then all of it.
		why := ""
		for num := a.s0; num <= a.s1; num++ {
			fl := h.flushesAfter(num, -1)
			if len(fl) == 0 {
				return ""
			}
			why = fmt.Sprintf("policy rotate, and %s was flushed when it was rolled (event %d)", rotate.SegmentName(num), fl[0])
		}
		return why
	}
	return ""
}

const pageSize = 4096

// Kept is a record found in the log after a cut.
type Kept struct {
	Seq     uint64
	Segment uint64
}

// Check opens the log after a power cut (crash recovery), reads it all
// with a tail.Reader, and compares it with what the writer acknowledged
// (events) and what survived earlier cuts (survivors, updated for the next
// cut).
//
// It opens the log with the writer's options but without retention, so
// that recovery keeps every segment there is for the reader to check: a
// record is gone by design only if the writer's retention removed its
// segment, and then every segment numbered below the oldest one the cut
// left is gone too.
func Check(cfg WriterConfig, events []Event, cutAt time.Time, survivors map[ID]Kept) CutResult {
	policy, _ := flush.Parse(cfg.Policy)
	h := parseHistory(events, cfg.Life)
	c := &checker{
		cfg:       cfg,
		h:         h,
		policy:    policy,
		covered:   h.syncCovered(),
		cutAt:     cutAt,
		survivors: survivors,
		seen:      map[ID]uint64{},
	}
	c.res.Notes = append(c.res.Notes, h.notes...)
	c.res.Acked = len(h.acks)
	if !c.openLog() {
		return c.res
	}
	c.readLog()
	c.findLosses()
	c.keepSurvivors()
	return c.res
}

// checker holds what Check knows of one cut as it goes.
type checker struct {
	cfg       WriterConfig
	h         history
	policy    flush.Policy // the writer's flush policy
	covered   int          // records a returned Sync covers
	cutAt     time.Time
	survivors map[ID]Kept
	res       CutResult

	oldest  uint64           // the oldest segment the cut left
	repairs []mmaplog.Repair // what Open repaired

	delivered []delivery    // everything in the log, in order
	seen      map[ID]uint64 // sequence number of each record delivered
	maxSeq    uint64        // the highest sequence number delivered
	damage    []tail.Damage // what the reader reported
}

// delivery is a record of the test that the reader delivered.
type delivery struct {
	id  ID
	seq uint64
	seg uint64
}

// openLog opens the log as crash recovery does, keeping every segment,
// notes the oldest segment the cut left and what Open repaired, and
// closes it again. It reports false if the log could not be opened.
func (c *checker) openLog() bool {
	opts, err := c.cfg.Options()
	if err != nil {
		c.res.OpenErr = err
		return false
	}
	opts.MaxBackups, opts.NoReuse = -1, true
	// Retention removes the oldest segments: the records of segments
	// numbered below the oldest one the cut left are gone by design.
	// (Recovery may then remove segments never started at the end of the
	// log, all of them even, and begin a new log.)
	if l, err := rotate.List(c.cfg.Dir); err == nil {
		c.oldest, _ = l.Oldest()
	}
	w, err := mmaplog.Open(c.cfg.Dir, opts)
	if err != nil {
		c.res.OpenErr = err
		return false
	}
	for _, r := range w.Recovery() {
		c.res.Recovery = append(c.res.Recovery, r.String())
	}
	c.repairs = w.Recovery()
	c.res.CloseErr = w.Close()
	return true
}

// readLog reads everything in the log with a tail.Reader, checking each
// record, and notes the damage the reader reported.
func (c *checker) readLog() {
	r, err := tail.Open(c.cfg.Dir, nil)
	if err != nil {
		c.res.ReadErr = err
	} else {
		for r.Next() {
			c.deliver(r.Record())
		}
		c.res.ReadErr = r.Err()
		c.damage = r.Damage()
		r.Close()
	}
	for _, d := range c.damage {
		c.res.Damage = append(c.res.Damage, fmt.Sprintf("%s [%v, seq %d, resume %d]", d.String(), d.Kind, d.Seq, d.Resume))
	}
	c.res.Delivered = len(c.delivered)
	for _, g := range c.delivered {
		c.maxSeq = max(c.maxSeq, g.seq)
	}
}

// deliver checks a record the reader delivered against what was written,
// what was acknowledged and what survived the last cut, and notes it as
// delivered unless it is not a record the writers wrote or was delivered
// before.
func (c *checker) deliver(rec tail.Record) {
	life, g, idx, ok := ParsePayload(rec.Payload)
	id := ID{life, g, idx}
	switch {
	case !ok:
		c.res.Corrupt = append(c.res.Corrupt, fmt.Sprintf("seq %d (segment %d offset %d): not a record of this test: %q", rec.Seq, rec.Segment, rec.Offset, trunc(rec.Payload)))
		return
	case life > c.cfg.Life || life < 1:
		c.res.Corrupt = append(c.res.Corrupt, fmt.Sprintf("seq %d: %v, from a writer that never ran", rec.Seq, id))
		return
	case !bytes.Equal(rec.Payload, Payload(c.cfg.Seed, life, g, idx)):
		c.res.Corrupt = append(c.res.Corrupt, fmt.Sprintf("seq %d (segment %d offset %d): %v, its bytes differ from what was written", rec.Seq, rec.Segment, rec.Offset, id))
		return
	}
	if prev, dup := c.seen[id]; dup {
		c.res.Corrupt = append(c.res.Corrupt, fmt.Sprintf("seq %d: %v delivered again (first as seq %d)", rec.Seq, id, prev))
		return
	}
	if i, ok := c.h.byID[id]; ok && c.h.acks[i].seq != rec.Seq {
		c.res.Corrupt = append(c.res.Corrupt, fmt.Sprintf("seq %d: %v was acknowledged as seq %d", rec.Seq, id, c.h.acks[i].seq))
	}
	if s, ok := c.survivors[id]; ok && s.Seq != rec.Seq {
		c.res.Corrupt = append(c.res.Corrupt, fmt.Sprintf("seq %d: %v was seq %d after the last cut", rec.Seq, id, s.Seq))
	}
	c.seen[id] = rec.Seq
	c.delivered = append(c.delivered, delivery{id, rec.Seq, rec.Segment})
}

// findLosses counts the records that should be in the log (those that
// survived the last cut and those acknowledged in this writer life, less
// those in segments retention removed) and lists those that are not,
// in sequence order.
func (c *checker) findLosses() {
	ids := make([]ID, 0, len(c.survivors))
	for id := range c.survivors {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return c.survivors[ids[i]].Seq < c.survivors[ids[j]].Seq })
	for _, id := range ids {
		k := c.survivors[id]
		if k.Segment < c.oldest {
			continue
		}
		c.res.Expected++
		if _, ok := c.seen[id]; !ok {
			c.lose(id, k.Seq, nil)
		}
	}
	for i := range c.h.acks {
		a := &c.h.acks[i]
		if a.s1 < c.oldest {
			continue // its segment was removed by retention
		}
		if a.s0 < c.oldest {
			continue // written while the writer rolled over: in a removed segment, or the one after
		}
		c.res.Expected++
		if _, ok := c.seen[a.id]; !ok {
			c.lose(a.id, a.seq, a)
		}
	}
	sort.Slice(c.res.Lost, func(i, j int) bool { return c.res.Lost[i].Seq < c.res.Lost[j].Seq })
}

// lose adds the loss of record id, sequence number seq, to the result:
// a record acknowledged in this writer life (a), or one that survived an
// earlier cut (a nil).
func (c *checker) lose(id ID, seq uint64, a *ackLine) {
	l := Loss{ID: id, Seq: seq, Middle: seq < c.maxSeq}
	if a == nil {
		l.Promise = "it survived an earlier power cut"
	} else {
		l.Age = c.cutAt.Sub(a.at)
		l.SpanBytes = c.h.bytesFrom(seq)
		if a.n <= c.covered {
			l.SyncCovered = true
			l.Promise = "a Sync() that began after its Write returned had returned"
		} else {
			l.Promise = c.h.promise(c.policy, *a)
		}
	}
	l.Report, l.Misreport = lossReport(c.damage, c.repairs, seq, l.Middle)
	c.res.Lost = append(c.res.Lost, l)
}

// keepSurvivors makes survivors what is in the log now: it survives the
// next cut too.
func (c *checker) keepSurvivors() {
	clear(c.survivors)
	for _, g := range c.delivered {
		c.survivors[g.id] = Kept{Seq: g.seq, Segment: g.seg}
	}
}

// lossReport says how the loss of record seq was reported: by the reader
// (a Damage counting records lost over it) or by recovery, and whether a
// report said that no record was lost there.
func lossReport(damage []tail.Damage, repairs []mmaplog.Repair, seq uint64, middle bool) (report, misreport string) {
	for _, d := range damage {
		if d.Kind == tail.DamageUnfinished && d.Seq <= seq && seq < d.Resume {
			misreport = fmt.Sprintf("the reader called it %q: %v", d.Kind, d.Err)
		}
		if d.Lost > 0 && d.Seq <= seq && seq < d.Seq+d.Lost {
			return fmt.Sprintf("reader: %v, %d record(s) lost from seq %d", d.Kind, d.Lost, d.Seq), ""
		}
	}
	if misreport != "" {
		return "", misreport
	}
	if r, ok := tailReport(repairs, seq); ok && !middle {
		return r, ""
	}
	return "", ""
}

func trunc(b []byte) []byte {
	if len(b) > 40 {
		return b[:40]
	}
	return b
}

// Table aggregates cut results by a key (the flush policy, unless Key is
// set).
type Table struct {
	Title string
	Key   func(CutResult) string
	Rows  map[string]*Row
	order []string
}

// Row is one policy's line of the table.
type Row struct {
	Key         string
	Cuts        int
	Acked       int
	Lost        int
	Middle      int // lost with later records kept
	Violations  int // losses the policy promised would not happen
	SyncLost    int // of them: records a returned Sync() covered
	Corrupt     int
	OpenFails   int
	Unreported  int // losses nobody reported
	Misreported int // losses reported as "no record lost"
	MaxSpan     int // bytes acknowledged from the oldest lost record to the cut
	MaxAge      time.Duration
}

// Add adds a cut.
func (t *Table) Add(r CutResult) {
	if t.Rows == nil {
		t.Rows = map[string]*Row{}
	}
	p := r.Scenario.Policy
	if t.Key != nil {
		p = t.Key(r)
	}
	row := t.Rows[p]
	if row == nil {
		row = &Row{Key: p}
		t.Rows[p] = row
		t.order = append(t.order, p)
	}
	row.Cuts++
	row.Acked += r.Acked
	row.Corrupt += len(r.Corrupt)
	if r.OpenErr != nil {
		row.OpenFails++
	}
	for _, l := range r.Lost {
		row.Lost++
		if l.Middle {
			row.Middle++
		}
		if l.Violation() {
			row.Violations++
		}
		if l.SyncCovered {
			row.SyncLost++
		}
		switch {
		case l.Misreport != "":
			row.Misreported++
		case l.Report == "":
			row.Unreported++
		}
		row.MaxSpan = max(row.MaxSpan, l.SpanBytes)
		row.MaxAge = max(row.MaxAge, l.Age)
	}
}

// Total returns the sum of the rows.
func (t *Table) Total() Row {
	var s Row
	s.Key = "all"
	for _, r := range t.Rows {
		s.Cuts += r.Cuts
		s.Acked += r.Acked
		s.Lost += r.Lost
		s.Middle += r.Middle
		s.Violations += r.Violations
		s.SyncLost += r.SyncLost
		s.Corrupt += r.Corrupt
		s.OpenFails += r.OpenFails
		s.Unreported += r.Unreported
		s.Misreported += r.Misreported
		s.MaxSpan = max(s.MaxSpan, r.MaxSpan)
		s.MaxAge = max(s.MaxAge, r.MaxAge)
	}
	return s
}

// String prints the table in markdown.
func (t *Table) String() string {
	var b strings.Builder
	title := t.Title
	if title == "" {
		title = "policy"
	}
	fmt.Fprintf(&b, "| %s | cuts | acknowledged | lost | lost, later records kept | lost though promised kept | of them covered by a returned Sync() | corrupt delivered | Open failed | losses not reported | losses called \"no record lost\" | most bytes lost (from the oldest lost record to the cut) | oldest loss (before the cut) |\n", title)
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	row := func(r Row) {
		age := "-"
		if r.Lost > 0 {
			age = r.MaxAge.Round(time.Millisecond).String()
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %d | %d | %d | %d | %d | %d | %s |\n",
			r.Key, r.Cuts, r.Acked, r.Lost, r.Middle, r.Violations, r.SyncLost, r.Corrupt, r.OpenFails, r.Unreported, r.Misreported, r.MaxSpan, age)
	}
	order := append([]string(nil), t.order...)
	sort.Strings(order)
	for _, p := range order {
		row(*t.Rows[p])
	}
	row(t.Total())
	return b.String()
}

// tailReport looks in what Open repaired for a report of records lost at
// the end of the log (nothing after them tells how many): after a power
// loss Open says where the log ends (RepairPowerLoss).
func tailReport(repairs []mmaplog.Repair, seq uint64) (string, bool) {
	for _, r := range repairs {
		if r.Kind == mmaplog.RepairPowerLoss && r.Seq <= seq {
			return fmt.Sprintf("recovery: %v at sequence %d", r.Kind, r.Seq), true
		}
	}
	return "", false
}
