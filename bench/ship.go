package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	lumber "github.com/elastic/go-lumber/server/v2"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/mmaplog/mmaplog/mmaplog"
	"github.com/mmaplog/mmaplog/output"
	"github.com/mmaplog/mmaplog/ship"
)

// Shipping throughput: a backlog of the JSON stream is written into an
// mmaplog log, then the real shipper (ship.New(...).Run, what `mmaptail
// ship` runs, cursor saved as batches are acknowledged) ships it through
// the beats:// output to go-lumber's server (the Beats protocol Logstash's
// beats input speaks) on a loopback port in this process, as ship's
// BenchmarkShipBeats does. The pass is bounded by time: events
// acknowledged during it, counted by sequence number.

// quickShipEvents is the fewest events a quick run's measured pass ships.
const quickShipEvents = 5000

type shipSpec struct {
	id, name   string
	kafka      string // ship to a kfake cluster with this compression instead of go-lumber's server
	http       string // "es" or "otlp": ship to VictoriaLogs or the Collector's OTLP receiver, processes of their own (shiphttp.go)
	level      int    // zlib level of the beats output; 0: uncompressed
	host       bool   // the records keep zerolog's "host" member (see shipStream)
	decodeJSON bool   // the receiver decodes every event with encoding/json
	logs       int    // logs the backlog is spread over, one shipper for all (0: one)
	segment    int64  // segment size of the backlog's logs (0: mmaplog's default)
	quiet      bool   // a second log gets a record every millisecond, whose latency is measured
	// pace, if set, is the most events/s the receiver acknowledges, as a
	// remote Logstash slower than the shipper would: the receiver, not
	// this machine's cores, is the bottleneck.
	pace float64
	// maxRate is the fastest shipping the backlog is sized for
	// (events/s): a pass that empties the backlog early ends there, its
	// rate still right, only measured over less time.
	maxRate float64
}

func shipGroup(quick bool) *Group {
	g := &Group{
		Scenario: "ship", Size: SizeJSON, Goroutines: 1, Segment: SegmentDefault, Baseline: "ship/beats",
		Title: fmt.Sprintf("Shipping to receivers on loopback (Beats, Kafka, Elasticsearch, OTLP): %s records", sizeName(SizeJSON)),
		Note: "A backlog of the JSON stream is written into a log first; then the shipper (`ship.New(...).Run`, what `mmaptail ship` runs: " +
			"follow reader, records turned into ECS events, batches of 2048, a window of 8192 events, the cursor saved with fsync as batches are acknowledged: at most once a second unless half the window waits for it) " +
			"ships it through the `beats://` output to go-lumber's server (`server/v2`, the Beats protocol of Logstash's beats input) on 127.0.0.1 in this process. " +
			"The receiver acknowledges every batch and keeps each event's bytes without decoding them (a JSONDecoder that copies the bytes), " +
			"as a Logstash on cores of its own would cost us nothing; it still reads the frames and inflates zlib batches (its allocations, several per event, are most of allocs/op: " +
			"the shipper's own are 0.02 per event, ship's TestShipAllocationsPerEvent). " +
			"The Kafka rows ship to franz-go's kfake, a Kafka cluster of 3 brokers in this process, through the `kafka://` output (franz-go's idempotent producer, acks all); " +
			"kfake keeps every record in memory (the RSS column). " +
			"The elasticsearch row ships through the `elasticsearch://` output (`_bulk`, create actions with the fingerprint `_id`) to VictoriaLogs' Elasticsearch API, " +
			"the otlp row through the `otlp://` output (OTLP/HTTP protobuf) to the OpenTelemetry Collector's own OTLP receiver (peers/otlpreceiver, records counted and discarded); " +
			"both receivers are processes of their own on this machine's two cores (VictoriaLogs parses, indexes and stores every event, the Collector decodes every record), " +
			"their CPU time is added to the CPU column, their memory is not in RSS; their wire column is what this process wrote during the pass (the requests, and a few bytes of cursor saves). " +
			"The last row decodes every event with encoding/json, go-lumber's default: on these 2 cores the receiver then competes with the shipper for CPU. " +
			"records/s is events acknowledged per second over the pass, MB/s the records' bytes (as given to Write) shipped; CPU ns/op and allocs/op are the whole process " +
			"(shipper and receiver) per event. There is no per-record latency here: the columns are empty.",
	}
	specs := []shipSpec{
		{id: "ship/beats", name: "beats, uncompressed", maxRate: 2e6},
		{id: "ship/beats-zlib3", name: "beats, zlib 3", level: 3, maxRate: 2e6},
		{id: "ship/beats-host", name: "beats, uncompressed, records with a host member (ECS-colliding: merged)", host: true, maxRate: 2e6},
		{id: "ship/kafka", name: "kafka (kfake, 3 brokers, this process), uncompressed", kafka: "none", maxRate: 1e6},
		{id: "ship/es", name: "elasticsearch (VictoriaLogs, a process of its own), uncompressed", http: "es", maxRate: 5e5},
		{id: "ship/otlp", name: "otlp (the Collector's OTLP receiver, a process of its own), protobuf, uncompressed", http: "otlp", maxRate: 5e5},
		{id: "ship/kafka-lz4", name: "kafka (kfake, 3 brokers, this process), lz4", kafka: "lz4", maxRate: 1e6},
		{id: "ship/beats-zlib3-host", name: "beats, zlib 3, records with a host member", level: 3, host: true, maxRate: 5e5},
		{id: "ship/beats-zlib3-json", name: "beats, zlib 3, receiver decodes JSON", level: 3, decodeJSON: true, maxRate: 5e5},
	}
	if quick {
		specs = specs[:6]
	}
	for _, s := range specs {
		g.Cases = append(g.Cases, &Case{ID: s.id, Name: s.name, Run: shipCase(s)})
	}
	return g
}

// shipLogsGroup compares one shipper following one log with the same one
// following 100 logs that hold the same backlog between them, and measures
// how long a record of a quiet log takes while another log ships flat out.
func shipLogsGroup(quick bool) *Group {
	const seg = 4 << 20
	g := &Group{
		Scenario: "ship", Size: SizeJSON, Goroutines: 1, Segment: seg, Baseline: "ship/logs-1",
		Title: fmt.Sprintf("One shipper, many logs, to go-lumber's Beats server on loopback: %s records", sizeName(SizeJSON)),
		Note: "The same backlog of the JSON stream (records without a host member), in one log or spread over 100 logs of 4 MiB segments, is shipped by one shipper " +
			"(`ship.New(...).Run` with the logs, a cursor per log, one output: the logs' batches are taken in turn) through the `beats://` output, uncompressed, " +
			"to go-lumber's server in this process, which keeps each event's bytes without decoding them. records/s is events acknowledged per second, all logs together; " +
			"RSS is the growth of the process's resident set (the segments' pages mapped by the readers included). " +
			"The last rows ship one log's backlog flat out while a second log gets a record every millisecond: their p50 to max are those records' latency, " +
			"from just before the writer's Append to the shipper's acknowledgement callback. In the first, the shipper, the writers and the receiver share this machine's cores, all busy; " +
			fmt.Sprintf("in the second, the receiver acknowledges at most %s events/s (it sleeps), as a remote Logstash slower than the shipper would, so that the output's queue, not the cores, sets the latency: ", countHuman(quietPace)) +
			"a quiet record waits for the windows in flight (`Pipelining`, 2) and its own, which it shares with a busy batch, each of up to 2048 events.",
	}
	for _, s := range []shipSpec{
		{id: "ship/logs-1", name: "1 log", segment: seg, maxRate: 2e6},
		{id: "ship/logs-100", name: "100 logs", segment: seg, logs: 100, maxRate: 2e6},
		{id: "ship/logs-quiet", name: "1 log flat out, 1 quiet log (latency)", segment: seg, quiet: true, maxRate: 2e6},
		{id: "ship/logs-quiet-paced", name: fmt.Sprintf("1 log flat out to a receiver taking %s events/s, 1 quiet log (latency)", countHuman(quietPace)), segment: seg, quiet: true, pace: quietPace, maxRate: quietPace},
	} {
		g.Cases = append(g.Cases, &Case{ID: s.id, Name: s.name, Run: shipCase(s)})
	}
	return g
}

func shipCase(spec shipSpec) func(env *Env) (*Sample, error) {
	return func(env *Env) (*Sample, error) {
		stream, err := shipStream(spec.host)
		if err != nil {
			return nil, err
		}
		n := max(int((env.Warmup+env.Duration).Seconds()*spec.maxRate), 20000)
		logs := max(spec.logs, 1)
		n -= n % logs
		var dirs []string
		for l := 0; l < logs; l++ {
			dir := filepath.Join(env.Dir, "log")
			if logs > 1 {
				dir = filepath.Join(env.Dir, "logs", fmt.Sprintf("app-%03d", l))
			}
			dirs = append(dirs, dir)
			w, err := mmaplog.Open(dir, &mmaplog.Options{MaxBackups: -1, SegmentSize: spec.segment})
			if err != nil {
				return nil, err
			}
			for i := l; i < n; i += logs {
				if _, err := w.Write(stream.Record(i)); err != nil {
					w.Close()
					return nil, fmt.Errorf("ship: writing the backlog: %w", err)
				}
			}
			if err := w.Close(); err != nil {
				return nil, err
			}
		}

		runtime.GC()
		var smp Sample
		smp.RSSOpen = residentBytes()
		var rcv *receiver
		var out output.Output
		switch {
		case spec.http != "":
			rcv, err = startHTTPReceiver(spec.http, filepath.Join(env.Dir, "receiver"))
			if err != nil {
				return nil, err
			}
			out, err = output.Open(rcv.url, &output.Options{Window: ship.OutputWindow, CompressionLevel: spec.level})
		case spec.kafka != "":
			comp, err := output.ParseKafkaCompression(spec.kafka)
			if err != nil {
				return nil, fmt.Errorf("ship: %w", err)
			}
			rcv, err = startKafka()
			if err != nil {
				return nil, err
			}
			out, err = output.Open("kafka://"+rcv.addr+"/logs", &output.Options{Window: ship.OutputWindow, Kafka: output.KafkaOptions{Compression: comp}})
		default:
			rcv, err = startReceiver(spec.decodeJSON, spec.pace)
			if err != nil {
				return nil, err
			}
			out, err = output.Open("beats://"+rcv.addr, &output.Options{Window: ship.OutputWindow, CompressionLevel: spec.level})
		}
		if err != nil {
			rcv.stop()
			return nil, err
		}
		defer rcv.stop()
		cfg := ship.Config{Logs: dirs, Output: out, CursorName: "bench", Host: "bench"}
		var q *quietLog
		if spec.quiet {
			if q, err = startQuiet(filepath.Join(env.Dir, "quiet"), out); err != nil {
				out.Close(context.Background())
				return nil, err
			}
			defer q.stop()
			cfg.Logs = append(cfg.Logs, q.dir)
			cfg.Output = q.out
		}
		s, err := ship.New(cfg)
		if err != nil {
			out.Close(context.Background())
			return nil, err
		}
		// acked is the backlog's events acknowledged (the quiet log's
		// aside), counted by sequence number for one log.
		acked := func() uint64 {
			if logs == 1 {
				for _, ls := range s.LogStats() {
					if ls.Dir == dirs[0] {
						return ls.AckedSeq
					}
				}
				return 0
			}
			return s.Stats().Acked
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		fail := func(err error) (*Sample, error) {
			cancel()
			<-done
			return nil, err
		}
		// poll waits until the deadline or until every record is
		// acknowledged, whichever is first; the shipper ending is an error.
		// With min > 0 it waits, past the deadline, until min more events
		// are acknowledged (up to passLimit, which catches a hang).
		poll := func(deadline time.Time, min uint64) error {
			from, limit := acked(), time.Now().Add(passLimit)
			for acked() < uint64(n) {
				now := time.Now()
				if !now.Before(deadline) && acked() >= from+min {
					break
				}
				if now.After(limit) {
					cancel()
					<-done
					return fmt.Errorf("ship: %d of %d events acknowledged in %v: a hang? (output: %v)", acked()-from, min, passLimit, out.Stats().LastError)
				}
				select {
				case err := <-done:
					return fmt.Errorf("ship: the shipper stopped after %d of %d events: %v", s.Stats().Acked, n, err)
				case <-time.After(time.Millisecond):
				}
			}
			return nil
		}
		if err := poll(time.Now().Add(env.Warmup), 0); err != nil {
			return nil, err
		}
		// With many logs, the warm-up lasts until every log shipped a
		// batch: the pass measures them all shipping, not their start.
		for limit := time.Now().Add(passLimit); logs > 1; {
			started := 0
			for _, ls := range s.LogStats() {
				if ls.Batches > 0 {
					started++
				}
			}
			if started >= logs {
				break
			}
			if time.Now().After(limit) {
				return fail(fmt.Errorf("ship: %d of %d logs shipped a batch in %v", started, logs, passLimit))
			}
			time.Sleep(time.Millisecond)
		}
		a0 := acked()
		if a0 >= uint64(n) {
			return fail(fmt.Errorf("ship: the backlog of %d events was shipped within the warm-up (%v): raise shipSpec.maxRate", n, env.Warmup))
		}
		o0 := out.Stats()
		w0 := rcv.wireBytes()
		var ms0, ms1 runtime.MemStats
		runtime.ReadMemStats(&ms0)
		cpu0 := cpuTime() + rcv.cpuTime()
		t0 := time.Now()
		// A quick run's pass (the harness's tests) ships at least
		// quickShipEvents, however slow the machine.
		var min uint64
		if env.Quick {
			min = quickShipEvents
		}
		if q != nil {
			q.measure()
		}
		if err := poll(t0.Add(env.Duration), min); err != nil {
			return nil, err
		}
		a1 := acked()
		if q != nil {
			smp.Hist = q.hist()
		}
		smp.Elapsed = time.Since(t0)
		cpu1 := cpuTime() + rcv.cpuTime()
		runtime.ReadMemStats(&ms1)
		o1 := out.Stats()
		w1 := rcv.wireBytes()
		smp.RSS = residentBytes()
		smp.DirtyBytes = dirtyBytes()
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			return nil, fmt.Errorf("ship: %w", err)
		}
		st := s.Stats()
		rcv.stop()

		smp.Records = int64(a1 - a0)
		for seq := a0 + 1; seq <= a1; seq++ {
			smp.Bytes += int64(len(stream.Record(int(seq - 1)))) // the same sizes however the records are spread
		}
		smp.Mallocs = ms1.Mallocs - ms0.Mallocs
		smp.CPU = cpu1 - cpu0
		smp.Written = int64(n)
		smp.EventBytes = int64(o1.Bytes - o0.Bytes)
		smp.EventCount = int64(o1.Events - o0.Events)
		smp.WireBytes = w1 - w0
		// Every event acknowledged was received: the receiver acknowledges
		// only what it took off the connection (Kafka: what the brokers
		// acknowledged, they have; VictoriaLogs: what it answered 201 to).
		if got := rcv.events.Load(); spec.kafka == "" && spec.http != "es" && got < st.Acked {
			smp.Dropped = st.Acked - got
		}
		if smp.Records == 0 {
			return nil, fmt.Errorf("ship: no event acknowledged in %v (output: %v)", env.Duration, o1.LastError)
		}
		return &smp, nil
	}
}

// shipStream returns the JSON stream as the shipping rows write it. The
// stream's zerolog events carry a "host" member (a string), which the
// shipper's event has too (host.name, an object): the shipper then merges
// the two by decoding and encoding the event with encoding/json, a slower
// path than the one for records whose members do not collide. With host
// false the member is renamed "node" (the records keep their length), so
// that the rows measure the usual path; one row keeps it.
func shipStream(host bool) (*Stream, error) {
	st, err := streamFor(SizeJSON)
	if err != nil || host {
		return st, err
	}
	shipStreamOnce.Do(func() {
		out := &Stream{Name: st.Name + ", no host member", Size: st.Size, Mean: st.Mean, Records: make([][]byte, len(st.Records))}
		for i, r := range st.Records {
			out.Records[i] = bytes.Replace(r, []byte(`,"host":"`), []byte(`,"node":"`), 1)
			if bytes.Contains(out.Records[i], []byte(`"host"`)) || len(out.Records[i]) != len(r) {
				shipStreamErr = fmt.Errorf("ship: record %d of the JSON stream keeps a host member: %s", i, r)
				return
			}
		}
		shipStreamNoHost = out
	})
	return shipStreamNoHost, shipStreamErr
}

var (
	shipStreamOnce   sync.Once
	shipStreamNoHost *Stream
	shipStreamErr    error
)

// receiver is go-lumber's server on a loopback port, acknowledging every
// batch, counting events and the bytes that came over its connections.
type receiver struct {
	srv     *lumber.Server
	cluster *kfake.Cluster // instead of srv, for the Kafka rows
	peer    *httpPeer      // instead of srv, for the elasticsearch and otlp rows
	addr    string
	url     string // the output's URL, for the elasticsearch and otlp rows
	events  atomic.Uint64
	wire    atomic.Int64
	done    chan struct{}
	once    sync.Once
}

// wireBytes returns the bytes the receiver has read from its connections.
func (r *receiver) wireBytes() int64 {
	if r.peer != nil {
		return r.peer.wireBytes()
	}
	return r.wire.Load()
}

// cpuTime returns the CPU time of the receiver's process where it has one
// of its own (0 where it runs in this one, whose time cpuTime counts).
func (r *receiver) cpuTime() time.Duration {
	if r.peer != nil {
		return processCPU(r.peer.pid)
	}
	return 0
}

// quietPace is the receiver's pace in the paced quiet-log row: about half
// what this shipper does on two cores, unpaced.
const quietPace = 300000

// startReceiver starts go-lumber's server; with pace > 0 it acknowledges
// at most pace events per second.
func startReceiver(decodeJSON bool, pace float64) (*receiver, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("ship: receiver: %w", err)
	}
	r := &receiver{addr: l.Addr().String(), done: make(chan struct{})}
	var opts []lumber.Option
	if !decodeJSON {
		opts = append(opts, lumber.JSONDecoder(func(data []byte, v interface{}) error {
			*(v.(*interface{})) = json.RawMessage(append([]byte(nil), data...))
			return nil
		}))
	}
	srv, err := lumber.NewWithListener(countingListener{l, &r.wire}, opts...)
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("ship: receiver: %w", err)
	}
	r.srv = srv
	go func() {
		defer close(r.done)
		var t0 time.Time
		var n int
		for b := range srv.ReceiveChan() {
			r.events.Add(uint64(len(b.Events)))
			if pace > 0 {
				// Acknowledge the n-th event no sooner than n/pace
				// after the first; start over after a pause of the
				// sender's, instead of catching up in a burst.
				if n == 0 {
					t0 = time.Now()
				}
				n += len(b.Events)
				switch d := time.Duration(float64(n)/pace*float64(time.Second)) - time.Since(t0); {
				case d > 0:
					time.Sleep(d)
				case d < -50*time.Millisecond:
					n = 0
				}
			}
			b.ACK()
		}
	}()
	return r, nil
}

func (r *receiver) stop() {
	r.once.Do(func() {
		if r.peer != nil {
			r.events.Store(uint64(r.peer.stop()))
			return
		}
		if r.cluster != nil {
			r.cluster.Close()
			return
		}
		r.srv.Close()
		<-r.done
	})
}

// countingListener counts the bytes read from the connections it accepts:
// what went over the wire to the receiver.
type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countingConn{c, l.n}, nil
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Read(p []byte) (int, error) {
	k, err := c.Conn.Read(p)
	c.n.Add(int64(k))
	return k, err
}
