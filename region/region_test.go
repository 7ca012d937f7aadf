//go:build linux

package region_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"github.com/mmaplog/mmaplog/internal/fileutil"
	"github.com/mmaplog/mmaplog/internal/shmtest"
	"github.com/mmaplog/mmaplog/internal/testutil"
	"github.com/mmaplog/mmaplog/region"
)

var testLayout = region.Layout{ID: 0x54534554, Version: 3, Name: "test layout"}

func TestMain(m *testing.M) {
	if os.Getenv("MMAPLOG_REGION_CHILD") == "guard" {
		guardChild()
		return
	}
	testutil.VerifyTestMain(m)
}

// backends returns one fresh address per backend, cleaned up by the test.
func backends(t *testing.T) map[string]string {
	return map[string]string{
		"file": "file:" + filepath.Join(t.TempDir(), "region"),
		"shm":  "shm:" + shmtest.ShmName(t),
		"sysv": fmt.Sprintf("sysv:%#x", shmtest.Key(t)),
	}
}

// mode returns the permission bits of the object at url.
func mode(t *testing.T, url string) os.FileMode {
	t.Helper()
	a, err := region.Parse(url)
	if err != nil {
		t.Fatal(err)
	}
	switch a.Kind {
	case region.Sysv:
		id, err := fileutil.SysvLookup(a.Key)
		if err != nil {
			t.Fatal(err)
		}
		st, err := fileutil.SysvStat(id)
		if err != nil {
			t.Fatal(err)
		}
		return st.Mode
	case region.Shm:
		st, err := os.Stat("/dev/shm/" + a.Name)
		if err != nil {
			t.Fatal(err)
		}
		return st.Mode().Perm()
	default:
		st, err := os.Stat(a.Path)
		if err != nil {
			t.Fatal(err)
		}
		return st.Mode().Perm()
	}
}

// TestLifecycle: for each backend, create, publish, attach a second
// mapping, see each other's stores, detach, remove; the object is then gone
// and attaching it fails with os.ErrNotExist.
func TestLifecycle(t *testing.T) {
	for name, url := range backends(t) {
		t.Run(name, func(t *testing.T) {
			r, err := region.Create(url, testLayout, 10000, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !r.Guarded() || r.Size() != region.HeaderSize+10000 || len(r.Data()) != 10000 {
				t.Fatalf("guarded %v, size %d, data %d", r.Guarded(), r.Size(), len(r.Data()))
			}
			if got := mode(t, url); got != 0o600 {
				t.Errorf("new region has mode %v, want 0600", got)
			}
			copy(r.Data(), "hello")
			// Unpublished: Open waits, then says so.
			if _, err := region.Open(url, testLayout, &region.Options{Wait: -1}); !errors.Is(err, region.ErrNotReady) {
				t.Fatalf("open before publish: %v, want ErrNotReady", err)
			}
			if err := r.Publish(); err != nil {
				t.Fatal(err)
			}
			r2, err := region.Open(url, testLayout, nil)
			if err != nil {
				t.Fatal(err)
			}
			if string(r2.Data()[:5]) != "hello" {
				t.Fatalf("second mapping reads %q", r2.Data()[:5])
			}
			if info := r2.Info(); info.Layout.ID != testLayout.ID || info.Size != r.Size() || info.CreatorPID != os.Getpid() {
				t.Errorf("info %+v", info)
			}
			r2.Data()[9999] = 42
			if r.Data()[9999] != 42 {
				t.Fatal("a store through the second mapping is not visible in the first")
			}
			if _, err := region.Create(url, testLayout, 100, nil); !errors.Is(err, os.ErrExist) {
				t.Fatalf("create over an existing region: %v, want os.ErrExist", err)
			}
			if err := r2.Detach(); err != nil {
				t.Fatal(err)
			}
			if err := r2.Detach(); err != nil { // idempotent
				t.Fatal(err)
			}
			if ok, err := region.Exists(url); !ok || err != nil {
				t.Fatalf("after detach: exists %v, %v", ok, err)
			}
			if err := r.Remove(); err != nil {
				t.Fatal(err)
			}
			if ok, err := region.Exists(url); ok || err != nil {
				t.Fatalf("after remove: exists %v, %v", ok, err)
			}
			_, err = region.Open(url, testLayout, nil)
			if !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("open after remove: %v, want os.ErrNotExist", err)
			}
			if !strings.Contains(err.Error(), "is the producer running") {
				t.Errorf("the error gives no advice: %v", err)
			}
		})
	}
}

// TestSysvDestroyedOnLastDetach: a removed SysV segment lives on while
// attached, then goes.
func TestSysvDestroyedOnLastDetach(t *testing.T) {
	key := shmtest.Key(t)
	url := fmt.Sprintf("sysv:%d", key)
	r, err := region.Create(url, testLayout, 4096, nil)
	if err != nil {
		t.Fatal(err)
	}
	id := r.SysvID()
	r.Publish()
	if err := region.Remove(url); err != nil {
		t.Fatal(err)
	}
	st, err := fileutil.SysvStat(id)
	if err != nil || !st.Removed || st.Attach != 1 {
		t.Fatalf("after IPC_RMID while attached: %+v, %v", st, err)
	}
	r.Data()[0] = 1 // still usable
	r.Detach()
	if _, err := fileutil.SysvStat(id); err == nil {
		t.Fatal("the segment survived its last detach")
	}
}

// TestPermissions: Options.Perm is applied exactly, whatever the umask.
func TestPermissions(t *testing.T) {
	for name, url := range backends(t) {
		t.Run(name, func(t *testing.T) {
			r, err := region.Create(url, testLayout, 100, &region.Options{Perm: 0o640})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Remove()
			if got := mode(t, url); got != 0o640 {
				t.Errorf("mode %v, want 0640", got)
			}
		})
	}
}

// TestNoSymlinkFollowing: Create never writes through a planted link, and
// Open refuses one.
func TestNoSymlinkFollowing(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "precious")
	os.WriteFile(target, []byte("keep me"), 0o600)
	link := filepath.Join(dir, "region")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if _, err := region.Create("file:"+link, testLayout, 100, nil); !errors.Is(err, os.ErrExist) {
		t.Fatalf("create at a symlink: %v, want os.ErrExist", err)
	}
	if _, err := region.Open("file:"+link, testLayout, nil); err == nil {
		t.Fatal("open through a symlink succeeded")
	}
	if b, _ := os.ReadFile(target); string(b) != "keep me" {
		t.Fatalf("the link's target was changed: %q", b)
	}
}

func TestAnon(t *testing.T) {
	r, err := region.Create("anon:", testLayout, 100, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Data()[99] = 7
	if _, err := region.Open("anon:", testLayout, nil); err == nil {
		t.Fatal("attached an anonymous region by name")
	}
	if err := r.Remove(); err != nil {
		t.Fatal(err)
	}
}

func TestParse(t *testing.T) {
	good := map[string]region.Addr{
		"file:/a/b":      {Kind: region.File, Path: "/a/b"},
		"file:///a/b":    {Kind: region.File, Path: "/a/b"},
		"shm:/x":         {Kind: region.Shm, Name: "x"},
		"sysv:0x3eeff00": {Kind: region.Sysv, Key: 0x3eeff00},
		"sysv:12":        {Kind: region.Sysv, Key: 12},
		"anon:":          {Kind: region.Anon},
	}
	for in, want := range good {
		got, err := region.Parse(in)
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "file:", "shm:", "shm:a/b", "shm:..", "sysv:0", "sysv:x", "sysv:0x1ffffffff", "tcp:1", "noscheme"} {
		if _, err := region.Parse(in); err == nil {
			t.Errorf("Parse(%q) succeeded", in)
		}
	}
}

// TestBadHeaders: each kind of damage is reported with its sentinel, the
// offset and advice, never a crash.
func TestBadHeaders(t *testing.T) {
	le := binary.LittleEndian
	reCRC := func(b []byte) {
		le.PutUint32(b[60:], crc32.Checksum(b[8:60], crc32.MakeTable(crc32.Castagnoli)))
	}
	cases := []struct {
		name   string
		damage func(path string, b []byte) []byte // returns the new file contents
		want   error
		layout region.Layout
	}{
		{"wrong magic", func(_ string, b []byte) []byte { copy(b, "NOTMINE!"); return b }, region.ErrBadMagic, testLayout},
		{"zero magic", func(_ string, b []byte) []byte { clear(b[:8]); return b }, region.ErrNotReady, testLayout},
		{"checksum", func(_ string, b []byte) []byte { b[33] ^= 1; return b }, region.ErrChecksum, testLayout},
		{"header version", func(_ string, b []byte) []byte { le.PutUint16(b[8:], 2); reCRC(b); return b }, region.ErrVersion, testLayout},
		{"layout version", func(_ string, b []byte) []byte { return b }, region.ErrVersion, region.Layout{ID: testLayout.ID, Version: 4, Name: "test layout"}},
		{"other layout", func(_ string, b []byte) []byte { return b }, region.ErrLayout, region.Layout{ID: 1, Version: 3, Name: "other"}},
		{"grown", func(_ string, b []byte) []byte { return append(b, make([]byte, 4096)...) }, region.ErrSize, testLayout},
		{"truncated", func(_ string, b []byte) []byte { return b[:1000] }, region.ErrTooSmall, testLayout},
		{"shorter than a header", func(_ string, b []byte) []byte { return b[:10] }, region.ErrTooSmall, testLayout},
		{"empty", func(_ string, b []byte) []byte { return nil }, region.ErrNotReady, testLayout},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "r")
			r, err := region.Create("file:"+path, testLayout, 8000, nil)
			if err != nil {
				t.Fatal(err)
			}
			r.Publish()
			r.Detach()
			b, _ := os.ReadFile(path)
			if err := os.WriteFile(path, c.damage(path, b), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err = region.Open("file:"+path, c.layout, &region.Options{Wait: -1})
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			var re *region.Error
			if !errors.As(err, &re) || re.Addr != "file:"+path || re.Hint == "" {
				t.Fatalf("error %#v does not locate the region and give advice", err)
			}
			t.Log(err)
		})
	}
}

// TestSysvWrongSize: a SysV segment made by someone else, smaller than its
// header claims, or of garbage.
func TestSysvForeign(t *testing.T) {
	key := shmtest.Key(t)
	url := fmt.Sprintf("sysv:%d", key)
	raw, err := region.CreateRaw(url, 32, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Remove()
	if _, err := region.Open(url, testLayout, nil); !errors.Is(err, region.ErrTooSmall) {
		t.Fatalf("32-byte segment: %v, want ErrTooSmall", err)
	}
	key2 := shmtest.Key(t)
	url2 := fmt.Sprintf("sysv:%d", key2)
	r, err := region.Create(url2, testLayout, 100, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Remove()
	// A header copied into a larger segment: the size disagrees.
	key3 := shmtest.Key(t)
	url3 := fmt.Sprintf("sysv:%d", key3)
	big, err := region.CreateRaw(url3, 8192, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer big.Remove()
	r.Publish()
	copy(big.Bytes(), r.Bytes()[:region.HeaderSize])
	if _, err := region.Open(url3, testLayout, nil); !errors.Is(err, region.ErrSize) {
		t.Fatalf("header of a 164-byte region in an 8192-byte segment: %v, want ErrSize", err)
	}
}

// guardChild attaches the region named by the environment and touches the
// byte just before or just after it, reporting the fault address. It exits
// 3 after a fault, 0 if the access went through (which the parent fails).
func guardChild() {
	url, side := os.Getenv("MMAPLOG_REGION_URL"), os.Getenv("MMAPLOG_REGION_SIDE")
	r, err := region.OpenRaw(url, nil)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	b := r.Bytes()
	start := unsafe.Pointer(unsafe.SliceData(b))
	p := unsafe.Add(start, len(b)) // first byte after the region
	if side == "before" {
		p = unsafe.Add(start, -1)
	}
	fmt.Printf("target %d\n", uintptr(p))
	defer func() {
		v := recover()
		if fa, ok := v.(interface{ Addr() uintptr }); ok {
			fmt.Printf("fault %d\n", fa.Addr())
			os.Exit(3)
		}
		fmt.Println("no fault:", v)
		os.Exit(0)
	}()
	debug.SetPanicOnFault(true)
	*(*byte)(p) = 0xEE
}

// TestGuardPages: a child process writing one byte past either end of a
// guarded region faults at exactly that address; the region is untouched.
func TestGuardPages(t *testing.T) {
	url := "shm:" + shmtest.ShmName(t)
	r, err := region.CreateRaw(url, 2*os.Getpagesize(), nil) // whole pages: the next byte is the guard
	if err != nil {
		t.Fatal(err)
	}
	defer r.Remove()
	for i := range r.Bytes() {
		r.Bytes()[i] = byte(i)
	}
	for _, side := range []string{"before", "after"} {
		t.Run(side, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "MMAPLOG_REGION_CHILD=guard", "MMAPLOG_REGION_URL="+url, "MMAPLOG_REGION_SIDE="+side)
			out, err := cmd.Output()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 3 {
				t.Fatalf("child: %v, output %q; want exit 3 after a fault", err, out)
			}
			var target, fault uint64
			for _, line := range strings.Split(string(out), "\n") {
				f := strings.Fields(line)
				if len(f) == 2 && f[0] == "target" {
					target, _ = strconv.ParseUint(f[1], 10, 64)
				}
				if len(f) == 2 && f[0] == "fault" {
					fault, _ = strconv.ParseUint(f[1], 10, 64)
				}
			}
			if target == 0 || fault != target {
				t.Fatalf("fault at %#x, wanted at the guard byte %#x", fault, target)
			}
			for i, c := range r.Bytes() {
				if c != byte(i) {
					t.Fatalf("byte %d of the region changed to %#x", i, c)
				}
			}
		})
	}
}

// TestProtect: a layout's own guard page inside the object.
func TestProtect(t *testing.T) {
	pg := os.Getpagesize()
	r, err := region.CreateRaw("anon:", 3*pg, &region.Options{NoGuard: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Remove()
	if err := r.Protect(pg, pg); err != nil {
		t.Fatal(err)
	}
	if err := r.Protect(1, pg); err == nil {
		t.Fatal("protected a range that is not whole pages")
	}
	faulted := func(i int) (f bool) {
		defer func() { f = recover() != nil }()
		defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
		r.Bytes()[i] = 1
		return false
	}
	if faulted(pg-1) || !faulted(pg) || !faulted(2*pg-1) || faulted(2*pg) {
		t.Fatal("Protect did not protect exactly the page asked for")
	}
}
