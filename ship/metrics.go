package ship

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mmaplog/mmaplog/output"
	"github.com/mmaplog/mmaplog/tail"
)

// Metrics are a shipper's Prometheus metrics:
//
//	mmaptail_events_shipped_total        events acknowledged by the output
//	mmaptail_bytes_shipped_total         bytes of JSON acknowledged
//	mmaptail_acked_sequence              sequence number of the last acknowledged record
//	mmaptail_lag_records                 records written and not yet acknowledged
//	mmaptail_lag_seconds                 while behind: how long ago the last acknowledged record was written (0 when caught up)
//	mmaptail_records_lost_total          records lost to damage or retention before being read
//	mmaptail_damage_total                damaged ranges met
//	mmaptail_output_connects_total       connections made by the output
//	mmaptail_output_errors_total         failed connections, sends and acknowledgements
//	mmaptail_output_connected            1 while the output is connected
//	mmaptail_batch_latency_seconds       from publishing a batch to its acknowledgement
//	mmaptail_cursor_saves_total, mmaptail_cursor_save_errors_total
type Metrics struct {
	events, bytes, lost, damage, saves, saveErrors prometheus.Counter
	ackedSeq                                       prometheus.Gauge
	batchLatency                                   prometheus.Histogram
	lastTime                                       atomic.Int64

	mu  sync.Mutex
	s   *Shipper
	out output.Output

	lagMu   sync.Mutex
	lagAt   time.Time
	lagRecs float64
	lagSecs float64
}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		events:     prometheus.NewCounter(prometheus.CounterOpts{Name: "mmaptail_events_shipped_total", Help: "Events acknowledged by the output."}),
		bytes:      prometheus.NewCounter(prometheus.CounterOpts{Name: "mmaptail_bytes_shipped_total", Help: "Bytes of JSON events acknowledged by the output."}),
		lost:       prometheus.NewCounter(prometheus.CounterOpts{Name: "mmaptail_records_lost_total", Help: "Records lost to damage or retention before the shipper read them."}),
		damage:     prometheus.NewCounter(prometheus.CounterOpts{Name: "mmaptail_damage_total", Help: "Damaged ranges the reader met."}),
		saves:      prometheus.NewCounter(prometheus.CounterOpts{Name: "mmaptail_cursor_saves_total", Help: "Cursor saves."}),
		saveErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "mmaptail_cursor_save_errors_total", Help: "Cursor saves that failed."}),
		ackedSeq:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "mmaptail_acked_sequence", Help: "Sequence number of the last record acknowledged by the output."}),
		batchLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "mmaptail_batch_latency_seconds", Help: "Time from publishing a batch to its acknowledgement.",
			Buckets: prometheus.ExponentialBuckets(50e-6, 2.5, 14)}),
	}
	reg.MustRegister(m.events, m.bytes, m.lost, m.damage, m.saves, m.saveErrors, m.ackedSeq, m.batchLatency,
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "mmaptail_output_connects_total", Help: "Connections made by the output (reconnections are the rest after the first)."},
			func() float64 { return float64(m.outStats().Connects) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "mmaptail_output_errors_total", Help: "Failed connection attempts, sends and acknowledgements of the output."},
			func() float64 { return float64(m.outStats().Errors) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "mmaptail_output_connected", Help: "1 while the output is connected."},
			func() float64 {
				if m.outStats().Connected {
					return 1
				}
				return 0
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "mmaptail_lag_records", Help: "Records written to the log and not yet acknowledged by the output."},
			func() float64 { r, _ := m.lag(); return r }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "mmaptail_lag_seconds", Help: "While records are waiting: how long ago the last acknowledged record was written, an upper bound of how long the oldest waiting record has waited (0 when caught up)."},
			func() float64 { _, s := m.lag(); return s }),
	)
	return m
}

func (m *Metrics) attach(s *Shipper) {
	m.mu.Lock()
	m.s, m.out = s, s.cfg.Output
	m.mu.Unlock()
}

func (m *Metrics) outStats() output.Stats {
	m.mu.Lock()
	out := m.out
	m.mu.Unlock()
	if out == nil {
		return output.Stats{}
	}
	return out.Stats()
}

// lag compares the newest record of the log with the last acknowledged
// one. Finding the newest record scans the active segment, so the result
// is reused for a second.
func (m *Metrics) lag() (records, seconds float64) {
	m.mu.Lock()
	s := m.s
	m.mu.Unlock()
	if s == nil {
		return 0, 0
	}
	m.lagMu.Lock()
	defer m.lagMu.Unlock()
	if time.Since(m.lagAt) < time.Second {
		return m.lagRecs, m.lagSecs
	}
	m.lagAt = time.Now()
	end, err := tail.End(s.cfg.Dir)
	if err != nil || end.NextSeq == 0 {
		return m.lagRecs, m.lagSecs
	}
	acked := s.ackedSeq.Load()
	m.lagRecs, m.lagSecs = 0, 0
	if newest := end.NextSeq - 1; newest > acked {
		m.lagRecs = float64(newest - acked)
		// The oldest unacknowledged record was written after the last
		// acknowledged one; its own time is not known without reading it.
		if t := m.lastTime.Load(); t > 0 {
			m.lagSecs = time.Since(time.Unix(0, t)).Seconds()
		} else if end.FirstTime > 0 {
			m.lagSecs = time.Since(time.Unix(0, end.FirstTime)).Seconds()
		}
	}
	return m.lagRecs, m.lagSecs
}
