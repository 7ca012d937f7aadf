package mmaplog_test

import (
	"fmt"
	"os"

	"github.com/rs/zerolog"

	"github.com/mmaplog/mmaplog/mmaplog"
	"github.com/mmaplog/mmaplog/tail"
)

// printLog prints every record of the log in dir with its level.
func printLog(dir string) {
	r, err := tail.Open(dir, nil)
	if err != nil {
		panic(err)
	}
	defer r.Close()
	for r.Next() {
		rec := r.Record()
		fmt.Printf("%d %-5s %s\n", rec.Seq, mmaplog.Level(rec.Type), rec.Payload)
	}
}

func Example() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)

	w, err := mmaplog.Open(dir, nil) // nil: the documented defaults
	if err != nil {
		panic(err)
	}
	fmt.Fprintln(w, "hello from mmaplog") // one Write, one record
	w.Close()

	printLog(dir)
	// Output:
	// 1       hello from mmaplog
}

// A zerolog logger writing into mmaplog: the Writer is a
// zerolog.LevelWriter, so each event's level goes into the record.
func Example_zerolog() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)

	w, err := mmaplog.Open(dir, nil)
	if err != nil {
		panic(err)
	}
	log := zerolog.New(w).With().Str("service", "checkout").Logger()
	log.Info().Int("order", 1042).Msg("order placed")
	log.Warn().Str("user", "u-7").Msg("card declined")
	w.Close()

	printLog(dir)
	// Output:
	// 1 info  {"level":"info","service":"checkout","order":1042,"message":"order placed"}
	// 2 warn  {"level":"warn","service":"checkout","user":"u-7","message":"card declined"}
}

// Append returns the record's sequence number, which readers see too.
func ExampleWriter_Append() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)

	w, _ := mmaplog.Open(dir, nil)
	seq, _ := w.Append(mmaplog.LevelError, []byte("disk almost full"))
	fmt.Println("appended as", seq)
	w.Close()

	printLog(dir)
	// Output:
	// appended as 1
	// 1 error disk almost full
}

// After a crash, Open repairs the log and reports what it did.
func ExampleWriter_Recovery() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)

	w, _ := mmaplog.Open(dir, nil)
	w.Close()
	w, _ = mmaplog.Open(dir, nil)
	fmt.Println(len(w.Recovery()), "repairs after a clean Close")
	w.Close()
	// Output:
	// 0 repairs after a clean Close
}
