package plugin

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/api"
	"github.com/containerd/nri/pkg/stub"
	"github.com/containerd/ttrpc"

	"github.com/patchgate/patchgate/policy"
	"github.com/patchgate/patchgate/service"
)

func TestInflightWaitsForTheLastResponse(t *testing.T) {
	f := newInflight()
	if err := f.wait(context.Background()); err != nil {
		t.Fatalf("idle tracker: %v", err)
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	f.begin(1)
	f.begin(3)
	f.end(1)
	f.end(5) // a response to no request it saw changes nothing
	if err := f.wait(cancelled); err == nil {
		t.Fatal("wait returned while a request is in flight")
	}
	f.end(3)
	if err := f.wait(context.Background()); err != nil {
		t.Fatalf("after the last response: %v", err)
	}
	f.begin(7)
	if err := f.wait(cancelled); err == nil {
		t.Fatal("wait returned while a new request is in flight")
	}
	f.end(7)
	if err := f.wait(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// ttrpcFrames returns what a real ttrpc client wrote for two calls and what
// the real server answered: the bytes on the wire of a ttrpc connection.
func ttrpcFrames(t testing.TB) (requests, responses []byte) {
	t.Helper()
	srv, err := ttrpc.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	srv.RegisterService("test.Echo", &ttrpc.ServiceDesc{Methods: map[string]ttrpc.Method{
		"Echo": func(ctx context.Context, unmarshal func(interface{}) error) (interface{}, error) {
			var req api.Empty
			if err := unmarshal(&req); err != nil {
				return nil, err
			}
			return &api.Empty{}, nil
		},
	}})
	a, b := net.Pipe()
	rec := &recordingConn{Conn: b}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(context.Background(), &oneConnListener{c: rec}) }()
	c := ttrpc.NewClient(a)
	defer func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
		if err := srv.Close(); err != nil {
			t.Error(err)
		}
		if err := <-served; !errors.Is(err, ttrpc.ErrServerClosed) {
			t.Errorf("ttrpc server: %v", err)
		}
	}()
	for i := 0; i < 2; i++ {
		if err := c.Call(context.Background(), "test.Echo", "Echo", &api.Empty{}, &api.Empty{}); err != nil {
			t.Fatal(err)
		}
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]byte(nil), rec.read...), append([]byte(nil), rec.written...)
}

type recordingConn struct {
	net.Conn
	mu            sync.Mutex
	read, written []byte
}

func (c *recordingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.mu.Lock()
	c.read = append(c.read, b[:n]...)
	c.mu.Unlock()
	return n, err
}

// Write records before it writes: on a net.Pipe the client has the
// response (and the test goes on) before the server's Write returns.
func (c *recordingConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	c.written = append(c.written, b...)
	c.mu.Unlock()
	return c.Conn.Write(b)
}

type oneConnListener struct {
	c    net.Conn
	once sync.Once
	done chan struct{}
	mu   sync.Mutex
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	var c net.Conn
	l.once.Do(func() { c = l.c })
	if c != nil {
		return c, nil
	}
	l.mu.Lock()
	if l.done == nil {
		l.done = make(chan struct{})
	}
	done := l.done
	l.mu.Unlock()
	<-done
	return nil, net.ErrClosed
}

func (l *oneConnListener) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done == nil {
		l.done = make(chan struct{})
	}
	select {
	case <-l.done:
	default:
		close(l.done)
	}
	return nil
}

func (l *oneConnListener) Addr() net.Addr { return l.c.LocalAddr() }

func scanAll(b []byte, chunk int) []frameHeader {
	var s frameScanner
	var got []frameHeader
	for len(b) > 0 {
		n := min(chunk, len(b))
		s.scan(b[:n], func(h frameHeader) { got = append(got, h) })
		b = b[n:]
	}
	return got
}

// The scanner finds the frames real ttrpc writes, whatever the chunks the
// bytes arrive in.
func TestFrameScannerOnRealTTRPC(t *testing.T) {
	reqs, resps := ttrpcFrames(t)
	for _, tc := range []struct {
		name  string
		bytes []byte
		typ   byte
	}{{"requests", reqs, ttrpcRequest}, {"responses", resps, ttrpcResponse}} {
		for _, chunk := range []int{1, 3, ttrpcHeaderLen, 4096} {
			got := scanAll(tc.bytes, chunk)
			if len(got) != 2 {
				t.Fatalf("%s in chunks of %d: %d frames %+v, want 2", tc.name, chunk, len(got), got)
			}
			for _, h := range got {
				if h.typ != tc.typ {
					t.Errorf("%s in chunks of %d: frame type %d, want %d", tc.name, chunk, h.typ, tc.typ)
				}
			}
			if got[0].stream == got[1].stream {
				t.Errorf("%s: both calls on stream %d", tc.name, got[0].stream)
			}
		}
	}
}

func FuzzFrameScanner(f *testing.F) {
	reqs, resps := ttrpcFrames(f)
	f.Add(reqs, uint8(1))
	f.Add(resps, uint8(7))
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 1, 2, 0}, uint8(3))
	f.Fuzz(func(t *testing.T, b []byte, chunk uint8) {
		whole := scanAll(b, len(b)+1)
		parts := scanAll(b, int(chunk)+1)
		if len(whole) != len(parts) {
			t.Fatalf("%d frames in one piece, %d in chunks of %d", len(whole), len(parts), int(chunk)+1)
		}
		for i := range whole {
			if whole[i] != parts[i] {
				t.Fatalf("frame %d: %+v in one piece, %+v in chunks", i, whole[i], parts[i])
			}
		}
	})
}

// heldNode is the real node service, except that the first Admit waits
// until the test releases it: a request that is in flight when patchgate is
// told to stop.
type heldNode struct {
	*service.Service
	once     sync.Once
	entered  chan struct{}
	released chan struct{}
}

func (n *heldNode) Admit(ctx context.Context, w *policy.Workload, o service.AdmitOptions) service.Result {
	n.once.Do(func() {
		close(n.entered)
		select {
		case <-n.released:
		case <-time.After(30 * time.Second):
		}
	})
	return n.Service.Admit(ctx, w, o)
}

// A request in flight when patchgate is stopped is answered before the
// connection closes: the container is judged, not failed with "ttrpc:
// closed". Then patchgate registers and closes the short-lived plugin that
// makes an older runtime drop the closed connection.
func TestStopFinishesTheRequestInFlight(t *testing.T) {
	n := &heldNode{entered: make(chan struct{}), released: make(chan struct{})}
	h := newHarness(t, harnessOpts{})
	n.Service = h.svc
	h.p.node.Store(&nodeBox{n})

	pod, ctr := loadCapture(t, "privileged")
	created := make(chan error, 1)
	go func() {
		_, err := h.create(pod, ctr)
		created <- err
	}()
	<-n.entered
	stopped := make(chan struct{})
	go func() {
		h.stop()
		close(stopped)
	}()
	waitFor(t, func() bool { return strings.Contains(h.logs.String(), "stopping: finishing the requests in flight") }, "patchgate to start stopping")
	// Give a stop that does not wait the time to close the connection
	// under the request (well inside the runtime's 2 s request timeout).
	// A stop that waits passes however long this is.
	time.Sleep(300 * time.Millisecond)
	select {
	case err := <-created:
		t.Fatalf("the request in flight ended before patchgate answered it: %v", err)
	case <-stopped:
		t.Fatal("patchgate stopped with a request in flight")
	default:
	}
	close(n.released)
	if err := <-created; err == nil || !strings.Contains(err.Error(), "patchgate: denied") {
		t.Fatalf("the request in flight was not judged by patchgate: %v", err)
	}
	<-stopped
	if !strings.Contains(h.logs.String(), "registered and closed a short-lived plugin") {
		t.Errorf("no sweep after the stop; logs:\n%s", h.logs.String())
	}
}

// The short-lived plugin must never be a validator: once closed it stays in
// an older runtime's list until the next request, and a closed validator
// fails that request.
func TestSweeperIsNoValidator(t *testing.T) {
	var w any = &sweeper{}
	if _, ok := w.(stub.ValidateContainerAdjustmentInterface); ok {
		t.Fatal("the sweeper handles ValidateContainerAdjustment")
	}
	if _, ok := w.(stub.CreateContainerInterface); ok {
		t.Fatal("the sweeper handles CreateContainer")
	}
}

// While the runtime holds plugin registration (containerd does while it
// serves a CRI request that calls NRI, such as stopping patchgate's own
// container), the stop does not wait for it: that request prunes the closed
// plugin by itself.
func TestStopDoesNotWaitForAHeldRegistration(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	held := h.rt.BlockPluginSync()
	h.stop()
	held.Unblock()
	if !strings.Contains(h.logs.String(), "is holding plugin registration") {
		t.Fatalf("the stop did not give up on the held registration; logs:\n%s", h.logs.String())
	}
}
