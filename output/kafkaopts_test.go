package output_test

import (
	"strings"
	"testing"

	"github.com/mmaplog/mmaplog/output"
)

// TestKafkaWords: every word of the help strings reads into a value whose
// String is the word again; "" reads as the zero value, the default; any
// other word is refused, naming what is wanted.
func TestKafkaWords(t *testing.T) {
	check := func(what, words string, parse func(string) (string, error)) {
		t.Helper()
		for _, w := range strings.Split(words, "|") {
			got, err := parse(w)
			if err != nil || got != w {
				t.Errorf("%s %q: read as %q (%v)", what, w, got, err)
			}
		}
		if _, err := parse("bogus"); err == nil || !strings.Contains(err.Error(), words) {
			t.Errorf("%s \"bogus\": error %v, want one naming %s", what, err, words)
		}
	}
	check("acks", output.KafkaAcks, func(s string) (string, error) { v, err := output.ParseKafkaAck(s); return v.String(), err })
	check("compression", output.KafkaCompressions, func(s string) (string, error) { v, err := output.ParseKafkaCompression(s); return v.String(), err })
	check("partitioner", output.KafkaPartitioners, func(s string) (string, error) { v, err := output.ParseKafkaPartitioner(s); return v.String(), err })
	check("sasl", output.KafkaSASLs, func(s string) (string, error) { v, err := output.ParseKafkaSASL(s); return v.String(), err })

	var zero output.KafkaOptions
	if zero.Acks != output.KafkaAckAll || zero.Compression != output.KafkaGzip || zero.Partitioner != output.KafkaHash ||
		zero.SASL != output.KafkaSASLDefault || zero.Key != output.KafkaKeyNone {
		t.Errorf("the zero KafkaOptions are not the defaults: %+v", zero)
	}
	for _, s := range []string{"", "none", "offset", "service.name", "user"} {
		k, err := output.ParseKafkaKey(s)
		want := s
		if s == "" {
			want = "none"
		}
		if err != nil || k.String() != want {
			t.Errorf("key %q: read as %v (%v)", s, k, err)
		}
	}
	if k, _ := output.ParseKafkaKey("service.name"); k.Field() != "service.name" {
		t.Errorf("key service.name: field %q", k.Field())
	}
	for _, s := range []string{".a", "a.", "a..b"} {
		if _, err := output.ParseKafkaKey(s); err == nil {
			t.Errorf("key %q: accepted", s)
		}
	}
}
