package output

import (
	"testing"
	"time"
)

// TestAckRate: the estimate follows the events acknowledged per second,
// and a span longer than a second (an idle output) starts it over instead
// of averaging the idle time in.
func TestAckRate(t *testing.T) {
	var r ackRate
	t0 := time.Unix(1000, 0)
	for i := 0; i <= 100; i++ { // 1000 events every 10 ms: 100k/s
		r.add(t0.Add(time.Duration(i)*10*time.Millisecond), 1000)
	}
	if r.perSecond < 90e3 || r.perSecond > 125e3 {
		t.Fatalf("1000 events every 10 ms: %.0f/s, want about 100k/s", r.perSecond)
	}
	idle := t0.Add(time.Minute)
	r.add(idle, 10)
	r.add(idle.Add(10*time.Millisecond), 10)
	if r.perSecond < 90e3 {
		t.Fatalf("an idle minute was averaged in: %.0f/s", r.perSecond)
	}
	for i := 0; i <= 100; i++ { // then 100 events every 10 ms: 10k/s
		r.add(idle.Add(time.Duration(20+10*i)*time.Millisecond), 100)
	}
	if r.perSecond < 9e3 || r.perSecond > 12.5e3 {
		t.Fatalf("100 events every 10 ms: %.0f/s, want about 10k/s", r.perSecond)
	}
}

// TestLimit: a source alone gets BulkMaxSize; while another has batches
// waiting or published within shareSpan, about shareWindowTime of the
// measured rate, between minShared and SharedBulkMaxSize.
func TestLimit(t *testing.T) {
	now := time.Unix(1000, 0)
	e := &engine{opts: (&Options{BulkMaxSize: 2048}).resolve()}
	a, b := &source{e: e}, &source{e: e}
	e.sources = []*source{a, b}
	check := func(what string, want int) {
		t.Helper()
		if got := e.limit(now); got != want {
			t.Errorf("%s: limit %d, want %d", what, got, want)
		}
	}
	a.last = now
	check("one source publishing", 2048)
	b.last = now.Add(-shareSpan - time.Second)
	check("the other published long ago", 2048)
	b.last = now.Add(-time.Second)
	check("both published lately, no rate yet", 512)
	e.rate.perSecond = 300e3
	check("300k events/s", 300)
	e.rate.perSecond = 10e6
	check("10M events/s", 512)
	e.rate.perSecond = 1e3
	check("1k events/s", minShared)
	b.last = time.Time{}
	e.ready = []*source{a, b}
	check("both waiting", minShared)
	e.opts.SharedBulkMaxSize = 2048
	check("SharedBulkMaxSize = BulkMaxSize", 2048)
}
