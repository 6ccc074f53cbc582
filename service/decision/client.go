package decision

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/patchgate/patchgate/policy"
	"github.com/patchgate/patchgate/service/decision/wire"
)

// DefaultSocket is the node service's decision socket.
const DefaultSocket = wire.DefaultSocket

// ErrUnreachable wraps every error that means the service could not be
// asked at all (no socket, refused, wrong owner); the caller then decides
// locally. Any other Client error means the question may have reached the
// service.
var ErrUnreachable = wire.ErrUnreachable

// DefaultTimeout is Client.Timeout when unset, and the budget the service
// assumes for a request that does not carry one.
const DefaultTimeout = time.Second

// Client asks the node service for decisions over its unix socket.
type Client struct {
	Socket string
	// Timeout bounds one exchange (default DefaultTimeout); the ctx
	// deadline applies too. The request tells the service the time left.
	Timeout time.Duration
}

// Decide sends one workload and returns the service's answer. It checks
// that the socket's peer is root (or the caller's own user), so a socket
// planted by someone else is never believed.
func (c *Client) Decide(ctx context.Context, req *DecideRequest) (*DecideResponse, error) {
	sock := c.Socket
	if sock == "" {
		sock = DefaultSocket
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := dial(ctx, sock)
	if err != nil {
		return nil, err
	}
	defer func() { _ = conn.Close() }()
	dl, _ := ctx.Deadline() // set by WithTimeout above
	_ = conn.SetDeadline(dl)
	req.Version = ProtocolVersion
	req.BudgetMillis = max(time.Until(dl).Milliseconds(), 1)
	req.Seen = req.Workload.Seen
	if err := WriteMessage(conn, req); err != nil {
		return nil, fmt.Errorf("%w: sending request: %v", ErrUnreachable, err)
	}
	var resp DecideResponse
	if err := ReadMessage(bufio.NewReader(conn), &resp); err != nil {
		return nil, fmt.Errorf("reading the service's answer: %w", err)
	}
	if resp.Version != ProtocolVersion {
		return nil, fmt.Errorf("%w: service speaks version %d, want %d", ErrProtocol, resp.Version, ProtocolVersion)
	}
	if resp.Error == "" && resp.Decision == nil {
		return nil, fmt.Errorf("%w: answer has neither decision nor error", ErrProtocol)
	}
	return &resp, nil
}

// Ask is a convenience for callers holding only a workload.
func (c *Client) Ask(ctx context.Context, id string, w *policy.Workload) (*DecideResponse, error) {
	return c.Decide(ctx, &DecideRequest{ID: id, Workload: w})
}

// dial connects to the decision socket and checks that its peer is root or
// the caller's own user (SO_PEERCRED), so that a socket planted by someone
// else is never believed. Errors wrap ErrUnreachable.
func dial(ctx context.Context, sock string) (*net.UnixConn, error) {
	if !filepath.IsAbs(sock) {
		return nil, fmt.Errorf("%w: socket path %q is not absolute", ErrUnreachable, sock)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", sock)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	uc := conn.(*net.UnixConn)
	cred, err := PeerCred(uc)
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	if !UIDAllowed(cred.Uid, []uint32{uint32(os.Geteuid())}) {
		_ = conn.Close()
		return nil, fmt.Errorf("%w: %s is served by uid %d, not root", ErrUnreachable, sock, cred.Uid)
	}
	return uc, nil
}
