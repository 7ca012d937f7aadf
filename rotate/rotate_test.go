package rotate

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mmaplog/mmaplog/internal/testutil"
	"github.com/mmaplog/mmaplog/ring"
)

const segSize = 64 << 10

func TestNames(t *testing.T) {
	if SegmentName(7) != "0000000000000007.mlog" {
		t.Fatal(SegmentName(7))
	}
	for name, want := range map[string]struct {
		n          uint64
		compressed bool
		ok         bool
	}{
		"0000000000000007.mlog":     {7, false, true},
		"0000000000000123.mlog.zst": {123, true, true},
		"7.mlog":                    {0, false, false},
		"0000000000000007.log":      {0, false, false},
		"000000000000000x.mlog":     {0, false, false},
		"LOCK":                      {0, false, false},
	} {
		n, c, ok := ParseName(name)
		if n != want.n || c != want.compressed || ok != want.ok {
			t.Errorf("%s: %d %v %v", name, n, c, ok)
		}
	}
}

// activate writes a header and n records into a segment, as the writer does,
// and seals it with padding if full is set.
func activate(t *testing.T, s *Segment, firstSeq uint64, n int, full bool) {
	t.Helper()
	ring.PutHeader(s.Data, ring.Header{Segment: s.Num, FirstSeq: firstSeq, Created: time.Now().UnixNano(), Size: uint64(len(s.Data))})
	r, err := ring.New(s.Data, ring.HeaderSize, firstSeq, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if _, err := r.Append(0, 0, []byte("record payload of some length")); err != nil {
			t.Fatal(err)
		}
	}
	if full {
		r.Seal(true, 0)
	}
}

func TestCreateIsPrivateExclusiveAndNoFollow(t *testing.T) {
	dir := t.TempDir()
	s, err := Create(dir, 1, segSize, 0o600, true)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, _ := os.Stat(s.Path)
	if st.Mode().Perm() != 0o600 || st.Size() != segSize {
		t.Fatalf("mode %v size %d", st.Mode(), st.Size())
	}
	var sys unix.Stat_t
	unix.Stat(s.Path, &sys)
	if sys.Blocks*512 < segSize {
		t.Fatalf("file is sparse: %d blocks of 512 for %d bytes", sys.Blocks, segSize)
	}
	if _, err := Create(dir, 1, segSize, 0o600, false); !errors.Is(err, os.ErrExist) {
		t.Fatalf("second create of the same segment: %v", err)
	}
	// A symbolic link planted where the next segment goes is not followed.
	target := filepath.Join(t.TempDir(), "victim")
	os.WriteFile(target, []byte("keep me"), 0o644)
	os.Symlink(target, filepath.Join(dir, SegmentName(2)))
	if _, err := Create(dir, 2, segSize, 0o600, false); err == nil {
		t.Fatal("created a segment through a symbolic link")
	}
	if b, _ := os.ReadFile(target); string(b) != "keep me" {
		t.Fatal("the link's target was modified")
	}
}

func TestCreateRejectsBadSizes(t *testing.T) {
	for _, size := range []int64{100, segSize + 1, ring.MaxRegionSize + 4096} {
		if _, err := Create(t.TempDir(), 1, size, 0o600, false); err == nil {
			t.Errorf("size %d accepted", size)
		}
	}
}

// TestCreateOnFullDisk: on a full filesystem the segment fails to be created
// with an error naming the file; no half-made file stays behind.
func TestCreateOnFullDisk(t *testing.T) {
	dir := testutil.Tmpfs(t, "1m")
	_, err := Create(dir, 1, 4<<20, 0o600, true)
	if !errors.Is(err, unix.ENOSPC) || !strings.Contains(err.Error(), SegmentName(1)) {
		t.Fatalf("got %v, want ENOSPC naming the file", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("left %v behind", ents)
	}
}

// hangLimit bounds the waits for events of these tests: only a hang takes
// this long, however busy the machine.
const hangLimit = time.Minute

// waitEvent waits for an event on ch; the limit only catches a hang.
func waitEvent[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(hangLimit):
		t.Fatalf("no %s in %v", what, hangLimit)
	}
	var zero T
	return zero
}

func TestPreparer(t *testing.T) {
	dir := t.TempDir()
	var before []uint64
	created := make(chan struct{}, 16)
	p := StartPreparer(dir, 5, PreparerOptions{Size: segSize, Perm: 0o600, Prefault: true,
		BeforeCreate: func(n uint64) { before = append(before, n) },
		OnCreate:     func(time.Duration, bool) { created <- struct{}{} }})
	for want := uint64(5); want < 8; want++ {
		s, err := p.Take()
		if err != nil {
			t.Fatal(err)
		}
		if s.Num != want {
			t.Fatalf("took %d, want %d", s.Num, want)
		}
		s.Close()
	}
	// Segments 5 to 7 were made, and segment 8 once a fourth is: Close
	// finds it prepared, untaken.
	for i := 0; i < 4; i++ {
		waitEvent(t, created, fmt.Sprintf("preparation of segment %d", 5+i))
	}
	p.Close()
	if _, err := os.Stat(filepath.Join(dir, SegmentName(8))); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the untaken segment 8 was not removed: %v", err)
	}
	if len(before) < 3 || before[0] != 5 {
		t.Fatalf("BeforeCreate calls %v", before)
	}
}

func TestPreparerAheadTwo(t *testing.T) {
	dir := t.TempDir()
	created := make(chan struct{}, 16)
	p := StartPreparer(dir, 1, PreparerOptions{Size: segSize, Perm: 0o600, Ahead: 2,
		OnCreate: func(time.Duration, bool) { created <- struct{}{} }})
	waitEvent(t, created, "first segment prepared")
	waitEvent(t, created, "second segment prepared")
	if l, _ := List(dir); len(l.Segments) != 2 {
		t.Fatalf("two segments prepared, listed %+v", l.Segments)
	}
	// A third must not come while none is taken. A bounded look: a
	// correct preparer never makes one, however long this takes; a
	// busy machine can only make a faulty one go unseen.
	time.Sleep(20 * time.Millisecond)
	if l, _ := List(dir); len(l.Segments) != 2 || len(created) != 0 {
		t.Fatalf("prepared more than two: %+v", l.Segments)
	}
	s, err := p.Take()
	if err != nil || s.Num != 1 {
		t.Fatalf("took %v %v", s, err)
	}
	s.Close()
	p.Close()
	l, _ := List(dir)
	if len(l.Segments) != 1 || l.Segments[0].Num != 1 || len(l.Temp) != 0 {
		t.Fatalf("Close left the untaken segments: %+v", l)
	}
}

// TestPreparerReportsFullDisk: a preparation that fails is reported by
// Take; while the preparer tries again, Take answers at once with the last
// error instead of waiting for the next attempt. The second attempt is held
// in BeforeCreate until the test ends, so it cannot complete: a Take that
// waited for it would hang (caught by hangLimit).
func TestPreparerReportsFullDisk(t *testing.T) {
	dir := testutil.Tmpfs(t, "1m")
	var attempts atomic.Int64
	retrying, release := make(chan struct{}), make(chan struct{})
	// Two ahead: the first attempt's error is queued and the preparer goes
	// on to back off and try again without waiting for a Take.
	p := StartPreparer(dir, 1, PreparerOptions{Size: 4 << 20, Perm: 0o600, Ahead: 2, BeforeCreate: func(uint64) {
		if attempts.Add(1) == 2 {
			close(retrying)
			<-release
		}
	}})
	defer p.Close()
	defer close(release) // before Close, which waits for the held attempt
	waitEvent(t, retrying, "second attempt after the first failed")
	if _, err := p.Take(); !errors.Is(err, unix.ENOSPC) {
		t.Fatalf("got %v", err)
	}
	took := make(chan error, 1)
	go func() {
		_, err := p.Take()
		took <- err
	}()
	if err := waitEvent(t, took, "answer from Take while the next attempt is under way (it waits for that attempt)"); !errors.Is(err, unix.ENOSPC) || attempts.Load() != 2 {
		t.Fatalf("got %v after %d attempts", err, attempts.Load())
	}
}

func makeRolled(t *testing.T, dir string, nums ...uint64) {
	t.Helper()
	seq := uint64(1)
	for _, n := range nums {
		s, err := Create(dir, n, segSize, 0o600, false)
		if err != nil {
			t.Fatal(err)
		}
		activate(t, s, seq, 10, true)
		seq += 10
		s.Close()
	}
}

func listNums(t *testing.T, dir string) (nums []uint64, compressed []bool) {
	l, err := List(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range l.Segments {
		nums = append(nums, s.Num)
		compressed = append(compressed, s.Compressed)
	}
	return
}

func TestRetentionByCount(t *testing.T) {
	dir := t.TempDir()
	makeRolled(t, dir, 1, 2, 3, 4, 5, 6)
	res, err := Retention{MaxBackups: 3}.Apply(dir, State{Active: 6, Finished: 6}, time.Now(), true)
	if err != nil {
		t.Fatal(err)
	}
	nums, _ := listNums(t, dir)
	if len(nums) != 4 || nums[0] != 3 || len(res.Actions) != 2 || res.Over {
		t.Fatalf("kept %v, result %+v", nums, res)
	}
	// Unfinished rolled segments are counted but never removed.
	dir2 := t.TempDir()
	makeRolled(t, dir2, 1, 2, 3)
	res, _ = Retention{MaxBackups: 1}.Apply(dir2, State{Active: 3, Finished: 1}, time.Now(), true)
	if nums, _ := listNums(t, dir2); len(nums) != 3 || !res.Over {
		t.Fatalf("removed an unfinished segment, or did not say it is over the bound: %v %+v", nums, res)
	}
}

func TestRetentionByTotalSizeCountsReserve(t *testing.T) {
	dir := t.TempDir()
	makeRolled(t, dir, 1, 2, 3, 4)
	// 4 segments + 1 about to be created must fit in 3 segments' worth.
	Retention{MaxTotalSize: 3 * segSize}.Apply(dir, State{Active: 4, Finished: 4, Reserve: segSize}, time.Now(), true)
	nums, _ := listNums(t, dir)
	if len(nums) != 2 || nums[0] != 3 {
		t.Fatalf("kept %v", nums)
	}
}

func TestRetentionByAge(t *testing.T) {
	dir := t.TempDir()
	makeRolled(t, dir, 1, 2, 3)
	old := time.Now().Add(-2 * time.Hour)
	os.Chtimes(filepath.Join(dir, SegmentName(1)), old, old)
	Retention{MaxAge: time.Hour}.Apply(dir, State{Active: 3, Finished: 3}, time.Now(), true)
	if nums, _ := listNums(t, dir); len(nums) != 2 || nums[0] != 2 {
		t.Fatalf("kept %v", nums)
	}
}

func TestCompressionRoundTrip(t *testing.T) {
	dir := t.TempDir()
	makeRolled(t, dir, 1, 2)
	l, _ := List(dir)
	orig, err := OpenView(l.Segments[0])
	if err != nil {
		t.Fatal(err)
	}
	want := ring.Scan(orig.Data, orig.Header.FirstSeq, nil)
	orig.Close()
	if _, err := (Retention{Compress: true}).CompressRolled(dir, State{Active: 2, Finished: 2}); err != nil {
		t.Fatal(err)
	}
	nums, comp := listNums(t, dir)
	if len(nums) != 2 || !comp[0] || comp[1] {
		t.Fatalf("after compression %v %v", nums, comp)
	}
	l, _ = List(dir)
	if l.Segments[0].Size >= segSize/4 {
		t.Fatalf("compressed file is %d bytes", l.Segments[0].Size)
	}
	v, err := OpenView(l.Segments[0])
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	got := ring.Scan(v.Data, v.Header.FirstSeq, nil)
	if got.Records != want.Records || got.NextSeq != want.NextSeq || !got.Full || len(got.Damage) != 0 {
		t.Fatalf("compressed reads %+v, plain read %+v", got, want)
	}
	st, _ := os.Stat(l.Segments[0].Path)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("compressed file mode %v", st.Mode())
	}
}

func TestCompressionLeftoversAreCleanedUp(t *testing.T) {
	dir := t.TempDir()
	makeRolled(t, dir, 1, 2)
	l, _ := List(dir)
	// An interrupted compression: a temp file, and a finished .zst beside
	// its original.
	os.WriteFile(filepath.Join(dir, SegmentName(2)+CompressedExt+tmpExt), []byte("partial"), 0o600)
	if _, err := CompressSegment(l.Segments[0]); err != nil {
		t.Fatal(err)
	}
	// Recreate the original of segment 1 as if the removal never happened.
	s, _ := Create(dir, 1, segSize, 0o600, false)
	activate(t, s, 1, 10, true)
	s.Close()
	l, _ = List(dir)
	if len(l.Duplicates) != 1 || len(l.Temp) != 1 {
		t.Fatalf("listing %+v", l)
	}
	// Without cleanup (a compression may be running) the temp file stays.
	if _, err := (Retention{}).Apply(dir, State{Active: 3, Finished: 3}, time.Now(), false); err != nil {
		t.Fatal(err)
	}
	if l, _ = List(dir); len(l.Temp) != 1 {
		t.Fatalf("removed a temp file without cleanup: %+v", l)
	}
	if _, err := (Retention{}).Apply(dir, State{Active: 3, Finished: 3}, time.Now(), true); err != nil {
		t.Fatal(err)
	}
	l, _ = List(dir)
	if len(l.Duplicates) != 0 || len(l.Temp) != 0 || !l.Segments[0].Compressed {
		t.Fatalf("after cleanup %+v", l)
	}
}

func TestListReportsForeignFiles(t *testing.T) {
	dir := t.TempDir()
	makeRolled(t, dir, 1)
	os.WriteFile(filepath.Join(dir, "notes.txt"), nil, 0o600)
	os.Mkdir(filepath.Join(dir, "cursors"), 0o700)
	l, err := List(dir)
	if err != nil || len(l.Foreign) != 1 || !strings.HasSuffix(l.Foreign[0], "notes.txt") || len(l.Segments) != 1 {
		t.Fatalf("%+v %v", l, err)
	}
}

func TestOpenViewErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) FileInfo {
		p := filepath.Join(dir, name)
		os.WriteFile(p, b, 0o600)
		n, c, _ := ParseName(name)
		return FileInfo{Num: n, Path: p, Compressed: c}
	}
	cases := map[string]struct {
		fi    FileInfo
		cause error
	}{
		"empty":       {write(SegmentName(1), nil), ring.ErrShort},
		"foreign":     {write(SegmentName(2), []byte(strings.Repeat("not a segment at all! ", 20))), ring.ErrBadMagic},
		"not zstd":    {write(SegmentName(3)+CompressedExt, []byte("garbage")), nil},
		"not started": {write(SegmentName(4), make([]byte, 4096)), ring.ErrNotStarted},
	}
	for name, tc := range cases {
		v, err := OpenView(tc.fi)
		if err == nil {
			v.Close()
			t.Errorf("%s: opened", name)
			continue
		}
		if tc.cause != nil && !errors.Is(err, tc.cause) {
			t.Errorf("%s: %v, want %v", name, err, tc.cause)
		}
		if !strings.Contains(err.Error(), tc.fi.Path) && !errors.Is(err, ring.ErrNotStarted) {
			t.Errorf("%s: error does not name the file: %v", name, err)
		}
	}
	// A segment whose file was truncated after it was written.
	makeRolled(t, dir, 10)
	p := filepath.Join(dir, SegmentName(10))
	os.Truncate(p, 8192)
	v, err := OpenView(FileInfo{Num: 10, Path: p})
	if err != nil || !v.Truncated || len(v.Data) != 8192 {
		t.Fatalf("truncated: %v %+v", err, v)
	}
	v.Close()
	// A leftover temporary file of a crashed preparation is replaced.
	os.WriteFile(filepath.Join(dir, SegmentName(11)+tmpExt), []byte("half"), 0o600)
	s, err := Create(dir, 11, segSize, 0o600, false)
	if err != nil {
		t.Fatalf("create over a leftover temporary file: %v", err)
	}
	s.Close()
}

// TestCompressWhileFollowersArm: followers write the control area of a
// rolled segment's header (its wake words) while the writer compresses it;
// the compressed copy still decompresses with its checksum intact, and holds
// a clean control area.
func TestCompressWhileFollowersArm(t *testing.T) {
	for round := 0; round < 20; round++ {
		dir := t.TempDir()
		makeRolled(t, dir, 1)
		l, _ := List(dir)
		f, err := os.OpenFile(l.Segments[0].Path, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		ctl, err := unix.Mmap(int(f.Fd()), 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		stop := make(chan struct{})
		done := make(chan struct{})
		armed := make(chan struct{})
		go func() {
			defer close(done)
			for i := int64(1); ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				now := time.Now().UnixNano()
				ring.ArmWake(ctl, now, now+i)
				atomicAdd(ring.WakeWord(ctl))
				if i == 1 {
					close(armed)
				}
			}
		}()
		// The followers are arming before the compression starts, however
		// late the scheduler runs them.
		waitEvent(t, armed, "first arming")
		out, err := CompressSegment(l.Segments[0])
		close(stop)
		<-done
		unix.Munmap(ctl)
		if err != nil {
			t.Fatal(err)
		}
		v, err := OpenView(FileInfo{Num: 1, Path: out, Compressed: true})
		if err != nil {
			t.Fatalf("round %d: the compressed copy does not decompress: %v", round, err)
		}
		res := ring.Scan(v.Data, v.Header.FirstSeq, nil)
		if ring.WakeUntil(v.Data).Load() != 0 || *ring.WakeWord(v.Data) != 0 || ring.LoadState(v.Data) != ring.StateSealed || res.Records == 0 || len(res.Damage) != 0 {
			t.Fatalf("round %d: compressed header control area not clean, or records damaged: %+v", round, res)
		}
		v.Close()
	}
}
