package flush

import (
	"sync"
	"time"
)

// Loop runs the background part of the Interval and Bytes policies: it calls
// flush on a timer (Interval) or when Notify says that another Policy.Bytes
// bytes were written (Bytes). Either way the flush is an msync(MS_SYNC):
// what it covers is on stable storage when it returns.
type Loop struct {
	notify chan struct{}
	stop   chan struct{}
	wg     sync.WaitGroup
}

// StartLoop starts the loop for p (Interval or Bytes; for any other policy it
// returns nil and Notify and Stop on nil do nothing). flush is called with
// wait true: a flush that only started the writeback would leave the data
// in the disk's volatile cache, where a power loss takes it. onErr receives
// flush errors.
func StartLoop(p Policy, flush func(wait bool) error, onErr func(error)) *Loop {
	if p.Mode != ModeInterval && p.Mode != ModeBytes {
		return nil
	}
	l := &Loop{notify: make(chan struct{}, 1), stop: make(chan struct{})}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		var tick <-chan time.Time
		if p.Mode == ModeInterval {
			t := time.NewTicker(p.Interval)
			defer t.Stop()
			tick = t.C
		}
		for {
			select {
			case <-l.stop:
				return
			case <-tick:
				if err := flush(true); err != nil && onErr != nil {
					onErr(err)
				}
			case <-l.notify:
				if err := flush(true); err != nil && onErr != nil {
					onErr(err)
				}
			}
		}
	}()
	return l
}

// Notify asks for a flush without blocking; notifications that arrive while
// one is pending are merged.
func (l *Loop) Notify() {
	if l == nil {
		return
	}
	select {
	case l.notify <- struct{}{}:
	default:
	}
}

// Stop stops the loop and waits for a flush in progress.
func (l *Loop) Stop() {
	if l == nil {
		return
	}
	close(l.stop)
	l.wg.Wait()
}
