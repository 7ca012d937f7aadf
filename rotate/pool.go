package rotate

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/mmaplog/mmaplog/internal/fault"
	"github.com/mmaplog/mmaplog/internal/fileutil"
	"github.com/mmaplog/mmaplog/ring"
)

// freeExt marks a segment file held by a Pool (with tmpExt after it, so that
// every lister takes it for a temporary file and recovery removes what a
// crash left).
const freeExt = ".free"

// Pool holds rolled segment files taken for reuse, so that the preparer
// makes new segments from them instead of new files: clearing the pages a
// file already has in the page cache costs a few milliseconds, where a new
// file costs the allocation of every page (tens to hundreds of
// milliseconds on a busy machine, and the CPU the writer needs).
//
// Retention hands a segment it would remove to Put; the preparer takes one
// in Create. A file is taken only through Reclaim, so never while a live
// reader has it open. Pooled files stay on disk: the writer counts Bytes
// against MaxTotalSize.
type Pool struct {
	dir  string
	size int64 // only files of this size are pooled
	max  int   // at most this many files

	mu        sync.Mutex
	files     []pooled
	keepMax   int64             // bytes of mappings Keep may hold
	kept      map[uint64][]byte // mappings of rolled segments, by number, see Keep
	keptBytes int64             // mappings held: in kept, and of pooled files
}

type pooled struct {
	f    *os.File // locked exclusively
	path string   // its pool name
	data []byte   // its mapping, kept from its earlier life (Keep); nil: none
}

// NewPool returns a pool for segments of size bytes in dir, holding at most
// max files (max <= 0: a pool that takes nothing).
func NewPool(dir string, size int64, max int) *Pool {
	return &Pool{dir: dir, size: size, max: max}
}

// Put takes the finished rolled plain segment fi away from its name: into
// the pool if there is room, the file has the pool's size and no live
// reader has it open, otherwise it removes it as retention would. The
// mapping Keep holds for the segment, if any, goes into the pool with the
// file, or is unmapped. It reports whether the file was pooled. An error
// means the file may still be under its name.
func (p *Pool) Put(fi FileInfo) (ok bool, err error) {
	var data []byte
	if p != nil && !fi.Compressed {
		data = p.takeKept(fi.Num)
		defer func() {
			if !ok && data != nil {
				p.mu.Lock()
				p.unmapKept(data)
				p.mu.Unlock()
			}
		}()
	}
	if p == nil || fi.Compressed || fi.Size != p.size || !p.room() {
		return false, removeFile(fi.Path)
	}
	tmp := filepath.Join(filepath.Dir(fi.Path), SegmentName(fi.Num)+freeExt+tmpExt)
	if _, err := os.Lstat(tmp); err == nil {
		os.Remove(tmp) // a leftover of an earlier life of this number
	}
	f, err := Reclaim(fi, tmp)
	if errors.Is(err, ErrInUse) {
		return false, nil // removed: a reader reads on from its mapping
	}
	if errors.Is(err, fs.ErrNotExist) && !fileExists(fi.Path) {
		return false, nil // removed meanwhile (a compression, MaxAge)
	}
	if err != nil {
		return false, err
	}
	if st, err := f.Stat(); err != nil || st.Size() != p.size {
		f.Close()
		return false, removeFile(tmp)
	}
	p.mu.Lock()
	if len(p.files) >= p.max {
		p.mu.Unlock()
		f.Close()
		return false, removeFile(tmp)
	}
	p.files = append(p.files, pooled{f: f, path: tmp, data: data})
	p.mu.Unlock()
	return true, nil
}

// KeepMappings lets Keep hold up to maxBytes of mappings (0, the default:
// none).
func (p *Pool) KeepMappings(maxBytes int64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.keepMax = maxBytes
	p.mu.Unlock()
}

// Keep takes over data, the read-write mapping of the whole of rolled
// segment num, instead of the caller unmapping it, if it is the pool's
// size and within the limit of KeepMappings (which counts the mappings of
// pooled files too); it reports whether it did.
// When retention later puts the segment into the pool, the file is reused
// through this mapping: no mapping to make and pre-fault, no unmapping now.
// Put (pooled or not) or Close unmaps it, and with it any kept mapping of
// an older segment. The caller must not touch data after Keep returned
// true.
func (p *Pool) Keep(num uint64, data []byte) bool {
	if p == nil || int64(len(data)) != p.size {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.keptBytes+p.size > p.keepMax || p.kept[num] != nil {
		return false
	}
	if p.kept == nil {
		p.kept = make(map[uint64][]byte)
	}
	p.kept[num] = data
	p.keptBytes += p.size
	return true
}

// takeKept returns the mapping kept for segment num, if any, and unmaps
// those of older segments: retention takes segments oldest first, so no
// Put will ask for them.
func (p *Pool) takeKept(num uint64) []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	data := p.kept[num]
	for n, d := range p.kept {
		if n <= num {
			if n != num {
				p.unmapKept(d)
			}
			delete(p.kept, n)
		}
	}
	return data // still counted: it goes with the file into the pool, or Put unmaps it
}

// unmapKept unmaps a mapping the pool held; p.mu is held.
func (p *Pool) unmapKept(d []byte) {
	fileutil.Unmap(d)
	p.keptBytes -= p.size
}

func (p *Pool) room() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.files) < p.max
}

// Len returns the number of files in the pool.
func (p *Pool) Len() int {
	if p == nil {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.files)
}

// Bytes returns the bytes the pooled files take on disk.
func (p *Pool) Bytes() int64 {
	if p == nil {
		return 0
	}
	return int64(p.Len()) * p.size
}

// take removes a file from the pool, or returns ok false if it is empty.
func (p *Pool) take() (pooled, bool) {
	if p == nil {
		return pooled{}, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.files) == 0 {
		return pooled{}, false
	}
	f := p.files[0]
	p.files = p.files[1:]
	if f.data != nil {
		p.keptBytes -= p.size // the caller's now
	}
	return f, true
}

// closePooled closes a pooled file that will not be reused and unmaps its
// kept mapping.
func closePooled(pf pooled) {
	if pf.data != nil {
		fileutil.Unmap(pf.data)
	}
	pf.f.Close()
}

// Close removes the pooled files (the caller fsyncs the directory).
func (p *Pool) Close() error {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	files := p.files
	p.files = nil
	for _, d := range p.kept {
		fileutil.Unmap(d)
	}
	p.kept, p.keptBytes = nil, 0
	p.mu.Unlock()
	var errs []error
	for _, f := range files {
		closePooled(f)
		errs = append(errs, removeFile(f.path))
	}
	return errors.Join(errs...)
}

func removeFile(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func fileExists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// reuse makes segment num at path from the pooled file pf: it renames the
// file to tmp (the segment's temporary name), maps it (pre-faulted if
// prefault) unless its mapping was kept (Keep), and clears it through the
// mapping, unlocks it and renames it into place. The pages are in the page
// cache already: mapping them and clearing them in memory costs about a
// third less than writing zeros over them with pwrite and then pre-faulting
// the mapping. A reader that opened the file under its old name and locks
// it only now finds that name gone (openPlain), so it never reads the new
// segment as the old one; nobody can open tmp. Stale bytes of the file's
// earlier life are zero before the file gets a segment name.
//
// On disk, two steps are made durable before the file gets its new name,
// so that a power loss at any point leaves nothing that passes for a
// segment it is not: the directory is fsynced once the old segment name is
// gone (before the contents change: otherwise the old name could come back
// over a cleared file), and the first page, cleared, is msynced (MS_SYNC)
// before the rename: the file's new name never refers, on disk, to its old
// header. The rest of the cleared pages reach the disk by writeback, as
// the records written over them do; what is left of the earlier life on
// disk after a power loss are records of an older segment, whose sequence
// numbers are below the new segment's first, which readers and recovery
// never deliver (docs/FORMAT.md, "Readers hold what they read").
func reuse(pf pooled, path, tmp string, size int64, perm os.FileMode, prefault bool) (*os.File, []byte, error) {
	f := pf.f
	data := pf.data
	fail := func(err error) (*os.File, []byte, error) {
		if data != nil {
			fileutil.Unmap(data)
		}
		f.Close()
		os.Remove(tmp)
		os.Remove(pf.path)
		return nil, nil, err
	}
	if _, err := os.Lstat(tmp); err == nil {
		os.Remove(tmp) // a leftover of a crash during an earlier preparation
	}
	if err := fileutil.RenameNoReplace(pf.path, tmp); err != nil {
		return fail(fmt.Errorf("reuse segment file for %s: %w", path, err))
	}
	if err := fileutil.SyncDir(filepath.Dir(tmp)); err != nil {
		return fail(fmt.Errorf("reuse segment file for %s: %w", path, err))
	}
	if st, err := f.Stat(); err != nil || st.Size() != size {
		return fail(fmt.Errorf("reuse segment file %s: it is no longer %d bytes (another process changed it)", tmp, size))
	}
	if data == nil {
		m, err := mapWritable(f, size, prefault)
		if err != nil {
			return fail(fmt.Errorf("reuse segment file: %w", err))
		}
		data = m
	}
	// Another process may truncate the file: a fault is an error, not a crash.
	if err := fault.Guard(tmp, func() error { clear(data); return nil }); err != nil {
		return fail(fmt.Errorf("clear reused segment file: %w", err))
	}
	if err := fileutil.Msync(data, 0, ring.HeaderSize, true); err != nil {
		return fail(fmt.Errorf("flush the cleared header of reused segment file %s: %w", tmp, err))
	}
	if err := f.Chmod(perm); err != nil {
		return fail(fmt.Errorf("reuse segment file for %s: %w", path, err))
	}
	if err := fileutil.Unlock(f); err != nil {
		return fail(fmt.Errorf("reuse segment file for %s: %w", path, err))
	}
	if err := fileutil.RenameNoReplace(tmp, path); err != nil {
		return fail(fmt.Errorf("create segment: %w", err))
	}
	return f, data, nil
}
