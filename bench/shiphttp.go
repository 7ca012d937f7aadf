package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/mmaplog/mmaplog/internal/peers"
)

// The elasticsearch and otlp shipping rows ship to real receivers that run
// as processes of their own, started for each pass:
//
//   - es: VictoriaLogs (victoria-logs, on PATH or in the go command's bin
//     directory: `go install github.com/VictoriaMetrics/VictoriaLogs/app/victoria-logs@v1.52.2`,
//     which scripts/test runs where it is missing), through its
//     Elasticsearch _bulk API;
//   - otlp: the OpenTelemetry Collector's OTLP receiver, built from
//     peers/otlpreceiver with the go command on first use (or the binary
//     MMAPLOG_OTLPRECEIVER names), counting the records and discarding
//     them.
//
// Their CPU time, from /proc, is added to the pass's. The bytes on the
// wire are what this process wrote during the pass (wchar of
// /proc/self/io): the requests, headers included, and the few bytes of the
// cursor saves.

// httpPeer is a receiver process of the elasticsearch or otlp rows.
type httpPeer struct {
	pid  int
	stop func() int64 // stops it; the records it counted (otlp)
}

// wireBytes returns the bytes this process has written (see above).
func (p *httpPeer) wireBytes() int64 { return processIO("/proc/self/io", "wchar: ") }

func startHTTPReceiver(kind, dir string) (*receiver, error) {
	switch kind {
	case "es":
		v, err := peers.LaunchVictoriaLogs(dir, peers.VictoriaLogsOptions{})
		if err != nil {
			return nil, fmt.Errorf("ship: %w", err)
		}
		p := &httpPeer{pid: v.Pid(), stop: func() int64 { v.Stop(); return 0 }}
		return &receiver{peer: p, addr: v.Addr, url: "elasticsearch://" + v.Addr + peers.BulkPath + "?" + peers.BulkQuery, done: make(chan struct{})}, nil
	case "otlp":
		r, err := peers.LaunchOTLPReceiver(dir, "-discard")
		if err != nil {
			return nil, fmt.Errorf("ship: %w", err)
		}
		p := &httpPeer{pid: r.Pid(), stop: r.Stop}
		return &receiver{peer: p, addr: r.Addr, url: "otlp://" + r.Addr, done: make(chan struct{})}, nil
	}
	return nil, fmt.Errorf("ship: no receiver %q", kind)
}

// processCPU returns the user and system CPU time of process pid, from
// /proc/PID/stat (0 if it cannot be read).
func processCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name, in parentheses, may hold spaces: count fields
	// after its closing parenthesis (state is field 3, utime 14, stime 15).
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 13 {
		return 0
	}
	ut, err1 := strconv.ParseInt(string(f[11]), 10, 64)
	st, err2 := strconv.ParseInt(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	const clockTicks = 100 // USER_HZ, what /proc counts in on Linux
	return time.Duration(ut+st) * time.Second / clockTicks
}

// processIO returns a counter of a /proc/PID/io file (0 if it cannot be
// read).
func processIO(path, field string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, l := range bytes.Split(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(l, []byte(field)); ok {
			n, _ := strconv.ParseInt(string(v), 10, 64)
			return n
		}
	}
	return 0
}
