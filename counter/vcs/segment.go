package vcs

import (
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"unsafe"

	"github.com/mmaplog/mmaplog/internal/fault"
	"github.com/mmaplog/mmaplog/region"
)

// The VCS segment layout (docs/COUNTERS.md, "VCS segment"). These values
// are fixed by the producers already deployed; none may change.
const (
	DefaultKey        = 0x3eeff00 // the SysV key VCS producers attach
	Magic1     uint32 = 0x650a218 // first word after the leading guard page
	Magic2     uint32 = 0x138a4f2 // word after the reserved area

	Rules         = 1024 * 128 // rules per map
	Metrics       = 128        // uint32 entries per rule
	EntrySize     = 4
	RuleBytes     = Metrics * EntrySize // 512
	MapBytes      = Rules * RuleBytes   // 64 MiB
	ReservedWords = 64

	offMagic1   = 0
	offIdx      = 4
	offMaps     = 8
	offReserved = offMaps + 2*MapBytes
	offMagic2   = offReserved + ReservedWords*4
	// DataBytes is the layout without its guard pages: magic1, index, two
	// maps, the reserved words and magic2.
	DataBytes = offMagic2 + 4
)

// SegmentSize returns the size of a VCS segment on a machine with the given
// page size: the data rounded up to whole pages, plus one guard page before
// and one after (134,230,016 bytes with 4 KiB pages).
func SegmentSize(pageSize int) int {
	return (DataBytes+pageSize-1)/pageSize*pageSize + 2*pageSize
}

// Segment is one process's attachment of a VCS counter segment.
type Segment struct {
	r    *region.Region
	page int
	data unsafe.Pointer // first byte after the leading guard page
	idx  *atomic.Uint32
	maps [2]unsafe.Pointer
}

// ParseURL parses "vcs:KEY" (KEY decimal or 0x hexadecimal) or "vcs:" (the
// default key) and returns the key.
func ParseURL(url string) (int, error) {
	rest, ok := strings.CutPrefix(url, "vcs:")
	if !ok {
		return 0, fmt.Errorf("VCS address %q: want vcs:KEY", url)
	}
	if rest == "" {
		return DefaultKey, nil
	}
	return region.ParseKey(rest)
}

// Attach attaches the existing VCS segment with SysV key key and checks
// its size and both magic numbers, then makes its first and last page
// inaccessible (as the producers do). opts may be nil; the segment is
// attached read-write, since collecting empties counters.
func Attach(key int, opts *region.Options) (*Segment, error) {
	r, err := region.OpenRaw(fmt.Sprintf("sysv:%#x", key), opts)
	if err != nil {
		return nil, err
	}
	s, err := newSegment(r)
	if err != nil {
		r.Detach()
		return nil, err
	}
	return s, nil
}

// Create makes a new, zeroed VCS segment at a region URL ("sysv:KEY" for
// the real thing, "anon:" or "shm:NAME" for tests and benchmarks), stores
// both magic numbers and index 0, and returns it attached. It never reuses
// an existing segment.
func Create(url string, opts *region.Options) (*Segment, error) {
	page := os.Getpagesize()
	r, err := region.CreateRaw(url, SegmentSize(page), opts)
	if err != nil {
		return nil, err
	}
	b := r.Bytes()
	(*atomic.Uint32)(unsafe.Pointer(&b[page+offMagic1])).Store(Magic1)
	(*atomic.Uint32)(unsafe.Pointer(&b[page+offMagic2])).Store(Magic2)
	s, err := newSegment(r)
	if err != nil {
		r.Remove()
		return nil, err
	}
	return s, nil
}

func newSegment(r *region.Region) (s *Segment, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fault.Error(v, r.String())
		}
	}()
	defer fault.Catch()()
	page := os.Getpagesize()
	b := r.Bytes()
	if want := SegmentSize(page); len(b) != want {
		return nil, &region.Error{Addr: r.String(), Offset: -1,
			Err:  fmt.Errorf("%w: the segment has %d bytes; a VCS segment has %d (%d of data and two %d-byte guard pages)", region.ErrSize, len(b), want, DataBytes, page),
			Hint: "this is not a VCS counter segment (or one built for another page size): check the key"}
	}
	data := unsafe.Pointer(&b[page])
	s = &Segment{r: r, page: page, data: data, idx: (*atomic.Uint32)(unsafe.Add(data, offIdx))}
	s.maps[0] = unsafe.Add(data, offMaps)
	s.maps[1] = unsafe.Add(data, offMaps+MapBytes)
	if err := s.Check(); err != nil {
		return nil, err
	}
	if err := r.Protect(0, page); err != nil {
		return nil, err
	}
	if err := r.Protect(len(b)-page, page); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Segment) word(off int) uint32 {
	return (*atomic.Uint32)(unsafe.Add(s.data, off)).Load()
}

// Check verifies both magic numbers and the index word, which another
// program may have overwritten since Attach.
func (s *Segment) Check() error {
	for _, m := range []struct {
		off  int
		want uint32
		name string
	}{{offMagic1, Magic1, "magic1"}, {offMagic2, Magic2, "magic2"}} {
		if got := s.word(m.off); got != m.want {
			return &region.Error{Addr: s.r.String(), Offset: int64(s.page + m.off),
				Err:  fmt.Errorf("%w: %s is %#x, want %#x", region.ErrBadMagic, m.name, got, m.want),
				Hint: "this is not a VCS counter segment, or it was overwritten: check the key"}
		}
	}
	if i := s.idx.Load(); i > 1 {
		return &region.Error{Addr: s.r.String(), Offset: int64(s.page + offIdx),
			Err:  fmt.Errorf("index word is %d, want 0 or 1", i),
			Hint: "the segment was overwritten: producers writing through this index corrupt memory; recreate the segment"}
	}
	return nil
}

// String returns the segment's address as "vcs:KEY" (or the region URL of a
// segment that is not a SysV one).
func (s *Segment) String() string {
	if a := s.r.Addr(); a.Kind == region.Sysv {
		return fmt.Sprintf("vcs:%#x", a.Key)
	}
	return s.r.String()
}

// Region returns the region the segment lives in.
func (s *Segment) Region() *region.Region { return s.r }

// Bytes returns the whole segment, guard pages included (their bytes must
// not be touched).
func (s *Segment) Bytes() []byte { return s.r.Bytes() }

// Detach detaches the segment from this process.
func (s *Segment) Detach() error { return s.r.Detach() }

// Remove removes the segment (for tests and tools) and detaches it.
func (s *Segment) Remove() error { return s.r.Remove() }

// Index returns the map producers add to now (0 or 1).
func (s *Segment) Index() int { return int(s.idx.Load()) }

func (s *Segment) entry(m, rule, metric int) *atomic.Uint32 {
	return (*atomic.Uint32)(unsafe.Add(s.maps[m], rule*RuleBytes+metric*EntrySize))
}

// Add adds n to map[idx][rule][metric] as a VCS producer does: it loads the
// index, then adds atomically. It returns false (adding nothing) for an
// address outside the layout.
func (s *Segment) Add(rule, metric int, n uint32) bool {
	if uint(rule) >= Rules || uint(metric) >= Metrics {
		return false
	}
	s.entry(int(s.idx.Load()&1), rule, metric).Add(n)
	return true
}

// Switch points producers at the other map and returns the one they used
// (which the collector then empties, after a grace period).
func (s *Segment) Switch() (old int, err error) {
	o := s.idx.Load()
	if o > 1 {
		return 0, s.Check()
	}
	if !s.idx.CompareAndSwap(o, 1-o) {
		return 0, fmt.Errorf("%s: the index word changed during the switch: is another collector running on this segment?", s)
	}
	return int(o), nil
}

// Take empties map m, entry by entry, with atomic swaps, and calls fn for
// each entry that was not zero with the value it held. An increment that
// lands after its entry was swapped stays in the map for the next Take: it
// is never lost. Blocks of 16 zero entries (one 64-byte line) are skipped
// with eight 64-bit loads.
func (s *Segment) Take(m int, fn func(rule, metric int, v uint32)) {
	s.scan(m, true, fn)
}

// Peek calls fn for each non-zero entry of map m, without changing it.
func (s *Segment) Peek(m int, fn func(rule, metric int, v uint32)) {
	s.scan(m, false, fn)
}

func (s *Segment) scan(m int, take bool, fn func(rule, metric int, v uint32)) {
	base := s.maps[m&1]
	// The maps start 8 bytes into a page: 64-bit loads are aligned.
	words := unsafe.Slice((*atomic.Uint64)(base), MapBytes/8)
	for i := 0; i+8 <= len(words); i += 8 {
		w := words[i : i+8 : i+8]
		if w[0].Load()|w[1].Load()|w[2].Load()|w[3].Load()|w[4].Load()|w[5].Load()|w[6].Load()|w[7].Load() == 0 {
			continue
		}
		for j := range w {
			if w[j].Load() == 0 {
				continue
			}
			e := (i + j) * 2 // the first of the two entries in this word
			for h := 0; h < 2; h++ {
				p := (*atomic.Uint32)(unsafe.Add(base, (e+h)*EntrySize))
				v := p.Load()
				if v == 0 {
					continue
				}
				if take {
					if v = p.Swap(0); v == 0 {
						continue
					}
				}
				fn((e+h)/Metrics, (e+h)%Metrics, v)
			}
		}
	}
}

// scanNaive is Take without the block skip: one load per entry. It exists
// for the benchmark that measures what the skip buys.
func (s *Segment) scanNaive(m int, fn func(rule, metric int, v uint32)) {
	base := s.maps[m&1]
	entries := unsafe.Slice((*atomic.Uint32)(base), MapBytes/EntrySize)
	for e := range entries {
		if entries[e].Load() != 0 {
			if v := entries[e].Swap(0); v != 0 {
				fn(e/Metrics, e%Metrics, v)
			}
		}
	}
}
