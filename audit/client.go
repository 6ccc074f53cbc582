package audit

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"time"
)

// Client sends records to the daemon's socket and falls back to the spool.
// It is what the per-container hook uses.
type Client struct {
	socket  string
	spool   string
	timeout time.Duration
}

// ClientOption configures a Client.
type ClientOption func(*Client) error

// WithClientSocket sets the daemon's socket (default DefaultSocket).
func WithClientSocket(path string) ClientOption {
	return func(c *Client) error {
		if !filepath.IsAbs(path) {
			return fmt.Errorf("%w: socket path %q is not absolute", ErrConfig, path)
		}
		c.socket = path
		return nil
	}
}

// WithSpool sets the spool file (default SpoolPathFor(DefaultPath)); use
// SpoolPathFor(cfg.Path) for a log elsewhere.
func WithSpool(path string) ClientOption {
	return func(c *Client) error {
		if !filepath.IsAbs(path) {
			return fmt.Errorf("%w: spool path %q is not absolute", ErrConfig, path)
		}
		c.spool = path
		return nil
	}
}

// WithTimeout bounds one socket exchange (default 2s); the caller's ctx
// deadline applies too, whichever is sooner.
func WithTimeout(d time.Duration) ClientOption {
	return func(c *Client) error {
		if d <= 0 {
			return fmt.Errorf("%w: timeout %v", ErrConfig, d)
		}
		c.timeout = d
		return nil
	}
}

// NewClient returns a Client.
func NewClient(opts ...ClientOption) (*Client, error) {
	c := &Client{socket: DefaultSocket, spool: SpoolPathFor(DefaultPath), timeout: 2 * time.Second}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Send delivers one record: to the daemon if it acknowledges it, else to the
// spool file, which the daemon takes in later. It returns nil once the record
// is in one of the two; an error means it is in neither (the caller's
// failClosed setting decides what that means for the container).
func (c *Client) Send(ctx context.Context, r Record) error {
	if r.UUID == "" {
		r.UUID = NewUUID()
	}
	line, err := r.Marshal()
	if err != nil {
		return err
	}
	sockErr := c.sendSocket(ctx, line)
	if sockErr == nil {
		return nil
	}
	// The spool is the last place the record can go: the caller's deadline
	// may have passed while the daemon did not answer, so the spool gets a
	// deadline of its own (it only bounds the wait for the spool's lock).
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
	defer cancel()
	if err := AppendSpool(sctx, c.spool, line); err != nil {
		return fmt.Errorf("%w: daemon: %v; spool: %w", ErrUnavailable, sockErr, err)
	}
	return nil
}

func (c *Client) exchange(ctx context.Context, req []byte, resp any) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.socket)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	_, werr := conn.Write(req)
	// Read the reply even after a failed write: a daemon that refuses the
	// peer replies and closes without reading the request.
	line, err := bufio.NewReader(conn).ReadBytes('\n')
	if err != nil {
		if werr != nil {
			return werr
		}
		return fmt.Errorf("no reply from audit daemon: %w", err)
	}
	return json.Unmarshal(line, resp)
}

func (c *Client) sendSocket(ctx context.Context, line []byte) error {
	var rep reply
	if err := c.exchange(ctx, line, &rep); err != nil {
		return err
	}
	if !rep.OK {
		return errors.New(rep.Error)
	}
	return nil
}

// Health asks the daemon for its audit log's Health.
func (c *Client) Health(ctx context.Context) (Health, error) {
	var h Health
	if err := c.exchange(ctx, []byte("health\n"), &h); err != nil {
		return Health{}, fmt.Errorf("audit daemon at %s: %w", c.socket, err)
	}
	return h, nil
}
