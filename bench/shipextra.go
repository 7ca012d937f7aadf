package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/mmaplog/mmaplog/mmaplog"
	"github.com/mmaplog/mmaplog/output"
)

// startKafka starts franz-go's kfake cluster in this process as the Kafka
// rows' receiver: 3 brokers on loopback ports, the topic "logs" with 3
// partitions, the bytes its connections read counted.
func startKafka() (*receiver, error) {
	r := &receiver{done: make(chan struct{})}
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(3, "logs"),
		kfake.ListenFn(func(network, addr string) (net.Listener, error) {
			l, err := net.Listen(network, addr)
			if err != nil {
				return nil, err
			}
			return countingListener{l, &r.wire}, nil
		}))
	if err != nil {
		return nil, fmt.Errorf("ship: kfake: %w", err)
	}
	r.cluster, r.addr = c, strings.Join(c.ListenAddrs(), ",")
	return r, nil
}

// quietLog is a second log that gets a record every millisecond while the
// backlog ships; its records' latency (from just before Append to the
// shipper's acknowledgement callback) is measured once measure was called.
type quietLog struct {
	dir string
	out output.Output // the shipper's output, timing the quiet log's acknowledgements

	w        *mmaplog.Writer
	measured atomic.Bool
	mu       sync.Mutex
	h        *hdrhistogram.Histogram
	stopped  chan struct{}
	done     chan struct{}
}

func startQuiet(dir string, out output.Output) (*quietLog, error) {
	// Small segments: preparing the default's (three of 64 MiB, zeroed)
	// would load the machine during the pass.
	w, err := mmaplog.Open(dir, &mmaplog.Options{SegmentSize: 1 << 20})
	if err != nil {
		return nil, err
	}
	q := &quietLog{dir: dir, w: w, h: newHist(), stopped: make(chan struct{}), done: make(chan struct{})}
	q.out = &timingOutput{Output: out, q: q}
	go q.write()
	return q, nil
}

// write appends {"quiet":T} every millisecond, T the Unix time in ns just
// before the Append.
func (q *quietLog) write() {
	defer close(q.done)
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	buf := make([]byte, 0, 64)
	for {
		select {
		case <-q.stopped:
			return
		case <-t.C:
		}
		buf = append(buf[:0], `{"quiet":`...)
		buf = strconv.AppendInt(buf, time.Now().UnixNano(), 10)
		buf = append(buf, '}')
		if _, err := q.w.Append(mmaplog.LevelInfo, buf); err != nil {
			return
		}
	}
}

func (q *quietLog) measure() { q.measured.Store(true) }

// acked records the latency of the quiet events of an acknowledged batch.
func (q *quietLog) acked(events [][]byte) {
	if !q.measured.Load() {
		return
	}
	now := time.Now().UnixNano()
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, ev := range events {
		i := bytes.Index(ev, []byte(`{"quiet":`))
		if i != 0 {
			continue
		}
		end := i + len(`{"quiet":`)
		j := end
		for j < len(ev) && ev[j] >= '0' && ev[j] <= '9' {
			j++
		}
		t, err := strconv.ParseInt(string(ev[end:j]), 10, 64)
		if err == nil && now > t {
			q.h.RecordValue(min(now-t, histMax))
		}
	}
}

func (q *quietLog) hist() *hdrhistogram.Histogram {
	q.mu.Lock()
	defer q.mu.Unlock()
	h := newHist()
	h.Merge(q.h)
	return h
}

func (q *quietLog) stop() {
	select {
	case <-q.stopped:
		return
	default:
	}
	close(q.stopped)
	<-q.done
	q.w.Close()
}

// timingOutput wraps the shipper's output to see the acknowledgements of
// the quiet log's batches (those whose first event is a quiet record).
type timingOutput struct {
	output.Output
	q *quietLog
}

func (t *timingOutput) NewSource() output.Publisher {
	return &timingSource{inner: t.Output.NewSource(), q: t.q}
}

type timingSource struct {
	inner output.Publisher
	q     *quietLog
}

func (s *timingSource) Publish(ctx context.Context, b output.Batch) error {
	events := b.Events()
	if len(events) == 0 || !bytes.HasPrefix(events[0], []byte(`{"quiet":`)) {
		return s.inner.Publish(ctx, b)
	}
	return s.inner.Publish(ctx, &timedBatch{Batch: b, q: s.q})
}

// timedBatch is a quiet log's batch: its events' latency is recorded when
// it is acknowledged, before the shipper takes its memory back.
type timedBatch struct {
	output.Batch
	q *quietLog
}

func (b *timedBatch) Ack() {
	b.q.acked(b.Events())
	b.Batch.Ack()
}
