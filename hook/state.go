// Package hook is patchgate's OCI runtime hook front end. A runtime (runc,
// crun, podman, CRI-O through hooks.d, containerd through NRI injection) runs
// `patchgate hook` as a createRuntime hook and writes the container state on
// its stdin. This package reads that state strictly, loads the container's
// config.json from the bundle without following symlink tricks, works out who
// the container belongs to, builds the policy.Workload, and asks for a
// decision: from the node service over its unix socket, or, when the service
// is down, locally from the policy file and the kernel state file.
package hook

import (
	"io"

	"github.com/patchgate/patchgate/hook/ocistate"
)

// The state reader lives in hook/ocistate, which the thin hook links
// without this package's dependencies.

// MaxStateBytes bounds the state on stdin (ocistate.MaxStateBytes).
const MaxStateBytes = ocistate.MaxStateBytes

// MaxSpecBytes bounds config.json. Real specs are 5–50 KiB.
const MaxSpecBytes = 8 << 20

// ErrInvalidState is wrapped by every error about the state on stdin.
var ErrInvalidState = ocistate.ErrInvalidState

// State is the OCI runtime state a runtime writes on a hook's stdin.
type State = ocistate.State

// ReadState reads and validates the state from r (ocistate.ReadState).
func ReadState(r io.Reader) (*State, error) { return ocistate.ReadState(r) }

// ParseState validates one state document (ocistate.ParseState).
func ParseState(data []byte) (*State, error) { return ocistate.ParseState(data) }

// CheckBundlePath refuses a bundle path that is not clean and absolute
// (ocistate.CheckBundlePath).
func CheckBundlePath(p string) error { return ocistate.CheckBundlePath(p) }
