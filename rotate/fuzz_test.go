package rotate

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/mmaplog/mmaplog/ring"
)

// FuzzOpenView is the segment opener under arbitrary file contents, plain
// and zstd-compressed: it must return a segment or an error, never panic,
// and a segment it returns must scan without going out of bounds.
func FuzzOpenView(f *testing.F) {
	seed := make([]byte, 4096)
	ring.PutHeader(seed, ring.Header{Segment: 1, FirstSeq: 1, Size: 4096})
	r, _ := ring.New(seed, ring.HeaderSize, 1, 0)
	r.Append(1, 1, []byte("a record"))
	r.Seal(true, 0)
	f.Add(seed, false)
	f.Add(seed[:200], false)
	var z bytes.Buffer
	enc, _ := zstd.NewWriter(&z)
	enc.Write(seed[:ring.HeaderSize+64])
	enc.Close()
	f.Add(z.Bytes(), true)
	f.Add([]byte("(\xb5/\xfd garbage"), true)
	f.Fuzz(func(t *testing.T, data []byte, compressed bool) {
		name := SegmentName(1)
		if compressed {
			name += CompressedExt
		}
		path := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		v, err := OpenView(FileInfo{Num: 1, Path: path, Compressed: compressed})
		if err != nil {
			return
		}
		defer v.Close()
		res := ring.Scan(v.Data, v.Header.FirstSeq, nil)
		if res.End > len(v.Data) {
			t.Fatalf("scan ended at %d of %d", res.End, len(v.Data))
		}
	})
}

// FuzzStream reads a compressed segment of arbitrary content two ways, as
// the moving window a Reader streams through (Prepare, PrepareRest) and
// decompressed whole (OpenView): the walks must agree step by step.
func FuzzStream(f *testing.F) {
	seed := make([]byte, 1<<16)
	ring.PutHeader(seed, ring.Header{Segment: 1, FirstSeq: 1, Size: uint64(len(seed))})
	r, _ := ring.New(seed, ring.HeaderSize, 1, 0)
	for i := 0; i < 200; i++ {
		r.Append(1, 1, bytes.Repeat([]byte{byte(i)}, i))
	}
	end, _ := r.Seal(true, 0)
	f.Add(seed[:end], 0)
	f.Add(seed[:end], 4000)
	f.Fuzz(func(t *testing.T, data []byte, flip int) {
		if len(data) > 1<<17 {
			return
		}
		if flip > 0 && flip < len(data) {
			data = append([]byte(nil), data...)
			data[flip] ^= 0x41
		}
		var z bytes.Buffer
		enc, _ := zstd.NewWriter(&z, zstd.WithEncoderCRC(true))
		enc.Write(data)
		enc.Close()
		path := filepath.Join(t.TempDir(), SegmentName(1)+CompressedExt)
		if err := os.WriteFile(path, z.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		fi := FileInfo{Num: 1, Path: path, Compressed: true}
		whole, werr := OpenView(fi)
		stream, serr := OpenStream(fi)
		if werr != nil || serr != nil {
			if whole != nil {
				whole.Close()
			}
			if stream != nil {
				stream.Close()
			}
			return // (a header damaged: both report it at open; a longer stream can fail later only)
		}
		defer whole.Close()
		defer stream.Close()
		a, b := ring.NewWalker(whole.Header.FirstSeq), ring.NewWalker(stream.Header.FirstSeq)
		for steps := 0; steps < 1<<16; steps++ {
			x := a.Next(whole.Data, 0, true)
			if err := stream.Prepare(b.Pos); err != nil {
				t.Fatalf("prepare: %v", err)
			}
			saved := b
			y := b.Next(stream.Data, stream.Base, true)
			if y.Kind == ring.StepDamage && y.Damage.To < 0 && stream.Partial() {
				b = saved
				stream.PrepareRest(b.Pos)
				y = b.Next(stream.Data, stream.Base, true)
			}
			if x.Kind != y.Kind || x.Record.Seq != y.Record.Seq || x.Record.Offset != y.Record.Offset || a.Pos != b.Pos ||
				x.Kind == ring.StepRecord && !bytes.Equal(x.Record.Payload, y.Record.Payload) {
				t.Fatalf("step %d: whole %v at %d, stream %v at %d", steps, x.Kind, a.Pos, y.Kind, b.Pos)
			}
			if x.Kind == ring.StepEnd || x.Kind == ring.StepEmpty || x.Kind == ring.StepDamage && x.Damage.To < 0 {
				return
			}
		}
		t.Fatal("the walk did not end")
	})
}
