package plugin

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"sync"
	"time"

	"github.com/containerd/nri/pkg/api"
	"github.com/containerd/nri/pkg/stub"

	"github.com/patchgate/patchgate/internal/logfields"
)

// A clean stop, as far as the NRI protocol allows one.
//
// The protocol has no way for a plugin to leave: the runtime service offers
// only RegisterPlugin and UpdateContainers (api.proto, service Runtime). What a
// plugin can do on SIGTERM is:
//
//  1. keep serving, and close the connection only once no request is in
//     flight, so that no container's judgement is cut off half-way (the runtime
//     would fail that create with "ttrpc: closed"). A request that arrives
//     between that moment and the close still fails so: only leaving the
//     protocol could prevent it, and there is no message for that;
//  2. close the connection: the runtime's ttrpc client notices at once and
//     marks the plugin closed (nri pkg/adaptation/plugin.go, plugin.connect,
//     the WithOnClose callback);
//  3. make the runtime forget the closed plugin. NRI before v0.12.5 still
//     calls a closed validator in the next CreateContainer, because it prunes
//     closed plugins only after a request (the deferred removeClosedPlugins in
//     every Adaptation request) or when a plugin registers (sortPlugins in
//     acceptPluginConnections). That first create then fails with
//     "validator plugin 50-patchgate failed: ttrpc: closed" (containerd 2.2
//     with NRI v0.11.0, 2.4.2 with v0.12.3). Registering a short-lived second
//     plugin is the one thing a plugin can do that makes the runtime prune,
//     so patchgate does that (sweep). NRI v0.12.5 skips closed plugins in
//     every request and needs no sweep; it does no harm there. While
//     containerd holds plugin registration (it does while it serves a CRI
//     request that calls NRI, such as stopping this very container), the
//     sweep gives up after sweepSyncWait: that request prunes by itself.
//
// A plugin that is killed can do none of this.

// inflight tracks the requests the runtime has sent on the plugin's ttrpc
// server connection and the plugin has not answered yet. It watches the
// connection itself (a ttrpc server handshaker wraps it): a request is in
// flight from the moment its frame is read until the response frame with the
// same stream ID has been written, which the NRI multiplexer does
// synchronously to the socket (pkg/net/multiplex, mux.write). Counting in a
// handler or interceptor would not do: ttrpc sends the response after the
// handler returns, and closing in between loses it.
type inflight struct {
	mu      sync.Mutex
	streams map[uint32]bool
	idle    chan struct{} // closed while no request is in flight
}

func newInflight() *inflight {
	idle := make(chan struct{})
	close(idle)
	return &inflight{streams: map[uint32]bool{}, idle: idle}
}

func (f *inflight) begin(id uint32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.streams) == 0 {
		f.idle = make(chan struct{})
	}
	f.streams[id] = true
}

func (f *inflight) end(id uint32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.streams[id] {
		return
	}
	delete(f.streams, id)
	if len(f.streams) == 0 {
		close(f.idle)
	}
}

// wait returns when no request is in flight, or with ctx's error.
func (f *inflight) wait(ctx context.Context) error {
	f.mu.Lock()
	idle := f.idle
	f.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Handshake implements ttrpc.Handshaker: it wraps the server's connection
// so that f sees the frames on it.
func (f *inflight) Handshake(_ context.Context, c net.Conn) (net.Conn, interface{}, error) {
	return &watchedConn{Conn: c, f: f}, nil, nil
}

// watchedConn is the ttrpc server's connection: requests are read from it,
// responses written to it.
type watchedConn struct {
	net.Conn
	f       *inflight
	in, out frameScanner
}

func (c *watchedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.in.scan(b[:n], func(h frameHeader) {
		if h.typ == ttrpcRequest {
			c.f.begin(h.stream)
		}
	})
	return n, err
}

func (c *watchedConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.out.scan(b[:n], func(h frameHeader) {
		if h.typ == ttrpcResponse {
			c.f.end(h.stream)
		}
	})
	return n, err
}

// The ttrpc message framing (github.com/containerd/ttrpc, channel.go): a
// 10-byte header, big-endian payload length (4) and stream ID (4), then the
// message type (1) and flags (1), followed by the payload.
const (
	ttrpcHeaderLen = 10
	ttrpcRequest   = 0x1
	ttrpcResponse  = 0x2
)

type frameHeader struct {
	length, stream uint32
	typ, flags     byte
}

// frameScanner follows a byte stream of ttrpc frames, in chunks of any size,
// and reports each frame once its header and whole payload have passed.
type frameScanner struct {
	hdr  [ttrpcHeaderLen]byte
	have int    // header bytes collected
	skip uint32 // payload bytes still to pass
	cur  frameHeader
}

func (s *frameScanner) scan(b []byte, frame func(frameHeader)) {
	for len(b) > 0 {
		if s.have < ttrpcHeaderLen {
			n := copy(s.hdr[s.have:], b)
			s.have += n
			b = b[n:]
			if s.have < ttrpcHeaderLen {
				return
			}
			s.cur = frameHeader{
				length: binary.BigEndian.Uint32(s.hdr[0:4]),
				stream: binary.BigEndian.Uint32(s.hdr[4:8]),
				typ:    s.hdr[8],
				flags:  s.hdr[9],
			}
			s.skip = s.cur.length
		}
		n := uint32(len(b))
		if n > s.skip {
			n = s.skip
		}
		s.skip -= n
		b = b[n:]
		if s.skip == 0 {
			frame(s.cur)
			s.have = 0
		}
	}
}

// serve runs one started connection until the runtime closes it (an error)
// or ctx ends (nil, after a clean stop).
func (p *Plugin) serve(ctx context.Context, s stub.Stub, f *inflight) error {
	closed := make(chan struct{})
	go func() {
		s.Wait()
		close(closed)
	}()
	select {
	case <-closed:
		s.Stop()
		return errors.New("connection closed")
	case <-ctx.Done():
	}

	// The runtime may still send requests: they are served until the
	// connection closes. A request the runtime has given up on (its request
	// timeout) is not worth waiting for.
	wait := s.RequestTimeout()
	if wait <= 0 {
		wait = stub.DefaultRequestTimeout
	}
	p.log.WithField("wait_at_most_ms", logfields.Ms(wait)).Info("stopping: finishing the requests in flight, then closing the connection to the container runtime")
	began := time.Now()
	dctx, cancel := context.WithTimeout(context.Background(), wait)
	err := f.wait(dctx)
	cancel()
	if err != nil {
		p.log.WithField("waited_ms", logfields.Ms(time.Since(began))).Warn("stopping: a request is still in flight; closing the connection anyway (the runtime fails that request)")
	}
	s.Stop()
	p.sweep(s.RegistrationTimeout())
	return nil
}

// sweepSuffix names the short-lived plugin that sweep registers: never the
// plugin's own name, which the default validator's required_plugins may
// list (a closed plugin is still listed to the validators until pruned).
const sweepSuffix = "-shutdown"

// sweepSyncWait is how long sweep waits for the runtime to synchronize the
// short-lived plugin once it has registered.
const sweepSyncWait = time.Second

var errSweepHeld = errors.New("plugin registration held by the runtime")

// sweeper is the short-lived plugin sweep registers. It subscribes to one
// rare event that every NRI version knows (v0.8.0 included), never to
// ValidateContainerAdjustment: once it has closed, the runtime holds it as a
// closed plugin until its next request, and a closed validator is exactly
// what sweep removes. A closed non-validator is skipped without an error.
type sweeper struct{ synced chan struct{} }

func (w *sweeper) Synchronize(context.Context, []*api.PodSandbox, []*api.Container) ([]*api.ContainerUpdate, error) {
	select {
	case w.synced <- struct{}{}:
	default:
	}
	return nil, nil
}

func (*sweeper) PostUpdateContainer(context.Context, *api.PodSandbox, *api.Container) error {
	return nil
}

var (
	_ stub.SynchronizeInterface         = (*sweeper)(nil)
	_ stub.PostUpdateContainerInterface = (*sweeper)(nil)
)

// sweep makes a runtime with NRI before v0.12.5 drop the plugin's closed
// connection now, instead of failing the next create on it: it registers a
// short-lived second plugin, which makes the runtime prune its closed
// plugins once that plugin is synchronized, and closes it again. A plugin
// the runtime launched has no socket to dial; the runtime stops it itself.
func (p *Plugin) sweep(timeout time.Duration) {
	if os.Getenv(api.PluginSocketEnvVar) != "" {
		return
	}
	if timeout <= 0 {
		timeout = stub.DefaultRegistrationTimeout
	}
	log := p.log.WithField("plugin", p.idx+"-"+p.name+sweepSuffix)
	const failed = "stopping: could not make the runtime drop the closed connection; its next container create may fail once with \"ttrpc: closed\""
	var (
		mu   sync.Mutex
		conn net.Conn
	)
	dial := p.dial
	if dial == nil {
		dial = func(path string) (net.Conn, error) { return net.Dial("unix", path) }
	}
	w := &sweeper{synced: make(chan struct{}, 1)}
	s, err := stub.New(w,
		stub.WithSocketPath(p.socket),
		stub.WithPluginName(p.name+sweepSuffix),
		stub.WithPluginIdx(p.idx),
		stub.WithOnClose(func() {}),
		stub.WithDialer(func(path string) (net.Conn, error) {
			c, err := dial(path)
			mu.Lock()
			conn = c
			mu.Unlock()
			return c, err
		}))
	if err != nil {
		log.WithError(err).Warn(failed)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		if err := s.Start(ctx); err != nil {
			done <- err
			return
		}
		// containerd holds plugin synchronization while it serves a
		// CRI request that calls NRI (BlockPluginSync in
		// internal/cri/server: StopContainer, CreateContainer, ...);
		// when it is the stop of this very container, it lasts until
		// this process exits. The NRI request at the end of such a CRI
		// request prunes closed plugins by itself (the deferred
		// removeClosedPlugins), so a sweep that is held up is not
		// needed: give up after a short wait rather than delay the exit.
		held := time.NewTimer(sweepSyncWait)
		defer held.Stop()
		select {
		case <-w.synced:
		case <-held.C:
			done <- errSweepHeld
			return
		case <-ctx.Done():
			done <- ctx.Err()
			return
		}
		// The runtime prunes after this plugin's Synchronize has
		// succeeded. containerd holds one lock through that
		// synchronization and takes it again to serve UpdateContainers
		// (internal/nri/nri.go, syncPlugin and updateFromPlugin), so
		// this empty update returns only after the runtime has the
		// answer: closing earlier could fail the synchronization, and
		// then the runtime would not prune.
		_, err := s.UpdateContainers(nil)
		done <- err
	}()
	select {
	case err = <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		// Start may be stuck waiting for Configure, holding the stub's
		// lock (Stop would wait for it): cut the connection instead.
		mu.Lock()
		if conn != nil {
			if cerr := conn.Close(); cerr != nil {
				log.WithError(cerr).Debug("stopping: closing the short-lived plugin's connection")
			}
		}
		mu.Unlock()
	}
	if errors.Is(err, errSweepHeld) {
		log.WithField("waited_ms", logfields.Ms(sweepSyncWait)).Info("stopping: the container runtime is holding plugin registration (containerd does while it serves a CRI request, such as stopping this container); that request makes it drop the closed connection")
		return
	}
	if err != nil {
		log.WithError(err).Warn(failed)
		return
	}
	s.Stop()
	log.Info("stopping: registered and closed a short-lived plugin, so that the container runtime drops the closed connection now")
}
