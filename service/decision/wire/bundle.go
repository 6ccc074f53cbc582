package wire

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// BundleVersion is the protocol version of a bundle request: the thin hook
// names the container (its runtime state) and the node service, already
// warm, reads and judges its config.json itself.
const BundleVersion = 2

// KindBundle is the only kind of a version 2 request.
const KindBundle = "bundle"

// BundleRequest is what the thin hook sends: the container's runtime state
// as the runtime gave it (already read strictly), and the `patchgate hook`
// flags that change how a workload is built. One JSON object on one line.
type BundleRequest struct {
	Version int    `json:"v"`
	Kind    string `json:"kind"`
	// ID is the audit record's UUID; a hook that falls back to the full
	// local decision passes it on (`patchgate hook --audit-id`), so the
	// record is written once.
	ID string `json:"id"`
	// ContainerID, Bundle and Pid are the state's id, bundle and pid.
	ContainerID string `json:"containerID"`
	Bundle      string `json:"bundle"`
	Pid         int    `json:"pid"`
	// OCIVersion and Status are the state's, re-checked by the service.
	OCIVersion string `json:"ociVersion"`
	Status     string `json:"status"`
	// IdentityFrom and HostRoot are the hook's --identity-from and
	// --host-root.
	IdentityFrom string `json:"identityFrom"`
	HostRoot     string `json:"hostRoot"`
	// BudgetMillis is how long, in milliseconds from sending, the hook
	// waits for the answer (see decision.DecideRequest.BudgetMillis).
	BudgetMillis int64 `json:"budgetMs"`
}

// BundleResponse is the service's answer to a BundleRequest: what the hook
// prints and exits with, or why the hook must decide itself.
type BundleResponse struct {
	Version int `json:"v"`
	// Fallback, when set, says why the service did not judge the bundle
	// (a bundle or config.json it refuses, a peer in another mount
	// namespace, a peer that is not root): the hook then runs the full
	// local decision, which reports the same refusal as it always has.
	Fallback string `json:"fallback,omitempty"`
	// Exit is the hook's exit code: 0 admits, 1 blocks.
	Exit int `json:"exit"`
	// Message is the hook's one stderr line ("" for nothing to say).
	Message string `json:"message,omitempty"`
}

// UIDAllowed reports whether uid is root or one of allowed.
func UIDAllowed(uid uint32, allowed []uint32) bool {
	if uid == 0 {
		return true
	}
	for _, a := range allowed {
		if a == uid {
			return true
		}
	}
	return false
}

// AskBundle sends req over the decision socket and returns the answer,
// within ctx's deadline (which must be set). It checks that the socket is
// served by root or the caller's own user (SO_PEERCRED), so that a socket
// planted by someone else is never believed. An error wrapping
// ErrUnreachable means the question never reached the service.
//
// It uses blocking system calls with socket timeouts rather than package
// net, whose poller the one-shot hook does not need.
func AskBundle(ctx context.Context, sock string, req *BundleRequest) (*BundleResponse, error) {
	dl, ok := ctx.Deadline()
	if !ok {
		return nil, errors.New("AskBundle needs a deadline")
	}
	if !filepath.IsAbs(sock) {
		return nil, fmt.Errorf("%w: socket path %q is not absolute", ErrUnreachable, sock)
	}
	left := time.Until(dl)
	if left <= 0 {
		return nil, fmt.Errorf("%w: no time left to ask", ErrUnreachable)
	}
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: socket: %v", ErrUnreachable, err)
	}
	c := fdConn(fd)
	defer func() { _ = c.Close() }()
	// Connect, send and receive all end by the deadline (a unix socket's
	// connect waits on the send timeout when the backlog is full).
	tv := syscall.NsecToTimeval(left.Nanoseconds())
	for _, opt := range []int{syscall.SO_RCVTIMEO, syscall.SO_SNDTIMEO} {
		if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, opt, &tv); err != nil {
			return nil, fmt.Errorf("%w: setting the socket timeout: %v", ErrUnreachable, err)
		}
	}
	if err := retry(func() error { return syscall.Connect(fd, &syscall.SockaddrUnix{Name: sock}) }); err != nil {
		return nil, fmt.Errorf("%w: connect %s: %v", ErrUnreachable, sock, err)
	}
	cred, err := syscall.GetsockoptUcred(fd, syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	if err != nil {
		return nil, fmt.Errorf("%w: SO_PEERCRED: %v", ErrUnreachable, err)
	}
	if !UIDAllowed(cred.Uid, []uint32{uint32(os.Geteuid())}) {
		return nil, fmt.Errorf("%w: %s is served by uid %d, not root", ErrUnreachable, sock, cred.Uid)
	}
	req.Version, req.Kind = BundleVersion, KindBundle
	req.BudgetMillis = max(time.Until(dl).Milliseconds(), 1)
	if err := WriteMessage(c, req); err != nil {
		return nil, fmt.Errorf("%w: sending request: %v", ErrUnreachable, err)
	}
	var resp BundleResponse
	line, err := ReadLine(bufio.NewReader(c))
	if err != nil {
		return nil, fmt.Errorf("reading the service's answer: %w", err)
	}
	if v, err := MessageVersion(line); err != nil {
		return nil, fmt.Errorf("reading the service's answer: %w", err)
	} else if v != BundleVersion {
		// A service that predates bundle requests answers in version 1
		// with an error: it is up, but cannot judge the bundle.
		return &BundleResponse{Version: v, Fallback: fmt.Sprintf("the node service speaks protocol version %d, not %d", v, BundleVersion)}, nil
	}
	if err := Decode(line, &resp); err != nil {
		return nil, fmt.Errorf("reading the service's answer: %w", err)
	}
	if resp.Fallback == "" && resp.Exit != 0 && resp.Exit != 1 {
		return nil, fmt.Errorf("%w: exit code %d is neither 0 nor 1", ErrProtocol, resp.Exit)
	}
	return &resp, nil
}

// fdConn is a blocking socket read and written with system calls.
type fdConn int

func (c fdConn) Read(p []byte) (int, error) {
	for {
		n, err := syscall.Read(int(c), p)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return 0, errors.New("timed out waiting for the answer")
		case err != nil:
			return 0, err
		case n == 0 && len(p) > 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

func (c fdConn) Write(p []byte) (int, error) {
	done := 0
	for done < len(p) {
		n, err := syscall.Write(int(c), p[done:])
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return done, errors.New("timed out sending the request")
		case err != nil:
			return done, err
		}
		done += n
	}
	return done, nil
}

func (c fdConn) Close() error { return syscall.Close(int(c)) }

func retry(f func() error) error {
	for {
		if err := f(); err != syscall.EINTR {
			return err
		}
	}
}
