package ship

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mmaplog/mmaplog/tail"
)

// Metrics are a shipper's Prometheus metrics. Per log (label log, the
// log's directory):
//
//	mmaptail_events_shipped_total        events acknowledged by the output
//	mmaptail_bytes_shipped_total         bytes of JSON acknowledged
//	mmaptail_acked_sequence              sequence number of the last acknowledged record
//	mmaptail_lag_records                 records written and not yet acknowledged
//	mmaptail_lag_seconds                 while behind: how long ago the last acknowledged record was written (0 when caught up)
//	mmaptail_records_lost_total          records lost to damage or retention before being read
//	mmaptail_damage_total                damaged ranges met
//	mmaptail_cursor_saves_total, mmaptail_cursor_save_errors_total
//	mmaptail_cursor_beyond_end           1 while the cursor (or --from) is past the log's newest record
//	mmaptail_log_up                      1 while the log is shipped, 0 once it stopped on an error
//
// Per host of the output (label host, HOST:PORT; for Kafka the seed
// brokers):
//
//	mmaptail_output_connected            connections up (Kafka: broker connections)
//	mmaptail_output_connects_total       connections made (reconnections are the rest after the first)
//	mmaptail_output_errors_total         failed connections, sends and acknowledgements
//	mmaptail_output_events_sent_total    events sent, resent ones included
//	mmaptail_output_events_acked_total   events the host acknowledged
//
// And for the whole shipper:
//
//	mmaptail_logs                        logs followed
//	mmaptail_output_events_dropped_total events dropped by the output's policy (Kafka: over the message size limit; Elasticsearch: refused for good, dead-lettered; OTLP: rejected by the receiver)
//	mmaptail_batch_latency_seconds       from publishing a batch to its acknowledgement
type Metrics struct {
	batchLatency prometheus.Histogram

	mu sync.Mutex
	s  *Shipper

	events, bytes, ackedSeq, lagRecords, lagSeconds, lost, damage, saves, saveErrors, beyond, up *prometheus.Desc
	connected, connects, errors, sent, acked, dropped, logs                                      *prometheus.Desc
}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	log := []string{"log"}
	host := []string{"host"}
	m := &Metrics{
		batchLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "mmaptail_batch_latency_seconds", Help: "Time from publishing a batch to its acknowledgement.",
			Buckets: prometheus.ExponentialBuckets(50e-6, 2.5, 14)}),
		events:     prometheus.NewDesc("mmaptail_events_shipped_total", "Events acknowledged by the output.", log, nil),
		bytes:      prometheus.NewDesc("mmaptail_bytes_shipped_total", "Bytes of JSON events acknowledged by the output.", log, nil),
		ackedSeq:   prometheus.NewDesc("mmaptail_acked_sequence", "Sequence number of the last record acknowledged by the output.", log, nil),
		lagRecords: prometheus.NewDesc("mmaptail_lag_records", "Records written to the log and not yet acknowledged by the output.", log, nil),
		lagSeconds: prometheus.NewDesc("mmaptail_lag_seconds", "While records are waiting: how long ago the last acknowledged record was written, an upper bound of how long the oldest waiting record has waited (0 when caught up).", log, nil),
		lost:       prometheus.NewDesc("mmaptail_records_lost_total", "Records lost to damage or retention before the shipper read them.", log, nil),
		damage:     prometheus.NewDesc("mmaptail_damage_total", "Damaged ranges the reader met.", log, nil),
		saves:      prometheus.NewDesc("mmaptail_cursor_saves_total", "Cursor saves.", log, nil),
		saveErrors: prometheus.NewDesc("mmaptail_cursor_save_errors_total", "Cursor saves that failed.", log, nil),
		beyond:     prometheus.NewDesc("mmaptail_cursor_beyond_end", "1 while the cursor (or --from) is past the newest record of the log: nothing is shipped until the log grows past it.", log, nil),
		up:         prometheus.NewDesc("mmaptail_log_up", "1 while the log is shipped, 0 once it stopped on an error.", log, nil),
		connected:  prometheus.NewDesc("mmaptail_output_connected", "Connections up to the host (Kafka: broker connections).", host, nil),
		connects:   prometheus.NewDesc("mmaptail_output_connects_total", "Connections made to the host (reconnections are the rest after the first).", host, nil),
		errors:     prometheus.NewDesc("mmaptail_output_errors_total", "Failed connection attempts, sends and acknowledgements of the host.", host, nil),
		sent:       prometheus.NewDesc("mmaptail_output_events_sent_total", "Events sent to the host, resent ones included.", host, nil),
		acked:      prometheus.NewDesc("mmaptail_output_events_acked_total", "Events the host acknowledged.", host, nil),
		dropped:    prometheus.NewDesc("mmaptail_output_events_dropped_total", "Events the output dropped by policy (Kafka: larger than the maximum message size; Elasticsearch: refused for good, dead-lettered; OTLP: rejected by the receiver), each reported on standard error.", nil, nil),
		logs:       prometheus.NewDesc("mmaptail_logs", "Logs followed.", nil, nil),
	}
	reg.MustRegister(m.batchLatency, m)
	return m
}

func (m *Metrics) attach(s *Shipper) {
	m.mu.Lock()
	m.s = s
	m.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.events, m.bytes, m.ackedSeq, m.lagRecords, m.lagSeconds, m.lost, m.damage, m.saves, m.saveErrors,
		m.beyond, m.up, m.connected, m.connects, m.errors, m.sent, m.acked, m.dropped, m.logs} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	s := m.s
	m.mu.Unlock()
	if s == nil {
		return
	}
	s.mu.Lock()
	logs := append([]*logShipper(nil), s.order...)
	s.mu.Unlock()
	counter := func(d *prometheus.Desc, v uint64, label string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), label)
	}
	gauge := func(d *prometheus.Desc, v float64, label string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, label)
	}
	for _, l := range logs {
		st := l.stats()
		counter(m.events, st.Acked, l.dir)
		counter(m.bytes, st.Bytes, l.dir)
		gauge(m.ackedSeq, float64(st.AckedSeq), l.dir)
		recs, secs := l.lag.get(l)
		gauge(m.lagRecords, recs, l.dir)
		gauge(m.lagSeconds, secs, l.dir)
		counter(m.lost, st.Lost, l.dir)
		counter(m.damage, st.Damage, l.dir)
		counter(m.saves, st.CursorSaves, l.dir)
		counter(m.saveErrors, st.SaveErrors, l.dir)
		gauge(m.beyond, b2f(st.BeyondEnd), l.dir)
		gauge(m.up, b2f(st.Err == nil), l.dir)
	}
	ch <- prometheus.MustNewConstMetric(m.logs, prometheus.GaugeValue, float64(len(logs)))
	os := s.cfg.Output.Stats()
	for _, h := range os.Hosts {
		gauge(m.connected, float64(h.Connected), h.Host)
		counter(m.connects, h.Connects, h.Host)
		counter(m.errors, h.Errors, h.Host)
		counter(m.sent, h.Sent, h.Host)
		counter(m.acked, h.Acked, h.Host)
	}
	ch <- prometheus.MustNewConstMetric(m.dropped, prometheus.CounterValue, float64(os.Dropped))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// lagCache is a log's lag, found by comparing the newest record of the log
// with the last acknowledged one. Finding the newest record scans the
// active segment, so the result is reused for a second.
type lagCache struct {
	mu         sync.Mutex
	at         time.Time
	recs, secs float64
}

func (c *lagCache) get(l *logShipper) (records, seconds float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.at) < time.Second {
		return c.recs, c.secs
	}
	c.at = time.Now()
	end, err := tail.End(l.dir)
	if err != nil || end.NextSeq == 0 {
		return c.recs, c.secs
	}
	acked := l.ackedSeq.Load()
	c.recs, c.secs = 0, 0
	if newest := end.NextSeq - 1; newest > acked {
		c.recs = float64(newest - acked)
		if seq := l.beyond.Load(); seq != 0 {
			c.recs = 0 // nothing will be shipped until the log passes seq
			return c.recs, c.secs
		}
		// The oldest unacknowledged record was written after the last
		// acknowledged one; its own time is not known without reading it.
		if t := int64(l.lastTime.Load()); t > 0 {
			c.secs = time.Since(time.Unix(0, t)).Seconds()
		} else if end.FirstTime > 0 {
			c.secs = time.Since(time.Unix(0, end.FirstTime)).Seconds()
		}
	}
	return c.recs, c.secs
}
