package mmapzap_test

import (
	"fmt"
	"os"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/mmaplog/mmaplog/mmaplog"
	"github.com/mmaplog/mmaplog/mmaplog/mmapzap"
	"github.com/mmaplog/mmaplog/tail"
)

// A zap logger writing into mmaplog, each entry's level in its record.
func ExampleNewCore() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)

	w, err := mmaplog.Open(dir, nil)
	if err != nil {
		panic(err)
	}
	cfg := zap.NewProductionEncoderConfig()
	cfg.TimeKey = "" // keep the example's output stable
	logger := zap.New(mmapzap.NewCore(zapcore.NewJSONEncoder(cfg), w, zap.InfoLevel))
	logger.Info("order placed", zap.Int("order", 1042))
	logger.Warn("card declined", zap.String("user", "u-7"))
	logger.Sync()
	w.Close()

	r, err := tail.Open(dir, nil)
	if err != nil {
		panic(err)
	}
	defer r.Close()
	for r.Next() {
		rec := r.Record()
		fmt.Printf("%d %-5s %s\n", rec.Seq, mmaplog.Level(rec.Type), rec.Payload)
	}
	// Output:
	// 1 info  {"level":"info","msg":"order placed","order":1042}
	// 2 warn  {"level":"warn","msg":"card declined","user":"u-7"}
}
