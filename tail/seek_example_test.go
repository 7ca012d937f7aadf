package tail_test

import (
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/mmaplog/mmaplog/mmaplog"
	"github.com/mmaplog/mmaplog/ring"
	"github.com/mmaplog/mmaplog/tail"
)

// Read the records written since a time, at warn level or above, without
// reading the log from its start.
func ExampleOptions_since() {
	dir, _ := os.MkdirTemp("", "mmaplog-example-")
	defer os.RemoveAll(dir)
	// Records a minute apart, from a clock of the example's own.
	start := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	var now atomic.Int64
	w, _ := mmaplog.Open(dir, &mmaplog.Options{Clock: func() time.Time { return time.Unix(0, now.Load()) }})
	for i, l := range []mmaplog.Level{mmaplog.LevelInfo, mmaplog.LevelError, mmaplog.LevelWarn, mmaplog.LevelInfo, mmaplog.LevelError} {
		now.Store(start.Add(time.Duration(i) * time.Minute).UnixNano())
		w.Append(l, []byte(fmt.Sprintf("event %d", i)))
	}
	w.Close()

	r, err := tail.Open(dir, &tail.Options{Since: start.Add(2 * time.Minute), MinLevel: ring.LevelWarn})
	if err != nil {
		panic(err)
	}
	defer r.Close()
	for r.Next() {
		rec := r.Record()
		fmt.Println(time.Unix(0, rec.Time).UTC().Format(time.TimeOnly), ring.Level(rec.Type), string(rec.Payload))
	}
	// Output:
	// 12:02:00 warn event 2
	// 12:04:00 error event 4
}

// The last two records, newest first.
func ExampleOpenReverse() {
	dir, _ := os.MkdirTemp("", "mmaplog-example-")
	defer os.RemoveAll(dir)
	w, _ := mmaplog.Open(dir, nil)
	for _, s := range []string{"a", "b", "c", "d"} {
		w.Write([]byte(s))
	}
	w.Close()

	r, err := tail.OpenReverse(dir, &tail.Options{Last: 2})
	if err != nil {
		panic(err)
	}
	defer r.Close()
	for r.Next() {
		fmt.Println(r.Record().Seq, string(r.Record().Payload))
	}
	// Output:
	// 4 d
	// 3 c
}
