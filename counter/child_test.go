//go:build linux

package counter_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mmaplog/mmaplog/counter"
	"golang.org/x/sys/unix"
)

// child is this test binary re-run as a producer or collector process.
type child struct {
	cmd  *exec.Cmd
	out  *bufio.Reader
	buf  strings.Builder
	done chan struct{}
	once sync.Once
}

// copyRest collects the rest of the child's output in the background.
func (c *child) copyRest() {
	c.once.Do(func() {
		go func() {
			io.Copy(&c.buf, c.out)
			close(c.done)
		}()
	})
}

func startChild(t *testing.T, role string, args ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "MMAPLOG_COUNTER_CHILD="+role, "MMAPLOG_COUNTER_ARGS="+strings.Join(args, " "))
	cmd.Stderr = os.Stderr
	pr, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, out: bufio.NewReader(pr), done: make(chan struct{})}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return c
}

// firstLine reads the child's first line of output, then collects the rest
// in the background.
func (c *child) firstLine(t *testing.T) string {
	line, err := c.out.ReadString('\n')
	if err != nil {
		t.Fatalf("child output: %v", err)
	}
	c.copyRest()
	return strings.TrimSpace(line)
}

// wait waits for the child to exit 0 and returns its output.
func (c *child) wait(t *testing.T) string {
	t.Helper()
	c.copyRest()
	<-c.done
	if err := c.cmd.Wait(); err != nil {
		t.Fatalf("child %v: %v", c.cmd.Env[len(c.cmd.Env)-2:], err)
	}
	return c.buf.String()
}

// stop sends SIGTERM (the collector makes a final collection and exits) and
// returns the output.
func (c *child) stop(t *testing.T) string {
	t.Helper()
	c.cmd.Process.Signal(unix.SIGTERM)
	return c.wait(t)
}

func childArgs() []string { return strings.Fields(os.Getenv("MMAPLOG_COUNTER_ARGS")) }

func die(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "child: "+format+"\n", a...)
	os.Exit(1)
}

// produceChild: URL SEED GOROUTINES ITERATIONS [GATE]. Each goroutine adds
// random amounts to random counters (one in 65 outside the shape) and the
// child prints, per counter, what it added: "RULE METRIC SUM" (-1 -1 COUNT
// for the adds outside the shape). With GATE, a file path, each goroutine
// stops half way until that file exists.
func produceChild() {
	a := childArgs()
	seed, _ := strconv.Atoi(a[1])
	gs, _ := strconv.Atoi(a[2])
	iters, _ := strconv.Atoi(a[3])
	gate := ""
	if len(a) > 4 {
		gate = a[4]
	}
	m, err := counter.Open(a[0], nil, nil)
	if err != nil {
		die("%v", err)
	}
	defer m.Close()
	rules, metrics := m.Shape().Rules, m.Shape().Metrics
	sums := make([]map[[2]int]uint64, gs)
	var wg sync.WaitGroup
	for g := 0; g < gs; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(seed), uint64(g)))
			s := map[[2]int]uint64{}
			for i := 0; i < iters; i++ {
				if gate != "" && i == iters/2 {
					for {
						if _, err := os.Stat(gate); err == nil {
							break
						}
						time.Sleep(time.Millisecond)
					}
				}
				r, mt, n := rng.IntN(rules+1), rng.IntN(metrics), uint64(1+rng.IntN(3))
				switch {
				case r == rules:
					m.Add(r, mt, n)
					s[[2]int{-1, -1}]++
					continue
				case i%2 == 0:
					c, _ := m.Counter(r, mt)
					c.Add(n)
				default:
					m.Add(r, mt, n)
				}
				s[[2]int{r, mt}] += n
				if i%500 == 499 {
					time.Sleep(time.Millisecond) // let collections interleave
				}
			}
			sums[g] = s
		}(g)
	}
	wg.Wait()
	w := bufio.NewWriter(os.Stdout)
	for _, s := range sums {
		for k, v := range s {
			fmt.Fprintf(w, "%d %d %d\n", k[0], k[1], v)
		}
	}
	w.Flush()
}

// collectChild: URL INTERVAL, or URL leak-lease (take the lease and exit
// without releasing it). It prints "ready", then ships events to stdout
// until SIGTERM, then makes a final collection.
func collectChild() {
	a := childArgs()
	m, err := counter.Attach(a[0], nil)
	if err != nil {
		die("%v", err)
	}
	src, err := counter.NewMapSource(m)
	if err != nil {
		die("%v", err)
	}
	if a[1] == "leak-lease" {
		os.Exit(0)
	}
	interval, err := time.ParseDuration(a[1])
	if err != nil {
		die("%v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), unix.SIGTERM)
	defer stop()
	w := bufio.NewWriter(os.Stdout)
	fmt.Fprintln(w, "ready")
	w.Flush()
	coll := counter.NewCollector(src, counter.EmitterFunc(func(batch [][]byte) error {
		for _, ev := range batch {
			w.Write(ev)
			w.WriteByte('\n')
		}
		return w.Flush()
	}), nil)
	if err := coll.Run(ctx, interval, nil); err != nil {
		die("%v", err)
	}
	src.Close()
	m.Close()
}
