package powercut

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mmaplog/mmaplog/powercut/lazyfs"
)

// The processes of a run are all the test binary, started again with
// POWERCUT_ROLE set: the filesystem daemon, and the writer.
const (
	roleEnv    = "POWERCUT_ROLE"
	backingEnv = "POWERCUT_BACKING"
	mountEnv   = "POWERCUT_MOUNT"
	configEnv  = "POWERCUT_CONFIG"
)

// Role runs the process's role if it was started as one, and reports
// whether it was (then it has finished, and the caller exits). Call it
// first thing in TestMain.
func Role() bool {
	switch os.Getenv(roleEnv) {
	case "daemon":
		if err := runDaemon(os.Getenv(backingEnv), os.Getenv(mountEnv)); err != nil {
			fmt.Fprintln(os.Stderr, "powercut daemon:", err)
			os.Exit(1)
		}
		return true
	case "writer":
		if err := runWriter(os.Getenv(configEnv)); err != nil {
			fmt.Fprintln(os.Stderr, "powercut writer:", err)
			os.Exit(1)
		}
		return true
	}
	return false
}

// runDaemon serves lazyfs from backing on mnt and obeys commands on stdin,
// one a line, answering each on stdout:
//
//	events PATH   write fsync events to the FIFO at PATH -> "ok"
//	freeze        cut the power: nothing more becomes durable -> "frozen"
//	stats         -> "stats WRITES FSYNCS DIRFSYNCS REFUSED"
//	unmount       unmount and exit -> "bye"
//
// It prints "ready" once the filesystem is mounted.
func runDaemon(backing, mnt string) error {
	fsys, err := lazyfs.Load(backing)
	if err != nil {
		return err
	}
	srv, err := fsys.Mount(mnt)
	if err != nil {
		return err
	}
	fmt.Println("ready")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		cmd, arg, _ := strings.Cut(in.Text(), " ")
		switch cmd {
		case "events":
			f, err := os.OpenFile(arg, os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			fsys.SetEvents(f)
			fmt.Println("ok")
		case "freeze":
			fsys.Freeze()
			fmt.Println("frozen")
		case "stats":
			s := fsys.Counts()
			fmt.Printf("stats %d %d %d %d\n", s.Writes, s.Fsyncs, s.DirFsyncs, s.Refused)
		case "unmount":
			err := srv.Unmount()
			fsys.Close()
			fmt.Println("bye")
			return err
		default:
			return fmt.Errorf("unknown command %q", in.Text())
		}
	}
	return in.Err()
}

// Daemon is a running lazyfs daemon, seen from the test.
type Daemon struct {
	Mount string
	cmd   *exec.Cmd
	in    *os.File
	out   *bufio.Reader
	done  chan struct{} // closed when the process has exited
}

// StartDaemon mounts lazyfs with the durable state in backing on mnt, in a
// new process.
func StartDaemon(backing, mnt string) (*Daemon, error) {
	if err := os.MkdirAll(mnt, 0o700); err != nil {
		return nil, err
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), roleEnv+"=daemon", backingEnv+"="+backing, mountEnv+"="+mnt)
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the test
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	inR.Close()
	outW.Close()
	d := &Daemon{Mount: mnt, cmd: cmd, in: inW, out: bufio.NewReader(outR), done: make(chan struct{})}
	go func() { cmd.Wait(); close(d.done) }()
	if err := d.expect("ready"); err != nil {
		d.kill()
		return nil, fmt.Errorf("lazyfs daemon did not mount %s: %w", mnt, err)
	}
	return d, nil
}

// hangLimit only catches a hung daemon: nothing it does takes seconds.
const hangLimit = 2 * time.Minute

func (d *Daemon) expect(want string) error {
	type line struct {
		s   string
		err error
	}
	ch := make(chan line, 1)
	go func() {
		s, err := d.out.ReadString('\n')
		ch <- line{strings.TrimSpace(s), err}
	}()
	select {
	case l := <-ch:
		if l.err != nil {
			return fmt.Errorf("daemon: %w (want %q)", l.err, want)
		}
		if !strings.HasPrefix(l.s, want) {
			return fmt.Errorf("daemon said %q, want %q", l.s, want)
		}
		return nil
	case <-time.After(hangLimit):
		return fmt.Errorf("daemon hangs (waited %v for %q)", hangLimit, want)
	}
}

func (d *Daemon) command(cmd, want string) error {
	if _, err := fmt.Fprintln(d.in, cmd); err != nil {
		return err
	}
	return d.expect(want)
}

// Events makes the daemon report fsyncs on the FIFO at path.
func (d *Daemon) Events(path string) error { return d.command("events "+path, "ok") }

// Cut cuts the power: the daemon stops making anything durable, dies, and
// the mount goes. Everything not made durable before is lost; a new daemon
// on the same backing directory serves what is left. The processes that
// used the mount must be dead (or must not touch it again).
func (d *Daemon) Cut() error {
	ferr := d.command("freeze", "frozen")
	d.kill()
	return errors.Join(ferr, unmount(d.Mount))
}

// Stop unmounts cleanly and ends the daemon (no power cut: nothing is lost
// that was made durable, and nothing else matters any more).
func (d *Daemon) Stop() error {
	err := d.command("unmount", "bye")
	select {
	case <-d.done:
	case <-time.After(hangLimit):
		err = errors.Join(err, errors.New("daemon did not exit"))
	}
	d.kill()
	return errors.Join(err, unmount(d.Mount))
}

func (d *Daemon) kill() {
	d.cmd.Process.Kill()
	select {
	case <-d.done:
	case <-time.After(hangLimit):
	}
	d.in.Close()
}

// unmount detaches mnt if it is still mounted (a dead daemon leaves a mount
// whose every access fails with ENOTCONN).
func unmount(mnt string) error {
	for range 10 {
		err := unix.Unmount(mnt, unix.MNT_DETACH)
		if err == nil || errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOENT) {
			return nil // unmounted, or not a mount point (any more)
		}
		if !errors.Is(err, syscall.EBUSY) {
			return fmt.Errorf("unmount %s: %w", mnt, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("unmount %s: still busy", mnt)
}

// Available says why power cuts cannot be simulated here, or "" if they
// can: lazyfs mounts with mount(2), which needs root and /dev/fuse.
func Available() string {
	if os.Geteuid() != 0 {
		return "power cuts are simulated with a FUSE filesystem mounted by mount(2), which needs root: run as root"
	}
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		return fmt.Sprintf("power cuts are simulated with a FUSE filesystem, and /dev/fuse cannot be opened: %v (load the fuse module, or give the container the device)", err)
	}
	f.Close()
	return ""
}
