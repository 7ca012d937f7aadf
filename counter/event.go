package counter

import (
	"strconv"
	"time"

	"github.com/mmaplog/mmaplog/internal/ecs"
	"github.com/mmaplog/mmaplog/internal/jsonenc"
)

// EventMeta is what every event of one collection shares.
type EventMeta struct {
	Time   time.Time // when the collection was made
	Host   string    // the collecting machine
	Region string    // the source's address, e.g. "vcs:0x3eeff00"
}

// AppendEvent appends the JSON event for d, one line without a newline,
// and returns the extended buffer:
//
//	{"@timestamp":"2024-05-01T12:00:00.000Z","timestamp":1714564800000,
//	 "type":"counter","region":"shm:app","rule":12,"metric":3,
//	 "value":5,"total":1234,"rule_name":"http","labels":{"route":"/"},
//	 "metric_name":"status_5xx",
//	 "agent":{"name":"web-1","type":"mmaptail","version":"v1.2.0"},
//	 "ecs":{"version":"8.11.0"},"host":{"name":"web-1"}}
//
// "total", "rule_name", "labels" and "metric_name" are left out when
// unknown. The pseudo-counter of Adds outside the shape has type
// "counter_overflow" and no rule or metric. "timestamp" (Unix milliseconds)
// is the field the VCS design's records carry. host, agent and ecs are the
// members every event mmaptail ships has, log events too (host.name as an
// object, as the Elastic Common Schema maps it), so that both kinds of
// events fit one Elasticsearch index.
func AppendEvent(dst []byte, d Delta, meta EventMeta) []byte {
	ts := meta.Time.UTC()
	dst = append(dst, `{"@timestamp":"`...)
	dst = ts.AppendFormat(dst, "2006-01-02T15:04:05.000Z07:00")
	dst = append(dst, `","timestamp":`...)
	dst = strconv.AppendInt(dst, ts.UnixMilli(), 10)
	if d.Overflow {
		dst = append(dst, `,"type":"counter_overflow"`...)
	} else {
		dst = append(dst, `,"type":"counter"`...)
	}
	dst = append(dst, `,"region":`...)
	dst = jsonenc.AppendString(dst, meta.Region)
	if !d.Overflow {
		dst = append(dst, `,"rule":`...)
		dst = strconv.AppendInt(dst, int64(d.Rule), 10)
		dst = append(dst, `,"metric":`...)
		dst = strconv.AppendInt(dst, int64(d.Metric), 10)
	}
	dst = append(dst, `,"value":`...)
	dst = strconv.AppendUint(dst, d.Value, 10)
	if d.Total != 0 {
		dst = append(dst, `,"total":`...)
		dst = strconv.AppendUint(dst, d.Total, 10)
	}
	if d.RuleName != "" {
		dst = append(dst, `,"rule_name":`...)
		dst = jsonenc.AppendString(dst, d.RuleName)
	}
	if len(d.Labels) > 0 {
		dst = append(dst, `,"labels":{`...)
		for i, l := range d.Labels {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = jsonenc.AppendString(dst, l.Name)
			dst = append(dst, ':')
			dst = jsonenc.AppendString(dst, l.Value)
		}
		dst = append(dst, '}')
	}
	if d.MetricName != "" {
		dst = append(dst, `,"metric_name":`...)
		dst = jsonenc.AppendString(dst, d.MetricName)
	}
	dst = ecs.AppendMembers(dst, meta.Host)
	return append(dst, '}')
}
