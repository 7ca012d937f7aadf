package powercut

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Scenario is one log written by one or more writer processes in turn,
// each ended by a power cut.
type Scenario struct {
	Name        string
	Policy      string
	SegmentSize int64
	Retention   bool // MaxBackups 1 (segment files reused) rather than NoReuse and MaxBackups -1
	Goroutines  int
	SyncEvery   int
	Seed        uint64
	CutAfter    []int // per writer life: records acknowledged before the cut
	// DirExists: the test creates the log directory, durably, before the
	// first Open; otherwise Open creates it.
	DirExists bool
}

// Lives returns the number of writer processes (and cuts).
func (s Scenario) Lives() int { return len(s.CutAfter) }

func (s Scenario) writer(dir, events string, life int) WriterConfig {
	c := WriterConfig{Dir: dir, Policy: s.Policy, SegmentSize: s.SegmentSize, Goroutines: s.Goroutines,
		Life: life, Seed: s.Seed, SyncEvery: s.SyncEvery, Limit: s.CutAfter[life-1] * 4, Events: events}
	if s.Retention {
		c.MaxBackups = 1
	} else {
		c.NoReuse, c.MaxBackups = true, -1
	}
	return c
}

// Event is one line of the events FIFO, with when the test read it.
type Event struct {
	Line string
	At   time.Time
}

// RunScenario writes the scenario's log on lazyfs in work, cutting the power
// after each writer life, and checks the log after each cut.
func RunScenario(s Scenario, work string) ([]CutResult, error) {
	backing := filepath.Join(work, "backing")
	mnt := filepath.Join(work, "mnt")
	if err := os.RemoveAll(backing); err != nil {
		return nil, err
	}
	d, err := StartDaemon(backing, mnt)
	if err != nil {
		return nil, err
	}
	defer func() {
		if d != nil {
			d.Cut()
		}
	}()
	dir := filepath.Join(mnt, "logs", "app")
	mkdir := []string{filepath.Dir(dir)}
	if s.DirExists {
		mkdir = append(mkdir, dir)
	}
	for _, m := range mkdir {
		if err := os.Mkdir(m, 0o700); err != nil {
			return nil, err
		}
		if err := syncDir(filepath.Dir(m)); err != nil {
			return nil, err
		}
	}
	var results []CutResult
	survivors := map[ID]Kept{}
	for life := 1; life <= s.Lives(); life++ {
		fifo := filepath.Join(work, fmt.Sprintf("events-%d", life))
		os.Remove(fifo)
		if err := syscall.Mkfifo(fifo, 0o600); err != nil {
			return results, err
		}
		cfg := s.writer(dir, fifo, life)
		events, cutAt, err := runLife(d, cfg, s.CutAfter[life-1])
		os.Remove(fifo)
		d = nil // cut
		if err != nil {
			return results, fmt.Errorf("%s, life %d: %w", s.Name, life, err)
		}
		if d, err = StartDaemon(backing, mnt); err != nil {
			return results, err
		}
		res := Check(cfg, events, cutAt, survivors)
		res.Scenario, res.Life = s, life
		results = append(results, res)
		if res.OpenErr != nil {
			break // nothing more can be written to this log
		}
	}
	err = d.Stop()
	d = nil
	return results, err
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// runLife runs one writer process on d's mount until it acknowledged
// cutAfter records, cuts the power, and returns every event in order.
func runLife(d *Daemon, cfg WriterConfig, cutAfter int) (events []Event, cutAt time.Time, err error) {
	fifo, err := os.OpenFile(cfg.Events, os.O_RDWR, 0) // read-write: never blocks, never sees EOF
	if err != nil {
		d.Cut()
		return nil, cutAt, err
	}
	defer fifo.Close()
	reached := make(chan struct{})
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		sc := bufio.NewScanner(fifo)
		acks, signalled := 0, false
		for sc.Scan() {
			line := sc.Text()
			if line == "END" {
				return
			}
			events = append(events, Event{Line: line, At: time.Now()})
			if strings.HasPrefix(line, "A ") {
				acks++
			}
			if !signalled && (acks >= cutAfter || line == "L" || strings.HasPrefix(line, "E ")) {
				signalled = true
				close(reached)
			}
		}
	}()
	if err := d.Events(cfg.Events); err != nil {
		d.Cut()
		return nil, cutAt, err
	}
	conf, _ := json.Marshal(cfg)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), roleEnv+"=writer", configEnv+"="+string(conf))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		d.Cut()
		return nil, cutAt, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var lifeErr error
	select {
	case <-reached:
	case err := <-exited:
		lifeErr = fmt.Errorf("the writer exited before the cut (%v): %s", err, stderr.String())
		exited <- err
	case <-time.After(hangLimit):
		lifeErr = fmt.Errorf("the writer acknowledged fewer than %d records in %v", cutAfter, hangLimit)
	}
	// The power cut: the writer dies where it is, then the disk forgets
	// what was not durable.
	cutAt = time.Now()
	cmd.Process.Signal(syscall.SIGKILL)
	<-exited
	cerr := d.Cut()
	fifo.Write([]byte("END\n"))
	<-readDone
	return events, cutAt, errors.Join(lifeErr, cerr)
}

// ackLine is an "A" event.
type ackLine struct {
	g, idx       int
	seq, s0, s1  uint64
	size         int
	pos          int // index in the events
	n            int // 1 for the first ack of the life
	at           time.Time
	id           ID
	payloadBytes int
}

func parseAck(e Event, pos, n int) (ackLine, error) {
	f := strings.Fields(e.Line)
	if len(f) != 7 {
		return ackLine{}, fmt.Errorf("bad ack line %q", e.Line)
	}
	var v [6]uint64
	for i := range v {
		x, err := strconv.ParseUint(f[i+1], 10, 64)
		if err != nil {
			return ackLine{}, fmt.Errorf("bad ack line %q", e.Line)
		}
		v[i] = x
	}
	a := ackLine{g: int(v[0]), idx: int(v[1]), seq: v[2], s0: v[3], s1: v[4], size: int(v[5]), pos: pos, n: n, at: e.At}
	return a, nil
}
