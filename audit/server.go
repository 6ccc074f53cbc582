package audit

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
)

// Wire protocol on the socket, one line per request and per reply:
//
//	request  {record JSON}       reply {"ok":true} or {"ok":false,"error":"..."}
//	request  health              reply {Health JSON}
//
// A connection may carry several requests.

// ErrPeer is returned to (and logged for) a peer whose uid is not allowed.
var ErrPeer = errors.New("peer not allowed")

type reply struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// Server accepts records from other processes on a unix socket and writes
// them to a Log; it also takes in the spool periodically.
type Server struct {
	log      *Log
	path     string
	interval time.Duration
	timeout  time.Duration
	ln       *net.UnixListener
	logger   logrus.FieldLogger
	wg       sync.WaitGroup
}

// ServerOption configures a Server.
type ServerOption func(*Server) error

// WithSocket sets the socket path (default DefaultSocket).
func WithSocket(path string) ServerOption {
	return func(s *Server) error {
		if !filepath.IsAbs(path) {
			return fmt.Errorf("%w: socket path %q is not absolute", ErrConfig, path)
		}
		s.path = path
		return nil
	}
}

// WithIngestInterval sets how often the spool is taken in (default 10s).
func WithIngestInterval(d time.Duration) ServerOption {
	return func(s *Server) error {
		if d <= 0 {
			return fmt.Errorf("%w: ingest interval %v", ErrConfig, d)
		}
		s.interval = d
		return nil
	}
}

// NewServer binds the socket (mode 0600, owned by root when run as root),
// replacing a stale socket file that nobody listens on. Serve runs it.
func NewServer(l *Log, opts ...ServerOption) (*Server, error) {
	s := &Server{log: l, path: DefaultSocket, interval: 10 * time.Second, timeout: 10 * time.Second}
	for _, o := range opts {
		if err := o(s); err != nil {
			return nil, err
		}
	}
	s.logger = l.cfg.Logger.WithField("audit_socket", s.path)
	if err := os.MkdirAll(filepath.Dir(s.path), 0o750); err != nil {
		return nil, fmt.Errorf("audit socket directory: %w", err)
	}
	if err := removeStaleSocket(s.path); err != nil {
		return nil, err
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: s.path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("audit socket: %w", err)
	}
	ln.SetUnlinkOnClose(true)
	// Between bind and chmod the socket may briefly carry umask permissions;
	// the peer credential check below applies regardless.
	if err := os.Chmod(s.path, 0o600); err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("audit socket: %w", err)
	}
	if os.Geteuid() == 0 {
		if err := os.Lchown(s.path, 0, 0); err != nil {
			_ = ln.Close()
			return nil, fmt.Errorf("audit socket: %w", err)
		}
	}
	s.ln = ln
	return s, nil
}

func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("audit socket: %w", err)
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("audit socket: %s exists and is not a socket", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		_ = c.Close()
		return fmt.Errorf("audit socket: %s: another process is listening", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("audit socket: %w", err)
	}
	return nil
}

// Path returns the socket path.
func (s *Server) Path() string { return s.path }

// Serve accepts connections and ingests the spool every interval until ctx is
// done; then it stops accepting, finishes the requests in flight, takes in the
// spool a last time and returns. It does not close the Log.
func (s *Server) Serve(ctx context.Context) error {
	stop := make(chan struct{})
	var bg sync.WaitGroup
	bg.Add(2)
	go func() {
		defer bg.Done()
		select {
		case <-ctx.Done():
		case <-stop:
		}
		_ = s.ln.Close()
	}()
	go func() {
		defer bg.Done()
		t := time.NewTicker(s.interval)
		defer t.Stop()
		var lastErr string
		var lastLogged time.Time
		for {
			select {
			case <-ctx.Done():
				return
			case <-stop:
				return
			case <-t.C:
				_, err := s.log.IngestSpool(ctx)
				// The same failure every interval is logged once a minute.
				if err != nil && (err.Error() != lastErr || time.Since(lastLogged) >= s.log.cfg.ErrorInterval) {
					s.logger.WithError(err).Error("audit spool not ingested")
					lastLogged = time.Now()
				}
				lastErr = ""
				if err != nil {
					lastErr = err.Error()
				}
			}
		}
	}()
	var err error
	for {
		c, aerr := s.ln.AcceptUnix()
		if aerr != nil {
			if ctx.Err() == nil {
				err = fmt.Errorf("audit socket accept: %w", aerr)
			}
			break
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handle(ctx, c)
		}()
	}
	close(stop)
	bg.Wait()
	s.wg.Wait()
	if _, ierr := s.log.IngestSpool(context.Background()); ierr != nil {
		s.logger.WithError(ierr).Error("audit spool not ingested")
	}
	return err
}

// PeerUID returns the uid of the process at the other end of c (SO_PEERCRED).
func PeerUID(c *net.UnixConn) (uint32, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var cred *syscall.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return 0, err
	}
	if cerr != nil {
		return 0, cerr
	}
	return cred.Uid, nil
}

func (s *Server) handle(ctx context.Context, c *net.UnixConn) {
	defer func() { _ = c.Close() }()
	w := bufio.NewWriter(c)
	respond := func(v any) bool {
		b, _ := json.Marshal(v)
		_ = c.SetWriteDeadline(time.Now().Add(s.timeout))
		_, err := w.Write(append(b, '\n'))
		if err == nil {
			err = w.Flush()
		}
		return err == nil
	}
	uid, err := PeerUID(c)
	if err != nil || !slices.Contains(s.log.cfg.AllowedUIDs, uid) {
		s.logger.WithField("peer_uid", uid).WithError(err).Warn("audit socket: peer refused")
		respond(reply{Error: ErrPeer.Error()})
		return
	}
	// On shutdown, stop waiting for the next request at once; a request cut
	// off here gets no reply, so its sender spools it.
	stop := context.AfterFunc(ctx, func() { _ = c.SetReadDeadline(time.Now()) })
	defer stop()
	br := bufio.NewReaderSize(c, 8<<10)
	for ctx.Err() == nil {
		if err := c.SetReadDeadline(time.Now().Add(s.timeout)); err != nil || ctx.Err() != nil {
			return
		}
		line, rerr := readLine(br)
		if len(trimNL(line)) == 0 {
			if rerr != nil {
				return
			}
			continue
		}
		if errors.Is(rerr, errLineTooLong) {
			respond(reply{Error: "record longer than 1 MiB"})
			return
		}
		if rerr != nil && !errors.Is(rerr, io.EOF) {
			return // timeout or reset: no complete request
		}
		if rerr != nil {
			return // EOF without '\n': a request cut short is not a request
		}
		var out any
		if string(trimNL(line)) == "health" {
			out = s.log.Health()
		} else {
			out = s.writeRecord(line)
		}
		if !respond(out) {
			return
		}
	}
}

func (s *Server) writeRecord(line []byte) reply {
	rec, err := ParseRecord(line)
	if err != nil {
		return reply{Error: err.Error()}
	}
	out, err := rec.Marshal()
	if err != nil {
		return reply{Error: err.Error()}
	}
	// Idempotent: a client that resends after a lost reply, or spools a
	// record the log already took, does not make a duplicate.
	if _, err := s.log.writeLine(out, rec.UUID, s.log.cfg.Sync, true); err != nil {
		return reply{Error: err.Error()}
	}
	return reply{OK: true}
}
