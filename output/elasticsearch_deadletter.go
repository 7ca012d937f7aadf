package output

import (
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// deadLetter is an elasticsearch:// output's dead-letter file: NDJSON
// appended, 0600, never opened through a symbolic link, never left with a
// torn line (the file output's rules).
type deadLetter struct {
	mu   sync.Mutex
	f    *os.File
	path string
	size int64 // the end of the last complete line; -1 for a pipe or device
}

func openDeadLetter(path string) (*deadLetter, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	fs := &fileSession{f: f, path: path}
	if err := fs.repair(); err != nil {
		f.Close()
		return nil, err
	}
	return &deadLetter{f: f, path: path, size: fs.size}, nil
}

// write appends whole lines with one write; a write that fails part-way
// is cut back, so that the file ends with a whole line.
func (d *deadLetter) write(b []byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f == nil {
		return fmt.Errorf("%s: closed", d.path)
	}
	n, err := d.f.Write(b)
	if err == nil {
		if d.size >= 0 {
			d.size += int64(n)
		}
		return nil
	}
	if d.size >= 0 && n > 0 {
		if terr := d.f.Truncate(d.size); terr != nil {
			return fmt.Errorf("%s: write: %w; removing the %d bytes written failed too: %w", d.path, err, n, terr)
		}
	}
	return fmt.Errorf("%s: write: %w", d.path, err)
}

func (d *deadLetter) close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f == nil {
		return nil
	}
	err := d.f.Close()
	d.f = nil
	return err
}
