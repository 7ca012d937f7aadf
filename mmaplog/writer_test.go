package mmaplog_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/mmaplog/mmaplog/flush"
	"github.com/mmaplog/mmaplog/internal/fault"
	"github.com/mmaplog/mmaplog/internal/testutil"
	"github.com/mmaplog/mmaplog/mmaplog"
	"github.com/mmaplog/mmaplog/ring"
	"github.com/mmaplog/mmaplog/rotate"
	"github.com/mmaplog/mmaplog/tail"
)

// openTest opens a writer on a new directory and closes it when the test
// ends, checking the log with Verify.
func openTest(t *testing.T, o *mmaplog.Options) (*mmaplog.Writer, string) {
	t.Helper()
	dir := t.TempDir()
	w, err := mmaplog.Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := w.Close(); err != nil && !errors.Is(err, mmaplog.ErrClosed) {
			t.Errorf("close: %v", err)
		}
		if m := testutil.MappingsUnder(t, dir); len(m) > 0 {
			t.Errorf("Close left %d mapping(s) of the log's files: %q", len(m), m)
		}
		rep, err := tail.Verify(dir)
		if err != nil || !rep.Clean() {
			t.Errorf("verify after the test: %v %v", err, rep.Findings)
		}
	})
	return w, dir
}

func payloads(t *testing.T, dir string) []string {
	t.Helper()
	r, err := tail.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []string
	for r.Next() {
		out = append(out, string(r.Record().Payload))
	}
	if r.Err() != nil || len(r.Damage()) > 0 {
		t.Fatalf("read: %v %v", r.Err(), r.Damage())
	}
	return out
}

func TestWriteDropsOneTrailingNewline(t *testing.T) {
	w, dir := openTest(t, nil)
	for _, s := range []string{"a\n", "b", "c\n\n", "\n", ""} {
		n, err := w.Write([]byte(s))
		if err != nil || n != len(s) {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	w.Sync()
	got := payloads(t, dir)
	want := []string{"a", "b", "c\n", "", ""}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q want %q", got, want)
	}
	w2, dir2 := openTest(t, &mmaplog.Options{KeepNewline: true})
	w2.Write([]byte("kept\n"))
	if got := payloads(t, dir2); got[0] != "kept\n" {
		t.Fatalf("KeepNewline: %q", got)
	}
}

func TestWriteLevelStoresTheLevel(t *testing.T) {
	w, dir := openTest(t, nil)
	log := zerolog.New(w)
	log.Warn().Msg("careful")
	log.Error().Msg("broken")
	log.Log().Msg("no level")
	r, _ := tail.Open(dir, nil)
	defer r.Close()
	var levels []mmaplog.Level
	for r.Next() {
		levels = append(levels, mmaplog.Level(r.Record().Type))
	}
	if len(levels) != 3 || levels[0] != mmaplog.LevelWarn || levels[1] != mmaplog.LevelError || levels[2] != mmaplog.LevelNone {
		t.Fatalf("levels %v", levels)
	}
}

func TestTooLarge(t *testing.T) {
	w, _ := openTest(t, &mmaplog.Options{SegmentSize: 64 << 10, MaxRecordSize: 1000})
	if _, err := w.Write(make([]byte, 1001)); !errors.Is(err, mmaplog.ErrTooLarge) || !strings.Contains(err.Error(), "1001") {
		t.Fatalf("got %v", err)
	}
	if _, err := w.Write(make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	// A maximum larger than a segment can hold is refused at Open.
	if _, err := mmaplog.Open(t.TempDir(), &mmaplog.Options{SegmentSize: 64 << 10, MaxRecordSize: 64 << 10}); err == nil {
		t.Fatal("Open accepted a MaxRecordSize larger than a segment")
	}
}

func TestOptionsValidation(t *testing.T) {
	for _, o := range []mmaplog.Options{
		{SegmentSize: 1000},
		{SegmentSize: 2 << 30},
		{MaxBackups: -2},
		{MaxTotalSize: 100},
		{Flush: flush.EveryInterval(0)},
	} {
		if _, err := mmaplog.Open(t.TempDir(), &o); err == nil {
			t.Errorf("accepted %+v", o)
		}
	}
	if b := (*mmaplog.Options)(nil).DiskBound(); b != 640<<20 {
		t.Errorf("default disk bound %d", b)
	}
}

func TestCloseSemantics(t *testing.T) {
	dir := t.TempDir()
	w, err := mmaplog.Open(dir, &mmaplog.Options{SegmentSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("one"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("two")); !errors.Is(err, mmaplog.ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
	if err := w.Close(); !errors.Is(err, mmaplog.ErrClosed) {
		t.Fatalf("second close: %v", err)
	}
	if err := w.Sync(); !errors.Is(err, mmaplog.ErrClosed) {
		t.Fatalf("sync after close: %v", err)
	}
	// Close removed the prepared segment and released the lock.
	l, _ := rotate.List(dir)
	if len(l.Segments) != 1 || len(l.Temp) != 0 {
		t.Fatalf("after close: %+v", l)
	}
	w2, err := mmaplog.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(w2.Recovery()) != 0 {
		t.Fatalf("a clean close needed repairs: %v", w2.Recovery())
	}
	w2.Write([]byte("three"))
	w2.Close()
	if got := payloads(t, dir); strings.Join(got, ",") != "one,three" {
		t.Fatalf("got %q", got)
	}
}

// TestCloseWhileWriting: Close racing with writers never crashes; every
// Write returns nil or ErrClosed, and what returned nil is readable.
func TestCloseWhileWriting(t *testing.T) {
	for round := 0; round < 20; round++ {
		dir := t.TempDir()
		w, err := mmaplog.Open(dir, &mmaplog.Options{SegmentSize: 64 << 10, MaxBackups: -1})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		var ok int
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					_, err := w.Write([]byte("some record that fills segments quickly......................"))
					if errors.Is(err, mmaplog.ErrClosed) {
						return
					}
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					ok++
					mu.Unlock()
				}
			}()
		}
		time.Sleep(time.Duration(round%5) * time.Millisecond)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		if got := len(payloads(t, dir)); got != ok {
			t.Fatalf("round %d: %d writes returned nil, %d records read", round, ok, got)
		}
	}
}

func TestSecondWriterInProcess(t *testing.T) {
	_, dir := openTest(t, nil)
	if _, err := mmaplog.Open(dir, nil); !errors.Is(err, mmaplog.ErrLocked) || !strings.Contains(err.Error(), "process") {
		t.Fatalf("got %v", err)
	}
}

func TestFilesArePrivate(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "new", "log")
	w, err := mmaplog.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	st, _ := os.Stat(dir)
	if st.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %v", st.Mode())
	}
	waitNextPrepared(t, w, dir)
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		info, err := e.Info()
		if errors.Is(err, os.ErrNotExist) {
			continue // a temporary file of a preparation, renamed since
		}
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v", e.Name(), info.Mode())
		}
	}
}

// TestRetentionKeepsTheBound: writing many segments' worth, the directory
// never exceeds Options.DiskBound, sampled while writing.
func TestRetentionKeepsTheBound(t *testing.T) {
	o := &mmaplog.Options{SegmentSize: 64 << 10, MaxBackups: 3}
	w, dir := openTest(t, o)
	bound := o.DiskBound()
	rec := bytes.Repeat([]byte("r"), 200)
	var maxSeen int64
	for i := 0; i < 20000; i++ {
		if _, err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
		if i%97 == 0 {
			l, _ := rotate.List(dir)
			if u := l.DiskUsage(); u > maxSeen {
				maxSeen = u
			}
		}
	}
	if st := w.Stats(); st.Rotations < 50 || st.Removed < 40 {
		t.Fatalf("stats %+v", st)
	}
	if maxSeen > bound {
		t.Fatalf("directory reached %d bytes, bound %d", maxSeen, bound)
	}
	t.Logf("max %d of bound %d bytes", maxSeen, bound)
}

func TestCompressedSegmentsAreRead(t *testing.T) {
	w, dir := openTest(t, &mmaplog.Options{SegmentSize: 64 << 10, MaxBackups: -1, Compress: true})
	var want []string
	for i := 0; i < 3000; i++ {
		s := strings.Repeat("compressible ", i%20) + "end"
		want = append(want, s)
		w.Write([]byte(s))
	}
	w.Close()
	l, _ := rotate.List(dir)
	compressed := 0
	for _, s := range l.Segments {
		if s.Compressed {
			compressed++
		}
	}
	if compressed == 0 || compressed != len(l.Segments)-1 {
		t.Fatalf("%d of %d segments compressed", compressed, len(l.Segments))
	}
	if got := payloads(t, dir); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("read %d records back, wrote %d", len(got), len(want))
	}
	// The writer continues after a compressed last rolled segment.
	w2, err := mmaplog.Open(dir, &mmaplog.Options{SegmentSize: 64 << 10, MaxBackups: -1, Compress: true})
	if err != nil {
		t.Fatal(err)
	}
	seq, _ := w2.Append(0, []byte("more"))
	w2.Close()
	if seq != 3001 {
		t.Fatalf("next sequence %d", seq)
	}
}

func TestFlushPolicies(t *testing.T) {
	for _, p := range []flush.Policy{flush.None(), flush.Interval(time.Millisecond), flush.Bytes(16 << 10), flush.Write(), flush.Rotate()} {
		t.Run(p.String(), func(t *testing.T) {
			var bg []error
			var mu sync.Mutex
			w, dir := openTest(t, &mmaplog.Options{SegmentSize: 64 << 10, Flush: p, OnError: func(err error) { mu.Lock(); bg = append(bg, err); mu.Unlock() }})
			n := 2000
			if p.Mode == flush.ModeWrite {
				n = 300
			}
			for i := 0; i < n; i++ {
				if _, err := w.Write(bytes.Repeat([]byte{'a' + byte(i%26)}, 100)); err != nil {
					t.Fatal(err)
				}
			}
			time.Sleep(5 * time.Millisecond)
			if err := w.Sync(); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if len(bg) > 0 {
				t.Fatalf("background errors: %v", bg)
			}
			if got := len(payloads(t, dir)); got != n {
				t.Fatalf("read %d of %d", got, n)
			}
		})
	}
}

// TestFullDisk: on a filesystem that fills up, the Write that needs a new
// segment gets an error wrapping ENOSPC that names the file; nothing crashes
// (no SIGBUS), what was written stays readable, and writing resumes once
// there is room again.
func TestFullDisk(t *testing.T) {
	dir := testutil.Tmpfs(t, "1m")
	w, err := mmaplog.Open(dir, &mmaplog.Options{SegmentSize: 256 << 10, MaxBackups: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	rec := bytes.Repeat([]byte("d"), 1000)
	var werr error
	written := 0
	for i := 0; i < 10000 && werr == nil; i++ {
		if _, werr = w.Write(rec); werr == nil {
			written++
		}
	}
	if !errors.Is(werr, unix.ENOSPC) || !strings.Contains(werr.Error(), ".mlog") {
		t.Fatalf("got %v after %d records, want ENOSPC naming a segment", werr, written)
	}
	if written < 700 {
		t.Fatalf("only %d records fitted", written)
	}
	// Everything that was written is readable.
	if got := len(payloads(t, dir)); got != written {
		t.Fatalf("read %d of %d", got, written)
	}
	// Make room: remove the oldest segment; writing resumes.
	l, _ := rotate.List(dir)
	os.Remove(l.Segments[0].Path)
	deadline := time.Now().Add(hangLimit)
	for {
		if _, err := w.Write(rec); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("still failing after room was made: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestTruncatedUnderTheWriter: another process truncating the active segment
// makes Write return an error wrapping ErrFault instead of killing the
// process with SIGBUS.
func TestTruncatedUnderTheWriter(t *testing.T) {
	dir := t.TempDir()
	w, err := mmaplog.Open(dir, &mmaplog.Options{SegmentSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("before"))
	l, _ := rotate.List(dir)
	if err := os.Truncate(l.Segments[0].Path, 4096); err != nil {
		t.Fatal(err)
	}
	var werr error
	for i := 0; i < 10 && werr == nil; i++ {
		_, werr = w.Write(bytes.Repeat([]byte("x"), 3000))
	}
	if !errors.Is(werr, mmaplog.ErrFault) || !errors.Is(werr, fault.ErrFault) || !strings.Contains(werr.Error(), l.Segments[0].Path) {
		t.Fatalf("got %v, want ErrFault naming the file", werr)
	}
	w.Close() // may report the damage; it must not crash
}

// TestTruncatedUnderTheReader: a segment truncated while a reader has it
// mapped gives damage with ErrFault or a truncation report, not a crash.
func TestTruncatedUnderTheReader(t *testing.T) {
	dir := t.TempDir()
	w, err := mmaplog.Open(dir, &mmaplog.Options{SegmentSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2000; i++ {
		w.Write(bytes.Repeat([]byte("y"), 300))
	}
	w.Close()
	r, err := tail.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i := 0; i < 10; i++ {
		if !r.Next() {
			t.Fatal("no records")
		}
	}
	l, _ := rotate.List(dir)
	os.Truncate(l.Segments[0].Path, 8192)
	n := 10
	for r.Next() {
		n++
	}
	if len(r.Damage()) == 0 || !errors.Is(r.Damage()[0].Err, fault.ErrFault) {
		t.Fatalf("read %d, damage %v", n, r.Damage())
	}
	if n >= 2000 {
		t.Fatalf("read %d records of a truncated file", n)
	}
}

// TestVerifyLiveLog: a log verified while its writer has it open (the next
// segment prepared, header zero) is clean.
func TestVerifyLiveLog(t *testing.T) {
	w, dir := openTest(t, &mmaplog.Options{SegmentSize: 64 << 10})
	for i := 0; i < 1000; i++ {
		w.Write(bytes.Repeat([]byte("v"), 150))
	}
	waitNextPrepared(t, w, dir)
	rep, err := tail.Verify(dir)
	if err != nil || !rep.Clean() {
		t.Fatalf("%v %v", err, rep.Findings)
	}
	if rep.Records != 1000 {
		t.Fatalf("verified %d records", rep.Records)
	}
}

func TestStatsAndRecoveryAccessors(t *testing.T) {
	w, _ := openTest(t, &mmaplog.Options{SegmentSize: 64 << 10})
	for i := 0; i < 1000; i++ {
		w.Write(bytes.Repeat([]byte("s"), 200))
	}
	st := w.Stats()
	if st.NextSeq != 1001 || st.Rotations == 0 || st.Segment < 2 {
		t.Fatalf("%+v", st)
	}
	if w.LogID() == [16]byte{} {
		t.Fatal("zero log id")
	}
	_ = ring.Version
}
