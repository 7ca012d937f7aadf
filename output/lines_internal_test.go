package output

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// pieces is a Lines batch whose every event lies in memory of its own:
// a slice per event.
type pieces struct{ events [][]byte }

func (p *pieces) Events() [][]byte { return p.events }
func (p *pieces) Ack()             {}
func (p *pieces) Nack(error)       {}

func (p *pieces) AppendLines(dst [][]byte, i, j int) [][]byte {
	for _, ev := range p.events[i:j] {
		line := append(append(make([]byte, 0, len(ev)+1), ev...), '\n')
		dst = append(dst, line)
	}
	return dst
}

// TestFileWindowOneWrite: a window whose lines lie in more slices than one
// writev takes is copied and written with one write, as a window always
// is on the file output; one in fewer is written where it lies.
func TestFileWindowOneWrite(t *testing.T) {
	for _, n := range []int{maxIOV, maxIOV + 1} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			var want strings.Builder
			p := &pieces{}
			for i := range n {
				ev := fmt.Sprintf(`{"n":%d}`, i)
				p.events = append(p.events, []byte(ev))
				want.WriteString(ev + "\n")
			}
			w := &window{parts: []*part{{b: &batch{lines: p}, events: p.events}}, events: n}
			path := filepath.Join(t.TempDir(), "events.ndjson")
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			s := &fileSession{f: f, path: path, lines: &lineWriter{writev: fileWritev(f, path)}}
			if _, vectored, err := s.lines.writeOnce(w); err != nil || vectored != (n <= maxIOV) {
				t.Fatalf("%d slices: vectored %v (%v), want %v", n, vectored, err, n <= maxIOV)
			}
			if err := f.Truncate(0); err != nil {
				t.Fatal(err)
			}
			if err := s.send(w); err != nil {
				t.Fatal(err)
			}
			if b, _ := os.ReadFile(path); string(b) != want.String() {
				t.Fatalf("the file holds %d bytes, want %d", len(b), want.Len())
			}
		})
	}
}
