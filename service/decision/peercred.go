package decision

import (
	"errors"
	"fmt"
	"github.com/patchgate/patchgate/service/decision/wire"
	"net"
	"syscall"
)

// PeerCred returns the credentials of the process at the other end of a
// unix socket (SO_PEERCRED), which the kernel fills in and the peer cannot
// forge.
func PeerCred(c *net.UnixConn) (*syscall.Ucred, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var cred *syscall.Ucred
	var serr error
	if err := raw.Control(func(fd uintptr) {
		cred, serr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return nil, err
	}
	if serr != nil {
		return nil, fmt.Errorf("SO_PEERCRED: %w", serr)
	}
	if cred == nil {
		return nil, errors.New("SO_PEERCRED: no credentials")
	}
	return cred, nil
}

// UIDAllowed reports whether uid is root or one of allowed.
var UIDAllowed = wire.UIDAllowed
