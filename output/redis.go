package output

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// newRedis returns the redis:// output: each window is one RPUSH of all its
// events onto the list KEY, what Logstash's redis input (data_type => list)
// pops. Commands are pipelined: up to Options.Pipelining windows are on the
// wire before the first reply is read. Redis replies to every RPUSH once
// the events are in the list, which acknowledges the window.
//
// The protocol (RESP) is written here rather than through a client
// library: one command and three reply types are all it takes, and a
// general client's own pooling and retries would hide which windows the
// server took.
func newRedis(u *url.URL, name string, hosts []string, opts Options) (Output, error) {
	t, err := redisTargetOf(u, name)
	if err != nil {
		return nil, err
	}
	return newEngine(name, opts, hosts, opts.Workers, func(ctx context.Context, addr string) (session, error) {
		c, err := dial(ctx, addr, &opts)
		if err != nil {
			return nil, err
		}
		s := newRedisSession(c, t.key, &opts)
		if err := s.hello(t); err != nil {
			c.Close()
			return nil, err
		}
		return s, nil
	}), nil
}

// redisTarget is what a redis:// URL says besides its hosts.
type redisTarget struct {
	key        string
	db         int
	user, pass string
}

func redisTargetOf(u *url.URL, name string) (redisTarget, error) {
	t := redisTarget{key: trimSlash(u.Path)}
	if t.key == "" || strings.Contains(t.key, "/") {
		return t, fmt.Errorf("output %s: want redis://HOST:PORT[,HOST:PORT...]/KEY, KEY the list to push onto", name)
	}
	if s := u.Query().Get("db"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return t, fmt.Errorf("output %s: db=%q: want a database number", name, s)
		}
		t.db = n
	}
	if u.User != nil {
		t.user = u.User.Username()
		t.pass, _ = u.User.Password()
		if t.pass == "" {
			t.user, t.pass = "", t.user // redis://:PASS@ or redis://PASS@
		}
	}
	return t, nil
}

func newRedisSession(c net.Conn, key string, opts *Options) *redisSession {
	return &redisSession{conn: c, br: bufio.NewReaderSize(c, 4096), bw: bufio.NewWriterSize(c, 64<<10), key: key, opts: opts}
}

// hello authenticates and selects the database, as t says.
func (s *redisSession) hello(t redisTarget) error {
	if t.pass != "" {
		args := []string{"AUTH", t.pass}
		if t.user != "" {
			args = []string{"AUTH", t.user, t.pass}
		}
		if err := s.command(args...); err != nil {
			return fmt.Errorf("AUTH: %w", err)
		}
	}
	if t.db != 0 {
		if err := s.command("SELECT", strconv.Itoa(t.db)); err != nil {
			return fmt.Errorf("SELECT %d: %w", t.db, err)
		}
	}
	return nil
}

type redisSession struct {
	conn net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	key  string
	opts *Options
}

// command sends a command and waits for its reply.
func (s *redisSession) command(args ...string) error {
	_, err := s.call(args...)
	return err
}

// call sends a command and returns its simple reply.
func (s *redisSession) call(args ...string) (string, error) {
	s.bw.WriteString("*" + strconv.Itoa(len(args)) + "\r\n")
	for _, a := range args {
		s.bulk([]byte(a))
	}
	if err := s.flush(); err != nil {
		return "", err
	}
	return s.reply()
}

func (s *redisSession) bulk(b []byte) {
	var n [20]byte
	s.bw.WriteByte('$')
	s.bw.Write(strconv.AppendInt(n[:0], int64(len(b)), 10))
	s.bw.WriteString("\r\n")
	s.bw.Write(b)
	s.bw.WriteString("\r\n")
}

func (s *redisSession) flush() error {
	s.conn.SetWriteDeadline(timeNow().Add(s.opts.Timeout))
	return s.bw.Flush()
}

// send writes RPUSH KEY EVENT... without waiting for the reply.
func (s *redisSession) send(w *window) error {
	s.bw.WriteString("*" + strconv.Itoa(2+w.events) + "\r\n")
	s.bulk([]byte("RPUSH"))
	s.bulk([]byte(s.key))
	w.each(s.bulk)
	return s.flush()
}

// await reads the reply to the oldest RPUSH: the list's new length.
func (s *redisSession) await(w *window) error {
	line, err := s.reply()
	if err != nil {
		return err
	}
	if n, err := strconv.ParseInt(line, 10, 64); err != nil || n < int64(w.events) {
		return fmt.Errorf("%w: RPUSH replied %q", errProtocol, line)
	}
	return nil
}

var errProtocol = errors.New("redis protocol error")

// reply reads one simple reply: +OK, :N or -ERR.
func (s *redisSession) reply() (string, error) {
	s.conn.SetReadDeadline(timeNow().Add(s.opts.Timeout))
	line, err := s.br.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if line == "" {
		return "", errProtocol
	}
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return "", fmt.Errorf("redis: %s", line[1:])
	}
	return "", fmt.Errorf("%w: unexpected reply %q", errProtocol, line)
}

func (s *redisSession) close() error { return s.conn.Close() }
