package rotate

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestActionReasons: each Action says which rule made it, with the figures
// the rule compared as fields, and reads for people as before.
func TestActionReasons(t *testing.T) {
	dir := t.TempDir()
	makeRolled(t, dir, 1, 2, 3, 4, 5, 6)
	old := time.Now().Add(-2 * time.Hour)
	os.Chtimes(filepath.Join(dir, SegmentName(4)), old, old)
	pool := NewPool(dir, segSize, 1)
	defer pool.Close()
	r := Retention{MaxBackups: 3, MaxTotalSize: 4*segSize + segSize/2, MaxAge: time.Hour, Pool: pool}
	res, err := r.Apply(dir, State{Active: 6, Finished: 6, Reserve: segSize}, time.Now(), true)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		reason Reason
		text   string
	}{
		{Reason{Rule: RuleMaxBackups, MaxBackups: 3, Pooled: true}, "more than MaxBackups=3 rolled segments (file kept for reuse)"},
		{Reason{Rule: RuleMaxBackups, MaxBackups: 3}, "more than MaxBackups=3 rolled segments"},
		{Reason{Rule: RuleMaxTotalSize, Bytes: 5 * segSize, MaxTotalSize: r.MaxTotalSize}, "log takes 327680 bytes, over MaxTotalSize=294912"},
		{Reason{Rule: RuleMaxAge, MaxAge: time.Hour}, "rolled more than MaxAge=1h0m0s ago"},
	}
	if len(res.Actions) != len(want) {
		t.Fatalf("actions %v, want %d", res.Actions, len(want))
	}
	for i, a := range res.Actions {
		if a.Path != filepath.Join(dir, SegmentName(uint64(i+1))) || a.Op != OpRemoved || a.Reason != want[i].reason || a.Reason.String() != want[i].text {
			t.Errorf("action %d: %s %v %+v (%q), want segment %d removed for %+v (%q)", i, a.Path, a.Op, a.Reason, a.Reason, i+1, want[i].reason, want[i].text)
		}
	}
	kept := Reason{Rule: RuleMaxTotalSize, Bytes: 1000, MaxTotalSize: 900, Keep: 42}
	if got, want := kept.String(), "log takes 1000 bytes, over MaxTotalSize=900 (records from 42 on are kept for a consumer: KeepUnshipped)"; got != want {
		t.Errorf("%q, want %q", got, want)
	}
	if got, want := (Reason{Rule: RuleCompress}).String(), "Compress"; got != want {
		t.Errorf("%q, want %q", got, want)
	}
}
