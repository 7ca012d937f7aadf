package prom

import (
	"errors"
	"testing"

	"github.com/mmaplog/mmaplog/counter"
	"github.com/prometheus/client_golang/prometheus"
)

func TestNames(t *testing.T) {
	for in, want := range map[string]string{"http_requests": "http_requests_total", "jobs_total": "jobs_total", "9 lives/x": "_9_lives_x_total", "a:b": "a:b_total"} {
		if got := MetricName(in); got != want {
			t.Errorf("MetricName(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{"route": "route", "__name": "_name", "a:b-c": "a_b_c", "": "_"} {
		if got := LabelName(in); got != want {
			t.Errorf("LabelName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestGather: rules of one name with different label keys share a family
// (missing labels empty); totals or accumulated values are exported as
// asked; a read error is a scrape error, not a crash.
func TestGather(t *testing.T) {
	ds := []counter.Delta{
		{Rule: 1, Metric: 0, Value: 2, Total: 10, RuleName: "jobs", Labels: []counter.Label{{Name: "queue", Value: "high"}}, MetricName: "done"},
		{Rule: 2, Metric: 0, Value: 3, Total: 20, RuleName: "jobs", Labels: []counter.Label{{Name: "pool", Value: "a"}, {Name: "rule", Value: "clash"}}},
		{Rule: 3, Metric: 4, Value: 1, Total: 5},
		{Rule: -1, Metric: -1, Value: 6, Total: 6, Overflow: true},
	}
	for _, useTotal := range []bool{true, false} {
		reg := prometheus.NewRegistry()
		reg.MustRegister(New("shm:x", func() ([]counter.Delta, error) { return ds, nil }, useTotal))
		fams, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]float64{}
		for _, f := range fams {
			for _, m := range f.GetMetric() {
				key := f.GetName()
				for _, l := range m.GetLabel() {
					key += "," + l.GetName() + "=" + l.GetValue()
				}
				got[key] = m.GetCounter().GetValue()
			}
		}
		pick := func(total, value uint64) float64 {
			if useTotal {
				return float64(total)
			}
			return float64(value)
		}
		want := map[string]float64{
			"jobs_total,label_rule=,metric=done,pool=,queue=high,rule=1": pick(10, 2),
			"jobs_total,label_rule=clash,metric=0,pool=a,queue=,rule=2":  pick(20, 3),
			"mmaplog_counter_total,metric=4,rule=3":                      pick(5, 1),
			"mmaplog_counter_overflow_total":                             6,
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("useTotal %v: %s = %v, want %v (got %v)", useTotal, k, got[k], v, got)
			}
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(New("shm:x", func() ([]counter.Delta, error) { return nil, errors.New("boom") }, true))
	if _, err := reg.Gather(); err == nil {
		t.Fatal("a read error did not fail the scrape")
	}
}
