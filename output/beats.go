package output

import (
	"context"
	"encoding/json"
	"net"
	"net/url"

	lumber "github.com/elastic/go-lumber/client/v2"
)

// newBeats returns the beats:// output: Logstash's beats input, through
// Elastic's lumberjack v2 client. Each batch is one lumberjack window; the
// receiver acknowledges it once Logstash's pipeline has taken it.
func newBeats(u *url.URL, opts Options) Output {
	addr := hostPort(u)
	return newEngine(redact(u), opts, func(ctx context.Context) (session, error) {
		c, err := dial(ctx, addr, &opts)
		if err != nil {
			return nil, err
		}
		cl, err := lumber.NewWithConn(c,
			lumber.Timeout(opts.Timeout),
			lumber.CompressionLevel(opts.CompressionLevel),
			lumber.JSONEncoder(rawJSON))
		if err != nil {
			c.Close()
			return nil, err
		}
		return &beatsSession{conn: c, cl: cl}, nil
	})
}

// rawJSON is the client's encoder: events are encoded already.
func rawJSON(v interface{}) ([]byte, error) { return v.(json.RawMessage), nil }

type beatsSession struct {
	conn  net.Conn
	cl    *lumber.Client
	items []interface{}
}

func (s *beatsSession) send(b *batch) error {
	s.items = s.items[:0]
	for _, ev := range b.events {
		s.items = append(s.items, json.RawMessage(ev))
	}
	err := s.cl.Send(s.items)
	clear(s.items)
	return err
}

// await reads acknowledgements until the whole window is acknowledged. A
// receiver that is still working on it sends empty acknowledgements
// (keepalives), which reset the timeout.
func (s *beatsSession) await(b *batch) error {
	_, err := s.cl.AwaitACK(uint32(len(b.events)))
	return err
}

func (s *beatsSession) close() error { return s.conn.Close() }
