package tail_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/mmaplog/mmaplog/mmaplog"
	"github.com/mmaplog/mmaplog/tail"
)

// Follow a log while it is written, as a shipper in another process would.
func ExampleReader_follow() {
	dir, _ := os.MkdirTemp("", "mmaplog-example-")
	defer os.RemoveAll(dir)
	w, err := mmaplog.Open(dir, nil)
	if err != nil {
		panic(err)
	}
	defer w.Close()
	r, err := tail.Open(dir, &tail.Options{Follow: true})
	if err != nil {
		panic(err)
	}
	defer r.Close()
	go func() {
		for _, s := range []string{"one", "two", "three"} {
			w.Write([]byte(s))
			time.Sleep(time.Millisecond)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for n := 0; n < 3; {
		for r.Next() {
			fmt.Printf("%d %s\n", r.Record().Seq, r.Record().Payload)
			n++
		}
		if err := r.Err(); err != nil {
			panic(err)
		}
		if r.Wait(ctx) != nil {
			break
		}
	}
	// Output:
	// 1 one
	// 2 two
	// 3 three
}

// Save where a consumer stopped, and go on from there later.
func ExampleCursor() {
	dir, _ := os.MkdirTemp("", "mmaplog-example-")
	defer os.RemoveAll(dir)
	w, _ := mmaplog.Open(dir, nil)
	for _, s := range []string{"a", "b", "c"} {
		w.Write([]byte(s))
	}
	id := w.LogID()
	w.Close()

	path := tail.CursorPath(dir, "example")
	if err := (tail.Cursor{LogID: id, NextSeq: 3}).Save(path); err != nil {
		panic(err)
	}
	c, err := tail.LoadCursor(path)
	if err != nil {
		panic(err)
	}
	o := c.Options()
	r, _ := tail.Open(dir, &o)
	defer r.Close()
	for r.Next() {
		fmt.Printf("%s\n", r.Record().Payload)
	}
	// Output:
	// c
}

// Start where the command line says: "begin", "end" or a sequence number.
func ExampleParseStart() {
	for _, s := range []string{"begin", "end", "42", "soon"} {
		start, err := tail.ParseStart(s)
		if err != nil {
			fmt.Println(err)
			continue
		}
		var o tail.Options
		start.Apply(&o)
		fmt.Printf("%s: FromSeq %d, FromEnd %v\n", start, o.FromSeq, o.FromEnd)
	}
	// Output:
	// begin: FromSeq 0, FromEnd false
	// end: FromSeq 0, FromEnd true
	// 42: FromSeq 42, FromEnd false
	// start "soon": want begin, end or a sequence number (1 or more)
}

// Tell a crashed writer's unfinished writes (no record lost) from damage.
func ExampleDamageKind() {
	for _, k := range []tail.DamageKind{tail.DamageCorrupt, tail.DamageHole, tail.DamageUnfinished, tail.DamageRemoved, tail.DamageRepaired} {
		fmt.Printf("%s: corruption %v\n", k, k.Corruption())
	}
	// Output:
	// corrupt: corruption true
	// hole: corruption true
	// unfinished write: corruption false
	// removed by retention: corruption false
	// repaired earlier: corruption false
}

// Tell an operator that the writer has stopped in the middle of a write
// (OnStall), as a shipper does: nothing after the record is read until it
// is written, and nothing is skipped.
func ExampleStall() {
	o := tail.Options{Follow: true, OnStall: func(s tail.Stall) { fmt.Println(s) }}
	// What OnStall is told while the writer (process 4242) stays stopped,
	// and once it has gone on:
	s := tail.Stall{Path: "/var/log/app/0000000000000007.mlog", Offset: 4096, Seq: 1234, PID: 4242, Waited: 10 * time.Second}
	o.OnStall(s)
	s.Over, s.Published, s.Waited = true, true, 35*time.Second
	o.OnStall(s)
	// Output:
	// /var/log/app/0000000000000007.mlog: record 1234 at offset 4096, reserved by the writer (process 4242), which holds the log's lock, is not written after 10s: waiting for it, reading nothing after it (is the writer stopped: SIGSTOP, a paused container, a debugger? resume it; a writer that exits lets readers go on)
	// /var/log/app/0000000000000007.mlog: record 1234 at offset 4096 written after a wait of 35s: reading on
}
