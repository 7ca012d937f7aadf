package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/mmaplog/mmaplog/output"
)

// outputFlags are the flags of a command that ships through package output:
// TLS and the Beats compression level. ship and counters share them.
type outputFlags struct {
	useTLS                    *bool
	ca, cert, key, serverName *string
	compression               *int
}

func addOutputFlags(fs *flag.FlagSet) *outputFlags {
	return &outputFlags{
		useTLS:      fs.Bool("tls", false, "connect with TLS (implied by --tls-ca and --tls-cert)"),
		ca:          fs.String("tls-ca", "", "PEM file of the CA certificates to verify the receiver with (default: the system's)"),
		cert:        fs.String("tls-cert", "", "PEM client certificate, for receivers that verify clients"),
		key:         fs.String("tls-key", "", "PEM key of --tls-cert"),
		serverName:  fs.String("tls-server-name", "", "name to verify the receiver's certificate against (default: the host in --to)"),
		compression: fs.Int("compression", 3, "zlib compression level of beats batches, 0 (none) to 9"),
	}
}

func (f *outputFlags) validate() error {
	if *f.compression < 0 || *f.compression > 9 {
		return usagef("--compression must be 0 to 9")
	}
	return nil
}

// open opens the output at to, reporting its retried errors on stderr
// prefixed with the command's name.
func (f *outputFlags) open(to, cmd string, window int, stderr io.Writer) (output.Output, error) {
	oo := &output.Options{Window: window, CompressionLevel: *f.compression, OnError: func(err error) {
		fmt.Fprintf(stderr, "mmaptail %s: %s (retrying)\n", cmd, oneLine(err.Error()))
	}}
	if *f.useTLS || *f.ca != "" || *f.cert != "" {
		var err error
		if oo.TLS, err = output.TLSConfig(*f.ca, *f.cert, *f.key, *f.serverName); err != nil {
			return nil, err
		}
	}
	return output.Open(to, oo)
}

// outputEmitter ships the counters' events through an output: Emit returns
// once the receiver acknowledged the batch, so the collector commits only
// delivered counts. While the receiver is down Emit waits (the output
// retries); increments meanwhile stay in the counters, nothing is lost.
type outputEmitter struct {
	ctx context.Context
	out output.Output
}

func (e *outputEmitter) Emit(batch [][]byte) error {
	done := make(chan struct{})
	if err := e.out.Publish(e.ctx, batch, func() { close(done) }); err != nil {
		return err
	}
	select {
	case <-done:
		return nil
	case <-e.ctx.Done():
		return fmt.Errorf("stopped before %s acknowledged %d event(s): they are shipped again next time: %w", e.out, len(batch), e.ctx.Err())
	}
}
