package mmaplog_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mmaplog/mmaplog/internal/testutil"
	"github.com/mmaplog/mmaplog/mmaplog"
)

// TestCompressedSegmentsFilesAreReused: with Compress on, the plain file of
// each compressed segment is kept and made into a later segment, so that a
// log at its bound rolls over without allocating disk, and the directory
// never exceeds Options.DiskBound. After each rotation the test waits for
// the rolled segment to be compressed, so that what it counts does not
// depend on how fast the background work runs.
//
// With MaxBackups 3, every segment but the first few must be made from
// such a file. With MaxBackups 1 a kept file would take the directory over
// its bound (one compressed segment, the active and two prepared ones
// leave no room for it): the bound wins.
func TestCompressedSegmentsFilesAreReused(t *testing.T) {
	for _, backups := range []int{3, 1} {
		t.Run(fmt.Sprintf("MaxBackups=%d", backups), func(t *testing.T) {
			compressAndReuse(t, backups)
		})
	}
}

func compressAndReuse(t *testing.T, backups int) {
	const n = 12000
	o := &mmaplog.Options{SegmentSize: 64 << 10, MaxBackups: backups, Compress: true}
	w, dir := openTest(t, o)
	bound := o.DiskBound()
	maxSeen := writeCompressing(t, w, dir, 1, n)
	st := w.Stats()
	t.Logf("%d rotations, %d compressed, %d segments made from reused files, %d removed; directory at most %d of bound %d bytes",
		st.Rotations, st.Compressed, st.Reused, st.Removed, maxSeen, bound)
	if st.Rotations < 20 || st.Compressed < st.Rotations {
		t.Fatalf("%d rotations, %d compressed", st.Rotations, st.Compressed)
	}
	if maxSeen > bound {
		t.Fatalf("the directory reached %d bytes, bound %d", maxSeen, bound)
	}
	if st.BackgroundErrs != 0 {
		t.Fatalf("%d background errors", st.BackgroundErrs)
	}
	if backups < 3 {
		return
	}
	// The segments prepared at Open and at the first rotations are new
	// files: only once a rolled segment was compressed is there a file to
	// reuse.
	const fresh = 4
	if st.Reused+fresh < st.Rotations {
		t.Fatalf("%d of %d segments made from the files of compressed ones (want all but the first %d)", st.Reused, st.Rotations, fresh)
	}
}

// writeCompressing appends records from..to (seqPayload), waiting after each
// rotation until every rolled segment is compressed, and returns the most
// the directory held, sampled.
func writeCompressing(t *testing.T, w *mmaplog.Writer, dir string, from, to uint64) int64 {
	t.Helper()
	var maxSeen int64
	rotations := w.Stats().Rotations
	for i := from; i <= to; i++ {
		if _, err := w.Append(0, seqPayload(i)); err != nil {
			t.Fatalf("record %d: %v (%+v)", i, err, w.Stats())
		}
		if i%97 == 0 {
			maxSeen = max(maxSeen, filesSize(t, dir))
		}
		st := w.Stats()
		if st.Rotations == rotations {
			continue
		}
		rotations = st.Rotations
		// Wait for the segments rolled so far to be compressed (a
		// deadline only catches a hang).
		deadline := time.Now().Add(time.Minute)
		for w.Stats().Compressed < rotations {
			if time.Now().After(deadline) {
				t.Fatalf("after %d rotations only %d segments compressed: %+v", rotations, w.Stats().Compressed, w.Stats())
			}
			time.Sleep(time.Millisecond)
		}
		maxSeen = max(maxSeen, filesSize(t, dir))
	}
	return maxSeen
}

// TestCompressedLogRollsOnAFullDisk: a compressed log goes on rolling over
// on a filesystem that something else filled up: its segments are made
// from the files of the compressed ones, and need no new disk space.
func TestCompressedLogRollsOnAFullDisk(t *testing.T) {
	dir := testutil.Tmpfs(t, "4m")
	o := &mmaplog.Options{SegmentSize: 64 << 10, MaxBackups: 3, Compress: true}
	w, err := mmaplog.Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	const perSegment = 300 // records of 200 bytes in 64 KiB
	writeCompressing(t, w, dir, 1, 8*perSegment)
	before := w.Stats()
	// Fill the filesystem, but for room for a few compressed segments
	// (a few KiB each); no new segment file fits.
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil {
		t.Fatal(err)
	}
	slack := int64(16 << 10)
	if err := os.WriteFile(filepath.Join(dir, "filler"), make([]byte, int64(fs.Bavail)*int64(fs.Bsize)-slack), 0o600); err != nil {
		t.Fatal(err)
	}
	writeCompressing(t, w, dir, 8*perSegment+1, 20*perSegment)
	after := w.Stats()
	rolled, reused := after.Rotations-before.Rotations, after.Reused-before.Reused
	t.Logf("on the full disk: %d rotations, %d segments made from reused files", rolled, reused)
	// The preparer makes one segment at a time, and the last rotation
	// before the fill may have started one: made between Stats and the
	// fill, it may be a new file. Every later one fits only as a reused
	// file (and no background error says one did not).
	if rolled < 10 || reused+1 < rolled {
		t.Fatalf("on the full disk: %d rotations, %d segments made from reused files; want at least 10 and all but one made before the disk filled", rolled, reused)
	}
	if after.BackgroundErrs != 0 {
		t.Fatalf("%d background errors", after.BackgroundErrs)
	}
}
