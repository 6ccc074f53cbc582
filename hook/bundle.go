package hook

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/patchgate/patchgate/policy"
)

// ErrInvalidBundle is wrapped by every error about the bundle or its
// config.json.
var ErrInvalidBundle = errors.New("invalid bundle")

// Layout names the bundle convention of the runtime that ran the hook.
type Layout string

const (
	// LayoutContainerd is containerd's runc shim:
	// <state>/io.containerd.runtime.v2.task/<namespace>/<id>.
	LayoutContainerd Layout = "containerd"
	// LayoutContainersStorage is podman and CRI-O (containers/storage):
	// <root or runroot>/<driver>-containers/<id>/userdata.
	LayoutContainersStorage Layout = "containers-storage"
	// LayoutPlain is any other directory, e.g. `runc run -b DIR`.
	LayoutPlain Layout = "plain"
)

const containerdTaskDir = "io.containerd.runtime.v2.task"

// NamespaceCRI is the containerd namespace of containerd's CRI plugin, the
// only one whose containers the kubelet made.
const NamespaceCRI = "k8s.io"

// BundleInfo is what the bundle path says about the container.
type BundleInfo struct {
	Layout Layout
	// Namespace is the containerd namespace (k8s.io for CRI), for
	// LayoutContainerd only.
	Namespace string
}

// ClassifyBundle works out the runtime convention from the bundle path and
// checks that the path agrees with the container id: containerd's bundle
// ends in /<id>, containers/storage's in /<id>/userdata. A bundle that has
// the shape of one convention but names another container is refused: the
// state would then describe one container and config.json another.
func ClassifyBundle(bundle, id string) (BundleInfo, error) {
	if err := CheckBundlePath(bundle); err != nil {
		return BundleInfo{}, fmt.Errorf("%w: %v", ErrInvalidBundle, err)
	}
	parts := strings.Split(strings.TrimPrefix(bundle, "/"), "/")
	n := len(parts)
	if n >= 3 && parts[n-3] == containerdTaskDir {
		if parts[n-1] != id {
			return BundleInfo{}, fmt.Errorf("%w: containerd bundle %q does not end in the container id %q", ErrInvalidBundle, bundle, id)
		}
		return BundleInfo{Layout: LayoutContainerd, Namespace: parts[n-2]}, nil
	}
	if n >= 3 && parts[n-1] == "userdata" && strings.HasSuffix(parts[n-3], "-containers") {
		if parts[n-2] != id {
			return BundleInfo{}, fmt.Errorf("%w: bundle %q is not the userdata directory of container %q", ErrInvalidBundle, bundle, id)
		}
		return BundleInfo{Layout: LayoutContainersStorage}, nil
	}
	return BundleInfo{Layout: LayoutPlain}, nil
}

// ReadSpec opens <bundle>/config.json without following a symlink at the
// bundle's last component or at config.json, requires a regular file owned
// by the hook's effective user that is at most MaxSpecBytes long, and
// decodes it strictly enough that a spec that is not an OCI spec (trailing
// data, wrong types, no process) is an error. Parent directories of the
// bundle may be symlinks (/var/run -> /run is common); the bundle path
// itself comes from the runtime.
func ReadSpec(bundle string) (*specs.Spec, []byte, error) {
	if err := CheckBundlePath(bundle); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrInvalidBundle, err)
	}
	dirfd, err := syscall.Open(bundle, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) || errors.Is(err, syscall.ENOTDIR) {
			return nil, nil, fmt.Errorf("%w: bundle %q is a symlink or not a directory", ErrInvalidBundle, bundle)
		}
		return nil, nil, fmt.Errorf("%w: opening bundle %q: %v", ErrInvalidBundle, bundle, err)
	}
	defer func() { _ = syscall.Close(dirfd) }()
	fd, err := syscall.Openat(dirfd, "config.json", syscall.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC|syscall.O_NOCTTY, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, nil, fmt.Errorf("%w: %s/config.json is a symlink; refusing to follow it", ErrInvalidBundle, bundle)
		}
		return nil, nil, fmt.Errorf("%w: opening %s/config.json: %v", ErrInvalidBundle, bundle, err)
	}
	f := os.NewFile(uintptr(fd), filepath.Join(bundle, "config.json"))
	defer func() { _ = f.Close() }() // read-only
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return nil, nil, fmt.Errorf("%w: stat %s: %v", ErrInvalidBundle, f.Name(), err)
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return nil, nil, fmt.Errorf("%w: %s is not a regular file", ErrInvalidBundle, f.Name())
	}
	if euid := uint32(os.Geteuid()); st.Uid != euid {
		return nil, nil, fmt.Errorf("%w: %s is owned by uid %d, not by uid %d that runs the hook", ErrInvalidBundle, f.Name(), st.Uid, euid)
	}
	if st.Size > MaxSpecBytes {
		return nil, nil, fmt.Errorf("%w: %s is %d bytes, more than the %d allowed", ErrInvalidBundle, f.Name(), st.Size, MaxSpecBytes)
	}
	// One read of the size fstat gave (plus one byte, to see a file that
	// grew since), never more than MaxSpecBytes+1.
	buf := make([]byte, st.Size+1)
	n, err := io.ReadFull(f, buf)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return nil, nil, fmt.Errorf("%w: reading %s: %v", ErrInvalidBundle, f.Name(), err)
	}
	if n > MaxSpecBytes {
		return nil, nil, fmt.Errorf("%w: %s grew past %d bytes while being read", ErrInvalidBundle, f.Name(), MaxSpecBytes)
	}
	data := buf[:n]
	spec, err := ParseSpec(data)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %v", ErrInvalidBundle, f.Name(), err)
	}
	return spec, data, nil
}

// ParseSpec decodes an OCI runtime spec. It refuses more than MaxSpecBytes,
// trailing data, and a spec without process or linux sections, which a
// runtime would need to start a Linux container at all.
func ParseSpec(data []byte) (*specs.Spec, error) {
	if len(data) > MaxSpecBytes {
		return nil, fmt.Errorf("config.json is more than %d bytes", MaxSpecBytes)
	}
	// The same strict decoder as `patchgate eval`: duplicate and
	// case-variant keys are refused.
	spec, err := policy.ParseSpec(data)
	if err != nil {
		return nil, fmt.Errorf("decoding OCI spec: %w", err)
	}
	if spec.Version == "" {
		return nil, errors.New("ociVersion is missing")
	}
	if spec.Process == nil {
		return nil, errors.New("process is missing")
	}
	if spec.Linux == nil {
		return nil, errors.New("linux is missing")
	}
	return spec, nil
}
