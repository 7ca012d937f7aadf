package counter

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/mmaplog/mmaplog/internal/fault"
)

// Names live in fixed-size slots, one per rule and one per metric index
// (docs/COUNTERS.md, "Names"). A slot is
//
//	u32 version   odd while a writer is changing the slot
//	u32 length    bytes of text that follow
//	text          name, then for each label "\x00key\x00value"
//
// Writers and readers in different processes coordinate with the version
// word, as a sequence lock: a writer makes it odd with a compare-and-swap,
// fills the slot, then makes it even; a reader retries while it is odd or
// changed under it. Every word is copied with 64-bit atomic loads and
// stores, so that the slot is never read with a plain load while written.
type names struct {
	size    int
	rules   []byte
	metrics []byte
}

// Label is a name/value pair attached to a rule.
type Label struct{ Name, Value string }

// ErrNoNames: the map was created without name slots (Shape.NameSize -1).
var ErrNoNames = errors.New("counter: the map has no room for names (created with NameSize -1)")

// Describe stores the name and labels of rule, for the collector to attach
// to what it ships. labels are key, value pairs. The text must fit the map's
// NameSize less 8 bytes, and contain no NUL byte.
func (m *Map) Describe(rule int, name string, labels ...string) (err error) {
	if uint(rule) >= uint(m.shape.Rules) {
		return fmt.Errorf("counter: rule %d outside the map's %d rules", rule, m.shape.Rules)
	}
	if len(labels)%2 != 0 {
		return fmt.Errorf("counter: rule %d: labels come in key, value pairs; got %d strings", rule, len(labels))
	}
	text := name
	for i := 0; i < len(labels); i += 2 {
		if labels[i] == "" {
			return fmt.Errorf("counter: rule %d: empty label name", rule)
		}
		text += "\x00" + labels[i] + "\x00" + labels[i+1]
	}
	defer m.health.guard(&err)
	defer fault.Catch()()
	return m.names.set(m.names.rules, rule, name, text)
}

// NameMetric stores the name of metric index metric (the same for every
// rule).
func (m *Map) NameMetric(metric int, name string) (err error) {
	if uint(metric) >= uint(m.shape.Metrics) {
		return fmt.Errorf("counter: metric %d outside the map's %d metrics", metric, m.shape.Metrics)
	}
	if strings.IndexByte(name, 0) >= 0 {
		return fmt.Errorf("counter: metric %d: the name contains a NUL byte", metric)
	}
	defer m.health.guard(&err)
	defer fault.Catch()()
	return m.names.set(m.names.metrics, metric, name, name)
}

// RuleName returns the name and labels stored for rule ("" and nil if
// none, or if the slot is unreadable: being written, damaged, or the
// region lost; see Err).
func (m *Map) RuleName(rule int) (name string, labels []Label) {
	if uint(rule) >= uint(m.shape.Rules) {
		return "", nil
	}
	defer m.health.guard(nil)
	defer fault.Catch()()
	text, ok := m.names.get(m.names.rules, rule)
	if !ok || text == "" {
		return "", nil
	}
	return splitLabels(text)
}

// MetricName returns the name stored for metric index metric, or "".
func (m *Map) MetricName(metric int) (name string) {
	if uint(metric) >= uint(m.shape.Metrics) {
		return ""
	}
	defer m.health.guard(nil)
	defer fault.Catch()()
	text, ok := m.names.get(m.names.metrics, metric)
	if !ok || strings.IndexByte(text, 0) >= 0 {
		return ""
	}
	return text
}

func splitLabels(text string) (string, []Label) {
	parts := strings.Split(text, "\x00")
	if len(parts)%2 == 0 { // name plus pairs is odd; otherwise damaged
		return parts[0], nil
	}
	var ls []Label
	for i := 1; i+1 < len(parts); i += 2 {
		ls = append(ls, Label{parts[i], parts[i+1]})
	}
	return parts[0], ls
}

func (n *names) slot(tab []byte, i int) unsafe.Pointer {
	return unsafe.Pointer(&tab[i*n.size])
}

func (n *names) set(tab []byte, i int, name, text string) error {
	if n.size == 0 {
		return ErrNoNames
	}
	if name == "" {
		return errors.New("counter: empty name")
	}
	if len(text) > n.size-8 {
		return fmt.Errorf("counter: name and labels %q take %d bytes; the map's name slots hold %d (Shape.NameSize)", strings.ReplaceAll(text, "\x00", " "), len(text), n.size-8)
	}
	if !utf8.ValidString(text) {
		return fmt.Errorf("counter: name %q is not valid UTF-8", name)
	}
	// Lay the slot out in a local buffer, then copy it in word by word.
	buf := make([]byte, n.size)
	binary.LittleEndian.PutUint32(buf[4:], uint32(len(text)))
	copy(buf[8:], text)

	p := n.slot(tab, i)
	ver := (*atomic.Uint32)(p)
	var v uint32
	for start := time.Now(); ; runtime.Gosched() {
		v = ver.Load()
		if v%2 == 0 {
			if ver.CompareAndSwap(v, v+1) {
				v++
				break
			}
			continue
		}
		// Odd: another writer is at it. One that stays odd this long died
		// mid-write: take the slot over, keeping it odd.
		if time.Since(start) > 100*time.Millisecond && ver.CompareAndSwap(v, v+2) {
			v += 2
			break
		}
	}
	// Word 0 holds the version (low half) and the length (high half).
	words := unsafe.Slice((*atomic.Uint64)(p), n.size/8)
	words[0].Store(uint64(v) | uint64(len(text))<<32)
	for w := 1; w < len(words); w++ {
		words[w].Store(binary.LittleEndian.Uint64(buf[w*8:]))
	}
	ver.Store(v + 1)
	return nil
}

// get reads slot i. ok is false for an empty, damaged or busy slot.
func (n *names) get(tab []byte, i int) (string, bool) {
	if n.size == 0 {
		return "", false
	}
	p := n.slot(tab, i)
	ver := (*atomic.Uint32)(p)
	words := unsafe.Slice((*atomic.Uint64)(p), n.size/8)
	buf := make([]byte, n.size)
	for try := 0; try < 100; try++ {
		v := ver.Load()
		if v == 0 {
			return "", false // never written
		}
		if v%2 == 1 {
			runtime.Gosched()
			continue
		}
		for w := range words {
			binary.LittleEndian.PutUint64(buf[w*8:], words[w].Load())
		}
		if ver.Load() != v {
			continue
		}
		l := int(binary.LittleEndian.Uint32(buf[4:]))
		if l > n.size-8 || !utf8.Valid(buf[8:8+l]) {
			return "", false // damaged: the length word is untrusted
		}
		return string(buf[8 : 8+l]), true
	}
	return "", false
}
