package lazyfs

import (
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

const (
	sIFDIR  = syscall.S_IFDIR
	sIFREG  = syscall.S_IFREG
	sIFMT   = syscall.S_IFMT
	page    = 4096
	timeout = time.Second // the kernel is the only client: its caches are never stale
)

// FS is the filesystem. Every request runs under one mutex: simple, and
// fast enough for a test bed.
type FS struct {
	fuse.RawFileSystem // ENOSYS for what is not implemented

	mu     sync.Mutex
	frozen bool
	st     *store
	nodes  map[uint64]*node
	next   uint64 // next inode number
	events io.Writer

	stats Stats
}

// Stats counts requests.
type Stats struct {
	Writes, Fsyncs, DirFsyncs, Refused uint64
}

type node struct {
	ino    uint64
	mode   uint32
	mtime  int64
	nlink  uint32
	parent uint64 // the directory it was last linked into, and the name
	name   string

	// Files.
	data    []byte
	dirty   map[int64]struct{} // pages written since the last fsync
	minSize int64              // smallest size since the last fsync (-1: unchanged)

	// Directories.
	kids map[string]uint64
}

// Load returns the filesystem whose durable state is in the backing
// directory dir (created if missing): what survived the last power cut.
func Load(dir string) (*FS, error) {
	st, err := openStore(dir)
	if err != nil {
		return nil, err
	}
	f := &FS{RawFileSystem: fuse.NewDefaultRawFileSystem(), st: st, nodes: map[uint64]*node{}}
	reached := map[uint64]bool{}
	var walk func(ino, parent uint64, name string) error
	walk = func(ino, parent uint64, name string) error {
		if n := f.nodes[ino]; n != nil {
			n.nlink++ // a second durable name: a hard link
			return nil
		}
		reached[ino] = true
		im := st.meta.Inodes[ino]
		n := &node{ino: ino, mode: im.Mode, mtime: im.Mtime, nlink: 1, parent: parent, name: name, minSize: -1}
		if n.mode&sIFMT == 0 {
			n.mode = sIFREG | 0o600
		}
		f.nodes[ino] = n
		if n.mode&sIFMT == sIFDIR {
			n.kids = map[string]uint64{}
			for k, v := range st.meta.Dirs[ino] {
				n.kids[k] = v
				if err := walk(v, ino, k); err != nil {
					return err
				}
			}
			return nil
		}
		n.data, err = st.readData(ino)
		n.dirty = map[int64]struct{}{}
		return err
	}
	st.meta.Inodes[RootIno] = inodeMeta{Mode: sIFDIR | 0o755}
	if err := walk(RootIno, RootIno, ""); err != nil {
		return nil, err
	}
	if err := st.gc(reached); err != nil {
		return nil, err
	}
	f.next = st.meta.Next
	for ino := range f.nodes {
		f.next = max(f.next, ino+1)
	}
	return f, nil
}

// Mount mounts the filesystem on mnt (as root, without fusermount) and
// serves it in the background.
func (f *FS) Mount(mnt string) (*fuse.Server, error) {
	srv, err := fuse.NewServer(f, mnt, &fuse.MountOptions{
		DirectMountStrict:        true,
		FsName:                   "lazyfs",
		Name:                     "lazyfs",
		DisableXAttrs:            true,
		DisableReadDirPlus:       true,
		ExplicitDataCacheControl: true, // no invalidation of mapped pages behind the writer's back
		MaxBackground:            64,
	})
	if err != nil {
		return nil, err
	}
	go srv.Serve()
	if err := srv.WaitMount(); err != nil {
		srv.Unmount()
		return nil, err
	}
	return srv, nil
}

// SetEvents makes every later fsync of a file write a line "F NAME INO\n"
// to w before it is answered (and "D NAME INO\n" for a directory).
func (f *FS) SetEvents(w io.Writer) {
	f.mu.Lock()
	f.events = w
	f.mu.Unlock()
}

// Freeze cuts the power: it waits for the request in progress, and from
// then on refuses every request (EIO) and makes nothing durable.
func (f *FS) Freeze() {
	f.mu.Lock()
	f.frozen = true
	f.mu.Unlock()
}

// lock takes the mutex unless the filesystem is frozen.
func (f *FS) lock() bool {
	f.mu.Lock()
	if f.frozen {
		f.stats.Refused++
		f.mu.Unlock()
		return false
	}
	return true
}

func (f *FS) String() string { return "lazyfs" }

func (f *FS) attr(n *node, a *fuse.Attr) {
	*a = fuse.Attr{Ino: n.ino, Mode: n.mode, Nlink: n.nlink, Blksize: page}
	if n.mode&sIFMT == sIFDIR {
		a.Nlink = 2
		a.Size = page
	} else {
		a.Size = uint64(len(n.data))
		a.Blocks = (a.Size + 511) / 512
	}
	a.Mtime, a.Mtimensec = uint64(n.mtime/1e9), uint32(n.mtime%1e9)
	a.Ctime, a.Ctimensec = a.Mtime, a.Mtimensec
	a.Atime, a.Atimensec = a.Mtime, a.Mtimensec
}

func (f *FS) entry(n *node, out *fuse.EntryOut) {
	out.NodeId, out.Generation = n.ino, 1
	out.SetEntryTimeout(timeout)
	out.SetAttrTimeout(timeout)
	f.attr(n, &out.Attr)
}

func (f *FS) dir(ino uint64) (*node, fuse.Status) {
	n := f.nodes[ino]
	if n == nil {
		return nil, fuse.ENOENT
	}
	if n.kids == nil {
		return nil, fuse.ENOTDIR
	}
	return n, fuse.OK
}

func (f *FS) newNode(mode uint32, parent uint64, name string) *node {
	n := &node{ino: f.next, mode: mode, mtime: time.Now().UnixNano(), nlink: 1, parent: parent, name: name, minSize: -1}
	f.next++
	if mode&sIFMT == sIFDIR {
		n.kids = map[string]uint64{}
	} else {
		n.dirty = map[int64]struct{}{}
	}
	f.nodes[n.ino] = n
	return n
}

func (f *FS) Lookup(_ <-chan struct{}, h *fuse.InHeader, name string, out *fuse.EntryOut) fuse.Status {
	if !f.lock() {
		return fuse.EIO
	}
	defer f.mu.Unlock()
	d, st := f.dir(h.NodeId)
	if !st.Ok() {
		return st
	}
	ino, ok := d.kids[name]
	if !ok {
		return fuse.ENOENT
	}
	f.entry(f.nodes[ino], out)
	return fuse.OK
}

func (f *FS) GetAttr(_ <-chan struct{}, in *fuse.GetAttrIn, out *fuse.AttrOut) fuse.Status {
	if !f.lock() {
		return fuse.EIO
	}
	defer f.mu.Unlock()
	n := f.nodes[in.NodeId]
	if n == nil {
		return fuse.ENOENT
	}
	out.SetTimeout(timeout)
	f.attr(n, &out.Attr)
	return fuse.OK
}

func (f *FS) SetAttr(_ <-chan struct{}, in *fuse.SetAttrIn, out *fuse.AttrOut) fuse.Status {
	if !f.lock() {
		return fuse.EIO
	}
	defer f.mu.Unlock()
	n := f.nodes[in.NodeId]
	if n == nil {
		return fuse.ENOENT
	}
	if in.Valid&fuse.FATTR_SIZE != 0 {
		if n.kids != nil {
			return fuse.EISDIR
		}
		n.resize(int64(in.Size))
	}
	if in.Valid&fuse.FATTR_MODE != 0 {
		n.mode = n.mode&sIFMT | in.Mode&0o7777
	}
	switch {
	case in.Valid&fuse.FATTR_MTIME_NOW != 0:
		n.mtime = time.Now().UnixNano()
	case in.Valid&fuse.FATTR_MTIME != 0:
		n.mtime = int64(in.Mtime)*1e9 + int64(in.Mtimensec)
	}
	out.SetTimeout(timeout)
	f.attr(n, &out.Attr)
	return fuse.OK
}

// resize sets the size of a file, zeroing what it grows by.
func (n *node) resize(size int64) {
	old := int64(len(n.data))
	switch {
	case size < old:
		n.data = n.data[:size]
		if n.minSize < 0 || size < n.minSize {
			n.minSize = size
		}
	case size > old:
		n.data = append(n.data, make([]byte, size-old)...)
	}
}

func (f *FS) Mkdir(_ <-chan struct{}, in *fuse.MkdirIn, name string, out *fuse.EntryOut) fuse.Status {
	if !f.lock() {
		return fuse.EIO
	}
	defer f.mu.Unlock()
	d, st := f.dir(in.NodeId)
	if !st.Ok() {
		return st
	}
	if _, ok := d.kids[name]; ok {
		return fuse.Status(syscall.EEXIST)
	}
	n := f.newNode(sIFDIR|in.Mode&0o7777, d.ino, name)
	d.kids[name] = n.ino
	f.entry(n, out)
	return fuse.OK
}

func (f *FS) Create(_ <-chan struct{}, in *fuse.CreateIn, name string, out *fuse.CreateOut) fuse.Status {
	if !f.lock() {
		return fuse.EIO
	}
	defer f.mu.Unlock()
	d, st := f.dir(in.NodeId)
	if !st.Ok() {
		return st
	}
	var n *node
	if ino, ok := d.kids[name]; ok {
		if in.Flags&syscall.O_EXCL != 0 {
			return fuse.Status(syscall.EEXIST)
		}
		n = f.nodes[ino]
		if n.kids != nil {
			return fuse.EISDIR
		}
		if in.Flags&syscall.O_TRUNC != 0 {
			n.resize(0)
		}
	} else {
		n = f.newNode(sIFREG|in.Mode&0o7777, d.ino, name)
		d.kids[name] = n.ino
	}
	f.entry(n, &out.EntryOut)
	out.OpenFlags = fuse.FOPEN_KEEP_CACHE
	return fuse.OK
}

func (f *FS) Open(_ <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	if !f.lock() {
		return fuse.EIO
	}
	defer f.mu.Unlock()
	n := f.nodes[in.NodeId]
	if n == nil {
		return fuse.ENOENT
	}
	if n.kids != nil {
		return fuse.EISDIR
	}
	if in.Flags&syscall.O_TRUNC != 0 {
		n.resize(0)
	}
	out.OpenFlags = fuse.FOPEN_KEEP_CACHE
	return fuse.OK
}

func (f *FS) Read(_ <-chan struct{}, in *fuse.ReadIn, buf []byte) (fuse.ReadResult, fuse.Status) {
	if !f.lock() {
		return nil, fuse.EIO
	}
	defer f.mu.Unlock()
	n := f.nodes[in.NodeId]
	if n == nil {
		return nil, fuse.ENOENT
	}
	off := int64(in.Offset)
	if off >= int64(len(n.data)) {
		return fuse.ReadResultData(nil), fuse.OK
	}
	k := copy(buf[:min(int64(len(buf)), int64(in.Size))], n.data[off:])
	return fuse.ReadResultData(buf[:k]), fuse.OK
}

func (f *FS) Write(_ <-chan struct{}, in *fuse.WriteIn, data []byte) (uint32, fuse.Status) {
	if !f.lock() {
		return 0, fuse.EIO
	}
	defer f.mu.Unlock()
	n := f.nodes[in.NodeId]
	if n == nil {
		return 0, fuse.ENOENT
	}
	f.stats.Writes++
	off := int64(in.Offset)
	if end := off + int64(len(data)); end > int64(len(n.data)) {
		n.resize(end)
	}
	copy(n.data[off:], data)
	for p := off / page; p*page < off+int64(len(data)); p++ {
		n.dirty[p] = struct{}{}
	}
	return uint32(len(data)), fuse.OK
}

func (f *FS) Fallocate(_ <-chan struct{}, in *fuse.FallocateIn) fuse.Status {
	if !f.lock() {
		return fuse.EIO
	}
	defer f.mu.Unlock()
	n := f.nodes[in.NodeId]
	if n == nil {
		return fuse.ENOENT
	}
	off, end := int64(in.Offset), int64(in.Offset+in.Length)
	keep := in.Mode&unix.FALLOC_FL_KEEP_SIZE != 0
	switch in.Mode &^ unix.FALLOC_FL_KEEP_SIZE {
	case 0:
	case unix.FALLOC_FL_PUNCH_HOLE, unix.FALLOC_FL_ZERO_RANGE:
		if in.Mode&unix.FALLOC_FL_PUNCH_HOLE != 0 && !keep {
			return fuse.EINVAL
		}
		if zEnd := min(end, int64(len(n.data))); off < zEnd {
			clear(n.data[off:zEnd])
			for p := off / page; p*page < zEnd; p++ {
				n.dirty[p] = struct{}{}
			}
		}
	default:
		return fuse.Status(syscall.EOPNOTSUPP)
	}
	if !keep && end > int64(len(n.data)) {
		n.resize(end)
	}
	return fuse.OK
}

func (f *FS) Flush(_ <-chan struct{}, _ *fuse.FlushIn) fuse.Status { return fuse.OK } // close(2): not a sync
func (f *FS) Release(_ <-chan struct{}, _ *fuse.ReleaseIn)         {}
func (f *FS) ReleaseDir(_ *fuse.ReleaseIn)                         {}
func (f *FS) Access(_ <-chan struct{}, _ *fuse.AccessIn) fuse.Status {
	return fuse.OK
}

func (f *FS) OpenDir(_ <-chan struct{}, in *fuse.OpenIn, _ *fuse.OpenOut) fuse.Status {
	if !f.lock() {
		return fuse.EIO
	}
	defer f.mu.Unlock()
	_, st := f.dir(in.NodeId)
	return st
}

func (f *FS) ReadDir(_ <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	if !f.lock() {
		return fuse.EIO
	}
	defer f.mu.Unlock()
	d, st := f.dir(in.NodeId)
	if !st.Ok() {
		return st
	}
	ents := []fuse.DirEntry{{Name: ".", Mode: sIFDIR, Ino: d.ino}, {Name: "..", Mode: sIFDIR, Ino: d.parent}}
	names := make([]string, 0, len(d.kids))
	for k := range d.kids {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		ents = append(ents, fuse.DirEntry{Name: k, Mode: f.nodes[d.kids[k]].mode, Ino: d.kids[k]})
	}
	for i := int(in.Offset); i < len(ents); i++ {
		e := ents[i]
		e.Off = uint64(i + 1)
		if !out.AddDirEntry(e) {
			break
		}
	}
	return fuse.OK
}

// unlink removes the entry name of d, which must be (or not be) a
// directory.
func (f *FS) unlink(parent uint64, name string, wantDir bool) fuse.Status {
	d, st := f.dir(parent)
	if !st.Ok() {
		return st
	}
	ino, ok := d.kids[name]
	if !ok {
		return fuse.ENOENT
	}
	n := f.nodes[ino]
	switch {
	case wantDir && n.kids == nil:
		return fuse.ENOTDIR
	case !wantDir && n.kids != nil:
		return fuse.EISDIR
	case wantDir && len(n.kids) > 0:
		return fuse.Status(syscall.ENOTEMPTY)
	}
	delete(d.kids, name)
	n.nlink--
	return fuse.OK
}

func (f *FS) Unlink(_ <-chan struct{}, h *fuse.InHeader, name string) fuse.Status {
	if !f.lock() {
		return fuse.EIO
	}
	defer f.mu.Unlock()
	return f.unlink(h.NodeId, name, false)
}

func (f *FS) Rmdir(_ <-chan struct{}, h *fuse.InHeader, name string) fuse.Status {
	if !f.lock() {
		return fuse.EIO
	}
	defer f.mu.Unlock()
	return f.unlink(h.NodeId, name, true)
}

func (f *FS) Rename(_ <-chan struct{}, in *fuse.RenameIn, oldName, newName string) fuse.Status {
	if !f.lock() {
		return fuse.EIO
	}
	defer f.mu.Unlock()
	src, st := f.dir(in.NodeId)
	if !st.Ok() {
		return st
	}
	dst, st := f.dir(in.Newdir)
	if !st.Ok() {
		return st
	}
	ino, ok := src.kids[oldName]
	if !ok {
		return fuse.ENOENT
	}
	if in.Flags&^unix.RENAME_NOREPLACE != 0 {
		return fuse.EINVAL // RENAME_EXCHANGE, RENAME_WHITEOUT: not needed
	}
	n := f.nodes[ino]
	if old, ok := dst.kids[newName]; ok {
		if old == ino {
			return fuse.OK
		}
		if in.Flags&unix.RENAME_NOREPLACE != 0 {
			return fuse.Status(syscall.EEXIST)
		}
		if st := f.unlink(dst.ino, newName, f.nodes[old].kids != nil); !st.Ok() {
			return st
		}
		if (f.nodes[old].kids != nil) != (n.kids != nil) {
			return fuse.EINVAL
		}
	}
	delete(src.kids, oldName)
	dst.kids[newName] = ino
	n.parent, n.name = dst.ino, newName
	return fuse.OK
}

func (f *FS) StatFs(_ <-chan struct{}, _ *fuse.InHeader, out *fuse.StatfsOut) fuse.Status {
	*out = fuse.StatfsOut{Blocks: 1 << 24, Bfree: 1 << 23, Bavail: 1 << 23, Files: 1 << 20, Ffree: 1 << 19, Bsize: page, NameLen: 255, Frsize: page}
	return fuse.OK
}

// Fsync makes a file durable: its data, size and mode, as the daemon has
// them now.
func (f *FS) Fsync(_ <-chan struct{}, in *fuse.FsyncIn) fuse.Status {
	if !f.lock() {
		return fuse.EIO
	}
	defer f.mu.Unlock()
	n := f.nodes[in.NodeId]
	if n == nil {
		return fuse.ENOENT
	}
	if n.kids != nil {
		return f.syncDir(n)
	}
	f.stats.Fsyncs++
	if err := f.syncFile(n); err != nil {
		fmt.Fprintf(os.Stderr, "lazyfs: fsync of inode %d: %v\n", n.ino, err)
		return fuse.EIO
	}
	f.event('F', n)
	return fuse.OK
}

func (f *FS) syncFile(n *node) error {
	file, err := f.st.file(n.ino)
	if err != nil {
		return err
	}
	if n.minSize >= 0 {
		// Shrunk (and maybe grown again) since the last fsync: what was
		// cut off must read as zeros, not as what the store had there.
		if err := file.Truncate(n.minSize); err != nil {
			return err
		}
	}
	if err := file.Truncate(int64(len(n.data))); err != nil {
		return err
	}
	for p := range n.dirty {
		from := p * page
		if from >= int64(len(n.data)) {
			continue
		}
		if _, err := file.WriteAt(n.data[from:min(from+page, int64(len(n.data)))], from); err != nil {
			return err
		}
	}
	clear(n.dirty)
	n.minSize = -1
	im := inodeMeta{Mode: n.mode, Mtime: n.mtime}
	if f.st.meta.Inodes[n.ino] != im {
		f.st.meta.Inodes[n.ino] = im
		return f.st.saveMeta()
	}
	return nil
}

// FsyncDir makes a directory's entries durable: a snapshot of its current
// ones.
func (f *FS) FsyncDir(_ <-chan struct{}, in *fuse.FsyncIn) fuse.Status {
	if !f.lock() {
		return fuse.EIO
	}
	defer f.mu.Unlock()
	d, st := f.dir(in.NodeId)
	if !st.Ok() {
		return st
	}
	return f.syncDir(d)
}

func (f *FS) syncDir(d *node) fuse.Status {
	f.stats.DirFsyncs++
	ents := make(map[string]uint64, len(d.kids))
	for k, ino := range d.kids {
		ents[k] = ino
		kid := f.nodes[ino]
		if _, ok := f.st.meta.Inodes[ino]; !ok {
			f.st.meta.Inodes[ino] = inodeMeta{Mode: kid.mode, Mtime: kid.mtime}
		}
		if kid.kids != nil && f.st.meta.Dirs[ino] == nil {
			f.st.meta.Dirs[ino] = map[string]uint64{} // a new directory: empty until it is fsynced
		}
	}
	f.st.meta.Dirs[d.ino] = ents
	f.st.meta.Next = max(f.st.meta.Next, f.next)
	if err := f.st.saveMeta(); err != nil {
		fmt.Fprintf(os.Stderr, "lazyfs: fsync of directory %d: %v\n", d.ino, err)
		return fuse.EIO
	}
	f.event('D', d)
	return fuse.OK
}

func (f *FS) event(kind byte, n *node) {
	if f.events != nil {
		fmt.Fprintf(f.events, "%c %s %d\n", kind, n.name, n.ino)
	}
}

// Counts returns the request counters.
func (f *FS) Counts() Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stats
}

// Close releases the store's open files.
func (f *FS) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.st.close()
}
