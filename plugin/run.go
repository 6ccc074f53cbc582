package plugin

import (
	"context"
	"os"
	"time"

	"github.com/containerd/nri/pkg/api"
	"github.com/containerd/nri/pkg/stub"
	"github.com/containerd/ttrpc"
	"github.com/sirupsen/logrus"

	"github.com/patchgate/patchgate/internal/logfields"
)

// Run connects to the runtime and serves it until ctx ends. When the
// connection closes (the runtime restarted), it reconnects with backoff and
// logs every attempt; it never returns because of a closed connection. The
// exception is a plugin the runtime launched itself (NRI_PLUGIN_SOCKET): its
// connection is an inherited socket that cannot be dialled again, so Run
// returns and the runtime decides.
func (p *Plugin) Run(ctx context.Context) error {
	launched := os.Getenv(api.PluginSocketEnvVar) != ""
	go p.sweepLoop(ctx)
	p.publishRuntime("connecting", nil, "not registered with the runtime yet")
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		connected := time.Now()
		p.conn.Store(nil)
		err := p.serveOnce(ctx)
		c := p.conn.Load()
		if ctx.Err() != nil {
			p.publishRuntime("disconnected", c, "stopped")
			return nil
		}
		p.afterServe(c, err)
		if c != nil && c.reindex {
			attempt--
			continue
		}
		if launched {
			return err
		}
		if time.Since(connected) > 10*time.Second {
			backoff, attempt = 100*time.Millisecond, 1
		}
		log := p.log.WithFields(logrus.Fields{"socket": p.socket, "attempt": attempt, "retry_in_ms": logfields.Ms(backoff)})
		if err != nil {
			log = log.WithError(err)
		}
		log.Warn("not connected to the container runtime; reconnecting")
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, p.backoffMax)
	}
}

// serveOnce makes one connection and serves it until it closes.
func (p *Plugin) serveOnce(ctx context.Context) error {
	f := newInflight()
	opts := []stub.Option{
		stub.WithSocketPath(p.socket),
		// Tracks the requests being served, so that a stop can let them
		// finish before it closes the connection (shutdown.go).
		stub.WithTTRPCOptions(nil, []ttrpc.ServerOpt{ttrpc.WithServerHandshaker(f)}),
		stub.WithOnClose(func() {}), // Run reconnects; the stub must not exit the process
		// Runtimes that honour it fail a request patchgate could not
		// answer (timeout, crash) instead of letting it through.
		stub.WithFailurePolicy(&api.FailurePolicy{FailRequest: true}),
	}
	if p.dial != nil {
		opts = append(opts, stub.WithDialer(p.dial))
	}
	if os.Getenv(api.PluginNameEnvVar) == "" {
		opts = append(opts, stub.WithPluginName(p.name))
	}
	if os.Getenv(api.PluginIdxEnvVar) == "" {
		p.idxMu.Lock()
		idx := p.idx
		p.idxMu.Unlock()
		opts = append(opts, stub.WithPluginIdx(idx))
	}
	s, err := stub.New(p, opts...)
	if err != nil {
		return err
	}
	p.hooks.reset()
	p.stub.Store(&s)
	// The connection outlives ctx: when ctx ends, serve lets the requests
	// in flight finish before it closes the connection.
	if err := s.Start(context.WithoutCancel(ctx)); err != nil {
		s.Stop()
		return err
	}
	return p.serve(ctx, s, f)
}

func (p *Plugin) sweepLoop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p.hooks.sweep()
		}
	}
}
