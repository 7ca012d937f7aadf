package tail_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/mmaplog/mmaplog/internal/fileutil"
)

// The baseline of BenchmarkFollowLatency without a log: what handing a
// time stamp from one process to another through a shared page costs on
// this machine, with the same waiting as Reader.Wait (spin, yield, then a
// futex sleep that the writer ends) or with a reader that never sleeps. The
// difference between these and BenchmarkFollowLatency is what the log
// (framing, CRC, segment walk) adds; what they show themselves is the
// machine's: the scheduler waking a process, and the hypervisor
// preempting either one.

// wakePage is the layout of the shared page: the number of stamps
// published, the wake word with the reader's flag, and the latest stamps
// (stamp i at stamps[i%len(stamps)]), so that a reader that wakes to
// several new ones times each.
type wakePage struct {
	seq     uint32
	wake    uint32
	waiting uint32
	_       uint32
	stamps  [500]int64
}

const wakerEnv = "MMAPLOG_BENCH_WAKER"

func mapWakePage(tb testing.TB, path string, create bool) (*wakePage, func()) {
	flag := os.O_RDWR
	if create {
		flag |= os.O_CREATE | os.O_EXCL
	}
	f, err := os.OpenFile(path, flag, 0o600)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if create {
		if err := f.Truncate(4096); err != nil {
			tb.Fatal(err)
		}
	}
	b, err := fileutil.Map(f, 4096, true)
	if err != nil {
		tb.Fatal(err)
	}
	return (*wakePage)(unsafe.Pointer(&b[0])), func() { fileutil.Unmap(b) }
}

// wakerChild is the writer process: N stamps, one every GAP, each followed
// by a wake-up when the reader sleeps (as the log writer does after a
// record).
func wakerChild(path string) int {
	n, _ := strconv.Atoi(os.Getenv("N"))
	gap, _ := time.ParseDuration(os.Getenv("GAP"))
	p, unmap := mapWakePage(failTB{}, path, false)
	defer unmap()
	next := time.Now()
	for i := 0; i < n; i++ {
		next = next.Add(gap)
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
		atomic.StoreInt64(&p.stamps[i%len(p.stamps)], time.Now().UnixNano())
		atomic.StoreUint32(&p.seq, uint32(i+1))
		if atomic.LoadUint32(&p.waiting) != 0 {
			atomic.AddUint32(&p.wake, 1)
			fileutil.FutexWake(&p.wake, 1<<30)
		}
	}
	return 0
}

// failTB lets the child process use mapWakePage: it exits on failure.
type failTB struct{ testing.TB }

func (failTB) Fatal(args ...any) { fmt.Fprintln(os.Stderr, args...); os.Exit(1) }

// BenchmarkWakeBaseline: the cross-process hand-off alone, at the paces of
// BenchmarkFollowLatency's gap=100µs and gap=20µs (50,000 records/s);
// "futex" waits as Reader.Wait does, "spin" never sleeps. Run it with a
// count, not a time: -benchtime 20000x.
func BenchmarkWakeBaseline(b *testing.B) {
	for _, gap := range []time.Duration{100 * time.Microsecond, 20 * time.Microsecond} {
		for _, mode := range []string{"futex", "spin"} {
			b.Run(fmt.Sprintf("gap=%s/%s", gap, mode), func(b *testing.B) {
				path := filepath.Join(b.TempDir(), "page")
				p, unmap := mapWakePage(b, path, true)
				defer unmap()
				cmd := exec.Command(os.Args[0], "-test.run=^$")
				cmd.Env = append(os.Environ(), wakerEnv+"="+path, "N="+strconv.Itoa(b.N), "GAP="+gap.String())
				cmd.Stderr = os.Stderr
				b.ResetTimer()
				if err := cmd.Start(); err != nil {
					b.Fatal(err)
				}
				lat := make([]time.Duration, 0, b.N)
				seen := uint32(0)
				busy := true // the last wait found a stamp, as Reader.Wait's idle == 0
				for seen < uint32(b.N) {
					if s := atomic.LoadUint32(&p.seq); s != seen {
						now := time.Now()
						if s-seen > uint32(len(p.stamps)) {
							b.Fatalf("the reader fell %d stamps behind", s-seen)
						}
						for ; seen < s; seen++ {
							lat = append(lat, now.Sub(time.Unix(0, atomic.LoadInt64(&p.stamps[seen%uint32(len(p.stamps))]))))
						}
						busy = true
						continue
					}
					if mode == "spin" {
						continue
					}
					if waitStamp(p, seen, busy) {
						busy = true
					} else {
						busy = false
					}
				}
				b.StopTimer()
				if err := cmd.Wait(); err != nil {
					b.Fatal(err)
				}
				reportLatency(b, lat)
			})
		}
	}
}

// waitStamp waits for a stamp after seen as Reader.Wait waits for a
// record: 200 loads and 20 yields if the last wait was answered, then a
// futex sleep of up to 5 ms (the default WaitTimeout) that the writer
// ends. It reports whether a stamp came.
func waitStamp(p *wakePage, seen uint32, busy bool) bool {
	if busy {
		for i := 0; i < 200; i++ {
			if atomic.LoadUint32(&p.seq) != seen {
				return true
			}
		}
		for i := 0; i < 20; i++ {
			runtime.Gosched()
			if atomic.LoadUint32(&p.seq) != seen {
				return true
			}
		}
	}
	w := atomic.LoadUint32(&p.wake)
	atomic.StoreUint32(&p.waiting, 1)
	if atomic.LoadUint32(&p.seq) == seen {
		fileutil.FutexWait(&p.wake, w, 5*time.Millisecond)
	}
	atomic.StoreUint32(&p.waiting, 0)
	return atomic.LoadUint32(&p.seq) != seen
}
