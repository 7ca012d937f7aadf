// Package prom exports counters to Prometheus: a prometheus.Collector that
// reads a counter source at every scrape.
//
// Each counter becomes one sample of a Prometheus counter. A rule with a
// name (counter.Map.Describe) becomes a metric family of that name (made a
// valid metric name, with "_total" appended), labelled with the metric
// index's name (label "metric"), the rule id (label "rule") and the rule's
// own labels. Unnamed rules go to mmaplog_counter_total{rule, metric}. Adds
// outside the map's shape are mmaplog_counter_overflow_total.
package prom

import (
	"sort"
	"strconv"
	"strings"

	"github.com/mmaplog/mmaplog/counter"
	"github.com/prometheus/client_golang/prometheus"
)

// Collector is a prometheus.Collector over a counter source. It is
// "unchecked" (Describe sends nothing), since the families depend on the
// names producers store at run time.
type Collector struct {
	region string
	read   func() ([]counter.Delta, error)
	total  bool
}

// New returns a Collector for the counters at region (its address, for
// help texts). read returns the counters at each scrape; with useTotal the
// value exported is Delta.Total (a counter map's own monotonic totals),
// otherwise Delta.Value (sums accumulated by a counter.Collector, for VCS
// segments, whose counters are emptied as they are collected).
func New(region string, read func() ([]counter.Delta, error), useTotal bool) *Collector {
	return &Collector{region: region, read: read, total: useTotal}
}

// Describe sends nothing: the collector is unchecked.
func (c *Collector) Describe(chan<- *prometheus.Desc) {}

type sample struct {
	labels map[string]string
	value  float64
}

// Collect reads the counters and sends one constant counter per counter.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ds, err := c.read()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(prometheus.NewDesc("mmaplog_counter_error", "reading "+c.region+" failed", nil, nil), err)
		return
	}
	families := map[string][]sample{}
	for _, d := range ds {
		v := d.Value
		if c.total {
			v = d.Total
		}
		if d.Overflow {
			families["mmaplog_counter_overflow_total"] = append(families["mmaplog_counter_overflow_total"], sample{map[string]string{}, float64(v)})
			continue
		}
		metric := d.MetricName
		if metric == "" {
			metric = strconv.Itoa(d.Metric)
		}
		l := map[string]string{"rule": strconv.Itoa(d.Rule), "metric": metric}
		name := "mmaplog_counter_total"
		if d.RuleName != "" {
			name = MetricName(d.RuleName)
			for _, lb := range d.Labels {
				k := LabelName(lb.Name)
				if _, taken := l[k]; taken {
					k = "label_" + k
				}
				l[k] = lb.Value
			}
		}
		families[name] = append(families[name], sample{l, float64(v)})
	}
	for name, ss := range families {
		// One family must have one set of label names: take the union,
		// missing values are empty (which Prometheus treats as absent).
		keys := map[string]bool{}
		for _, s := range ss {
			for k := range s.labels {
				keys[k] = true
			}
		}
		names := make([]string, 0, len(keys))
		for k := range keys {
			names = append(names, k)
		}
		sort.Strings(names)
		desc := prometheus.NewDesc(name, "mmaplog counters from "+c.region, names, nil)
		for _, s := range ss {
			vals := make([]string, len(names))
			for i, k := range names {
				vals[i] = s.labels[k]
			}
			m, err := prometheus.NewConstMetric(desc, prometheus.CounterValue, s.value, vals...)
			if err != nil {
				m = prometheus.NewInvalidMetric(desc, err)
			}
			ch <- m
		}
	}
}

// MetricName turns a rule name into a valid Prometheus counter name ending
// in "_total": characters outside [a-zA-Z0-9_:] become '_', and a leading
// digit gets a '_' before it.
func MetricName(s string) string {
	s = sanitize(s, true)
	if !strings.HasSuffix(s, "_total") {
		s += "_total"
	}
	return s
}

// LabelName turns a label key into a valid Prometheus label name (no ':',
// no leading "__", which Prometheus reserves).
func LabelName(s string) string {
	s = sanitize(s, false)
	for strings.HasPrefix(s, "__") {
		s = s[1:]
	}
	return s
}

func sanitize(s string, colon bool) string {
	if s == "" {
		return "_"
	}
	b := []byte(s)
	for i, c := range b {
		ok := c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || colon && c == ':'
		if !ok {
			b[i] = '_'
		}
	}
	if b[0] >= '0' && b[0] <= '9' {
		return "_" + string(b)
	}
	return string(b)
}
