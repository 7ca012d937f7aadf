package mmaplog_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mmaplog/mmaplog/mmaplog"
	"github.com/mmaplog/mmaplog/ring"
	"github.com/mmaplog/mmaplog/rotate"
	"github.com/mmaplog/mmaplog/tail"
)

const corruptionRecords = 6000

// lostInPage stands for "the records that the zeroed page held", computed
// per case into pageLoss.
const lostInPage = 1 << 62

var pageLoss uint64

func recordPayload(seq uint64) []byte {
	return []byte(fmt.Sprintf("record %06d %s", seq, strings.Repeat("x", int(seq%40))))
}

// writeTestLog writes corruptionRecords records (sequence numbers 1..N)
// across several 64 KiB segments and closes the log cleanly.
func writeTestLog(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	w, err := mmaplog.Open(dir, &mmaplog.Options{SegmentSize: 64 << 10, MaxBackups: -1})
	if err != nil {
		t.Fatal(err)
	}
	for i := uint64(1); i <= corruptionRecords; i++ {
		seq, err := w.Append(mmaplog.LevelInfo, recordPayload(i))
		if err != nil || seq != i {
			t.Fatalf("append %d: seq %d %v", i, seq, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func segPath(dir string, n uint64) string { return filepath.Join(dir, rotate.SegmentName(n)) }

// compress compresses rolled segment n, as the writer's Compress option
// does, and returns the compressed file.
func compress(t *testing.T, dir string, n uint64) string {
	t.Helper()
	fi, err := rotate.Lookup(dir, n)
	if err != nil {
		t.Fatal(err)
	}
	p, err := rotate.CompressSegment(fi)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func lastSegment(t *testing.T, dir string) uint64 {
	l, err := rotate.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	return l.Segments[len(l.Segments)-1].Num
}

// recordOffsets returns the offsets and sequence numbers of the records of
// a segment file.
func recordOffsets(t *testing.T, path string) (offs []int64, seqs []uint64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h, err := ring.ParseHeader(b, true)
	if err != nil {
		t.Fatal(err)
	}
	ring.Scan(b, h.FirstSeq, func(r ring.Record) bool {
		offs = append(offs, r.Offset)
		seqs = append(seqs, r.Seq)
		return true
	})
	return
}

func patchFile(t *testing.T, path string, off int64, fn func(b []byte)) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	b := make([]byte, st.Size())
	f.ReadAt(b, 0)
	fn(b[off:])
	if _, err := f.WriteAt(b, 0); err != nil {
		t.Fatal(err)
	}
}

type readResult struct {
	seqs   []uint64
	damage []tail.Damage
	lost   uint64
	err    error
}

// readAll reads the log and checks that every record delivered is intact.
func readAll(t *testing.T, dir string) readResult {
	t.Helper()
	r, err := tail.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var res readResult
	for r.Next() {
		rec := r.Record()
		if !bytes.Equal(rec.Payload, recordPayload(rec.Seq)) && !bytes.HasPrefix(rec.Payload, []byte("after ")) {
			t.Fatalf("record %d delivered corrupt: %q", rec.Seq, rec.Payload)
		}
		res.seqs = append(res.seqs, rec.Seq)
	}
	res.damage, res.lost, res.err = r.Damage(), r.Lost(), r.Err()
	return res
}

// TestCorruption runs a table of damage against the reader, Verify and the
// recovering writer. Each case damages a cleanly written log and says what
// each of them must report; every case also checks that no corrupt record
// is ever delivered and that the writer can append afterwards (or refuses
// to open with an error naming the file).
func TestCorruption(t *testing.T) {
	type expect struct {
		lost        uint64 // records the reader loses, exactly (0: not checked)
		accounted   bool   // records read + records lost must be all records written
		damageIn    string // file name the reader's first damage names ("" = no damage; "last" = the last segment)
		verifyClean bool
		openErr     error                // cause of the writer's Open error, nil if it opens
		repair      []mmaplog.RepairKind // the writer must report a repair of one of these kinds (nil = none at all)
	}
	cases := []struct {
		name    string
		corrupt func(t *testing.T, dir string) string // returns the file it damaged
		want    expect
	}{
		{
			name: "flip a bit in a rolled segment",
			corrupt: func(t *testing.T, dir string) string {
				p := segPath(dir, 2)
				offs, _ := recordOffsets(t, p)
				patchFile(t, p, offs[5]+40, func(b []byte) { b[0] ^= 0x10 })
				return p
			},
			want: expect{lost: 1, accounted: true, damageIn: rotate.SegmentName(2)},
		},
		{
			name: "flip a bit in the last segment",
			corrupt: func(t *testing.T, dir string) string {
				p := segPath(dir, lastSegment(t, dir))
				offs, _ := recordOffsets(t, p)
				patchFile(t, p, offs[3]+33, func(b []byte) { b[0] ^= 1 })
				return p
			},
			want: expect{lost: 1, accounted: true, damageIn: "last", repair: kinds(mmaplog.RepairCorrupt)},
		},
		{
			name: "zero a page of a rolled segment",
			corrupt: func(t *testing.T, dir string) string {
				p := segPath(dir, 2)
				patchFile(t, p, 8192, func(b []byte) { clear(b[:4096]) })
				return p
			},
			want: expect{lost: lostInPage, accounted: true, damageIn: rotate.SegmentName(2)},
		},
		{
			name: "zero a page of the last segment",
			corrupt: func(t *testing.T, dir string) string {
				p := segPath(dir, lastSegment(t, dir))
				offs, _ := recordOffsets(t, p)
				page := (offs[len(offs)-1]/4096 - 1) * 4096
				if page < 4096 {
					t.Fatalf("the last segment holds too little data (%d bytes) for this case", offs[len(offs)-1])
				}
				patchFile(t, p, page, func(b []byte) { clear(b[:4096]) })
				return p
			},
			want: expect{accounted: true, damageIn: "last", repair: kinds(mmaplog.RepairHole, mmaplog.RepairCorrupt)},
		},
		{
			name: "tear the tail",
			corrupt: func(t *testing.T, dir string) string {
				p := segPath(dir, lastSegment(t, dir))
				offs, _ := recordOffsets(t, p)
				// The last record's length word never stored: a write in flight.
				patchFile(t, p, offs[len(offs)-1], func(b []byte) { binary.LittleEndian.PutUint32(b, 0) })
				return p
			},
			want: expect{verifyClean: false, repair: kinds(mmaplog.RepairTornTail)},
		},
		{
			name: "truncate the last segment",
			corrupt: func(t *testing.T, dir string) string {
				p := segPath(dir, lastSegment(t, dir))
				os.Truncate(p, 8192)
				return p
			},
			want: expect{damageIn: "last", repair: kinds(mmaplog.RepairTruncated)},
		},
		{
			name: "truncate a rolled segment",
			corrupt: func(t *testing.T, dir string) string {
				p := segPath(dir, 3)
				os.Truncate(p, 20000)
				return p
			},
			want: expect{accounted: true, damageIn: rotate.SegmentName(3)},
		},
		{
			name: "foreign file",
			corrupt: func(t *testing.T, dir string) string {
				p := filepath.Join(dir, "notes.txt")
				os.WriteFile(p, []byte("not a segment"), 0o600)
				return p
			},
			want: expect{accounted: true, verifyClean: true},
		},
		{
			name: "foreign file named like a segment",
			corrupt: func(t *testing.T, dir string) string {
				p := segPath(dir, 2)
				os.WriteFile(p, bytes.Repeat([]byte("some other program's data\n"), 3000), 0o600)
				return p
			},
			want: expect{accounted: true, damageIn: rotate.SegmentName(2), repair: kinds(mmaplog.RepairLeftDamaged)},
		},
		{
			name: "wrong magic on the last segment",
			corrupt: func(t *testing.T, dir string) string {
				p := segPath(dir, lastSegment(t, dir))
				patchFile(t, p, 0, func(b []byte) { copy(b, "NOTALOG!") })
				return p
			},
			want: expect{damageIn: "last", openErr: ring.ErrBadMagic},
		},
		{
			name: "wrong version on the last segment",
			corrupt: func(t *testing.T, dir string) string {
				p := segPath(dir, lastSegment(t, dir))
				patchFile(t, p, 8, func(b []byte) { b[0] = 9 })
				return p
			},
			want: expect{damageIn: "last", openErr: ring.ErrVersion},
		},
		{
			name: "flip a byte of a compressed segment",
			corrupt: func(t *testing.T, dir string) string {
				p := compress(t, dir, 2)
				patchFile(t, p, 0, func(b []byte) { b[len(b)/2] ^= 0x5a })
				return p
			},
			want: expect{accounted: true, damageIn: rotate.SegmentName(2) + rotate.CompressedExt},
		},
		{
			name: "truncate a compressed segment",
			corrupt: func(t *testing.T, dir string) string {
				p := compress(t, dir, 3)
				st, _ := os.Stat(p)
				os.Truncate(p, st.Size()*2/3)
				return p
			},
			want: expect{accounted: true, damageIn: rotate.SegmentName(3) + rotate.CompressedExt},
		},
		{
			name: "a hole in a compressed segment",
			corrupt: func(t *testing.T, dir string) string {
				p := segPath(dir, 2)
				offs, _ := recordOffsets(t, p)
				patchFile(t, p, offs[7], func(b []byte) { binary.LittleEndian.PutUint32(b, 0) })
				return compress(t, dir, 2)
			},
			want: expect{lost: 1, accounted: true, damageIn: rotate.SegmentName(2) + rotate.CompressedExt},
		},
		{
			name: "a segment deleted in the middle",
			corrupt: func(t *testing.T, dir string) string {
				p := segPath(dir, 3)
				os.Remove(p)
				return p
			},
			want: expect{accounted: true, damageIn: rotate.SegmentName(4)},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeTestLog(t)
			last := lastSegment(t, dir)
			// Records of segment 2 that the zeroed page [8192, 12288) touches.
			pageLoss = 0
			offs, _ := recordOffsets(t, segPath(dir, 2))
			for i, off := range offs {
				end := int64(64 << 10)
				if i+1 < len(offs) {
					end = offs[i+1]
				}
				if off < 12288 && end > 8192 {
					pageLoss++
				}
			}
			// How many records the damaged file held before, to check the
			// lost counts that the sequence numbers prove.
			damaged := tc.corrupt(t, dir)
			damageIn := tc.want.damageIn
			if damageIn == "last" {
				damageIn = rotate.SegmentName(last)
			}

			res := readAll(t, dir)
			if res.err != nil {
				t.Fatalf("reader stopped: %v", res.err)
			}
			// Sequence numbers read plus lost account for every record.
			if got := uint64(len(res.seqs)) + res.lost; tc.want.accounted && got != corruptionRecords {
				t.Errorf("read %d + lost %d = %d, want %d", len(res.seqs), res.lost, got, corruptionRecords)
			}
			if tc.want.lost == lostInPage {
				tc.want.lost = pageLoss
			}
			if tc.want.lost > 0 && res.lost != tc.want.lost {
				t.Errorf("lost %d, want %d", res.lost, tc.want.lost)
			}
			for i := 1; i < len(res.seqs); i++ {
				if res.seqs[i] <= res.seqs[i-1] {
					t.Fatalf("sequence %d after %d", res.seqs[i], res.seqs[i-1])
				}
			}
			switch {
			case damageIn == "" && len(res.damage) > 0:
				t.Errorf("unexpected damage: %v", res.damage)
			case damageIn != "" && len(res.damage) == 0:
				t.Errorf("no damage reported, want some in %s", damageIn)
			case damageIn != "" && !strings.HasSuffix(res.damage[0].Path, damageIn):
				t.Errorf("damage reported in %s, want %s", res.damage[0].Path, damageIn)
			}
			for _, d := range res.damage {
				if d.Err == nil || !strings.Contains(d.String(), d.Path) {
					t.Errorf("damage without a cause or a file: %s", d)
				}
			}

			rep, err := tail.Verify(dir)
			if err != nil {
				t.Fatal(err)
			}
			// Verify reads as the reader does: it counts the same loss.
			if rep.Lost() != res.lost {
				t.Errorf("verify counts %d records lost, the reader %d (findings %v, notes %v)", rep.Lost(), res.lost, rep.Findings, rep.Notes)
			}
			if rep.Clean() != (tc.want.verifyClean || damageIn == "" && tc.name != "tear the tail") {
				t.Errorf("verify clean=%v, findings %v", rep.Clean(), rep.Findings)
			}
			for _, f := range rep.Findings {
				if f.Path == "" || f.Err == nil {
					t.Errorf("finding without a file or cause: %+v", f)
				}
			}

			w, err := mmaplog.Open(dir, &mmaplog.Options{SegmentSize: 64 << 10, MaxBackups: -1})
			if tc.want.openErr != nil {
				if !errors.Is(err, tc.want.openErr) || !strings.Contains(err.Error(), damaged) {
					t.Fatalf("open: %v, want %v naming %s", err, tc.want.openErr, damaged)
				}
				return
			}
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			var repairs []mmaplog.RepairKind
			for _, r := range w.Recovery() {
				repairs = append(repairs, r.Kind)
				if !strings.Contains(r.String(), r.Path) {
					t.Errorf("repair without a file: %s", r)
				}
			}
			if tc.want.repair != nil && !containsAny(repairs, tc.want.repair) {
				t.Errorf("repairs %v, want one of %v", repairs, tc.want.repair)
			}
			if tc.want.repair == nil && len(repairs) > 0 {
				t.Errorf("unexpected repairs %v", w.Recovery())
			}
			after, err := w.Append(mmaplog.LevelInfo, []byte("after recovery"))
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			res2 := readAll(t, dir)
			if len(res2.seqs) == 0 || res2.seqs[len(res2.seqs)-1] != after {
				t.Fatalf("the record appended after recovery (%d) is not the last one read", after)
			}
			if res2.err != nil {
				t.Fatal(res2.err)
			}
		})
	}
}

func kinds(k ...mmaplog.RepairKind) []mmaplog.RepairKind { return k }

func containsAny(ss, want []mmaplog.RepairKind) bool {
	for _, x := range ss {
		for _, w := range want {
			if x == w {
				return true
			}
		}
	}
	return false
}
