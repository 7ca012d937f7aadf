package counter_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/mmaplog/mmaplog/counter"
	"github.com/mmaplog/mmaplog/internal/ecs"
)

func TestAppendEvent(t *testing.T) {
	d := counter.Delta{Rule: 12, Metric: 3, Value: 5, Total: 9, RuleName: "we\"ird\n", Labels: []counter.Label{{Name: "k", Value: "v\x01"}}, MetricName: "m\xff"}
	b := counter.AppendEvent(nil, d, counter.EventMeta{Time: time.Unix(1714564800, 123e6), Host: "h", Region: "shm:x"})
	var ev map[string]any
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	want := `{"@timestamp":"2024-05-01T12:00:00.123Z","timestamp":1714564800123,"type":"counter","region":"shm:x","rule":12,"metric":3,"value":5,"total":9,"rule_name":"we\"ird\n","labels":{"k":"v\u0001"},"metric_name":"m\ufffd",` +
		`"agent":{"name":"h","type":"mmaptail","version":"` + ecs.AgentVersion() + `"},"ecs":{"version":"` + ecs.Version + `"},"host":{"name":"h"}}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
}
