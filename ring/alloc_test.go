package ring

import (
	"testing"
)

// Writing a record must not allocate: Write's zero-allocation promise rests
// on it.
func TestPutRecordDoesNotAllocate(t *testing.T) {
	p := []byte(`{"level":"info","msg":"order placed"}`)
	dst := make([]byte, RecordSize(len(p)))
	if n := testing.AllocsPerRun(1000, func() { PutRecord(dst, 7, 1, 1, p) }); n != 0 {
		t.Fatalf("PutRecord: %v allocations per record, want 0", n)
	}
}
