package ship_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/mmaplog/mmaplog/output"
	"github.com/mmaplog/mmaplog/ship"
	"github.com/mmaplog/mmaplog/tail"
)

// An Encoder turns a record into the event shipped for it.
func ExampleEncoder() {
	e, err := ship.NewEncoder("/var/log/myapp", "web-1", map[string]string{"service.name": "checkout"})
	if err != nil {
		panic(err)
	}
	ts := time.Date(2026, 1, 2, 3, 4, 5, 678901000, time.UTC).UnixNano()
	fmt.Println(string(e.Append(nil, tail.Record{Seq: 42, Time: ts, Type: 3, Payload: []byte(`{"level":"info","message":"order placed"}`)})))
	fmt.Println(string(e.Append(nil, tail.Record{Seq: 43, Time: ts, Payload: []byte(`GET /cart 200`)})))
	// Output:
	// {"level":"info","message":"order placed","@timestamp":"2026-01-02T03:04:05.678901Z","log":{"offset":42,"file":{"path":"/var/log/myapp"},"level":"info"},"agent":{"name":"web-1","type":"mmaptail","version":"devel"},"ecs":{"version":"8.11.0"},"host":{"name":"web-1"},"service":{"name":"checkout"}}
	// {"message":"GET /cart 200","@timestamp":"2026-01-02T03:04:05.678901Z","log":{"offset":43,"file":{"path":"/var/log/myapp"}},"agent":{"name":"web-1","type":"mmaptail","version":"devel"},"ecs":{"version":"8.11.0"},"host":{"name":"web-1"},"service":{"name":"checkout"}}
}

// Ship a log to Logstash's beats input until interrupted, keeping a cursor
// under the log directory.
func ExampleShipper() {
	out, err := output.Open("beats://logstash.example:5044", &output.Options{Window: ship.OutputWindow, CompressionLevel: 3})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	s, err := ship.New(ship.Config{
		Dir:        "/var/log/myapp",
		Output:     out,
		CursorPath: tail.CursorPath("/var/log/myapp", "logstash"),
		Fields:     map[string]string{"service.name": "checkout"},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background()) // cancel on SIGTERM
	defer cancel()
	if err := s.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
}
