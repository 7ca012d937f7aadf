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
