package mmaplog_test

import (
	"log/slog"
	"os"

	"github.com/mmaplog/mmaplog/mmaplog"
)

// A log/slog logger writing into mmaplog: SlogHandler writes what
// slog.JSONHandler would, and puts each record's level into the record.
func ExampleNewSlogHandler() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)

	w, err := mmaplog.Open(dir, nil)
	if err != nil {
		panic(err)
	}
	log := slog.New(mmaplog.NewSlogHandler(w, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{} // keep the example's output stable
			}
			return a
		},
	})).With("service", "checkout")
	log.Info("order placed", "order", 1042)
	log.Warn("card declined", slog.Group("user", "id", "u-7"))
	w.Close()

	printLog(dir)
	// Output:
	// 1 info  {"level":"INFO","msg":"order placed","service":"checkout","order":1042}
	// 2 warn  {"level":"WARN","msg":"card declined","service":"checkout","user":{"id":"u-7"}}
}
