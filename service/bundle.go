package service

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"syscall"

	"github.com/patchgate/patchgate/hook/ocistate"
	"github.com/patchgate/patchgate/policy"
	"github.com/patchgate/patchgate/service/decision"
	"github.com/patchgate/patchgate/service/decision/wire"
)

// BundleJudge is the hook package's own reading of a container
// (hook.BundleJudge), which the service uses to answer the thin hook. It is
// given to the service (WithBundleJudge) rather than imported, since the
// hook's tests run a service.
type BundleJudge interface {
	// BuildWorkload reads and checks the bundle and config.json of the
	// container of state st exactly as `patchgate hook` does, with its
	// --host-root and --identity-from (which it validates).
	BuildWorkload(st *ocistate.State, hostRoot, identityFrom string) (*policy.Workload, error)
	// Outcome is what `patchgate hook` does with the service's answer:
	// its exit code and its stderr line.
	Outcome(resp *decision.DecideResponse, w *policy.Workload) (exit int, message string)
}

// WithBundleJudge lets the service answer the thin hook's bundle requests.
// Without it, every bundle request is answered with a fallback and the
// hook decides in full itself.
func WithBundleJudge(j BundleJudge) Option {
	return func(s *Service) error {
		s.bundleJudge = j
		return nil
	}
}

// answerBundle judges the container the thin hook names: the service reads
// its config.json from the bundle with the hook package's own code (the
// same strict state, bundle and config.json checks, identity rules,
// sandbox spec, mountinfo and uid_map reading as `patchgate hook`), then
// decides as for a workload request. Whatever it will not read it sends
// back as a fallback, and the hook runs the full local decision, which
// refuses or judges it exactly as before.
func (s *Service) answerBundle(ctx context.Context, req *wire.BundleRequest, cred *syscall.Ucred) wire.BundleResponse {
	resp := wire.BundleResponse{Version: wire.BundleVersion}
	fallback := func(format string, args ...any) wire.BundleResponse {
		resp.Fallback = fmt.Sprintf(format, args...)
		s.logger.WithField("peer_pid", cred.Pid).WithField("container_id", req.ContainerID).Debug("bundle request: " + resp.Fallback)
		return resp
	}
	if s.bundleJudge == nil {
		return fallback("this service does not read bundles")
	}
	if req.Kind != wire.KindBundle {
		return fallback("request kind %q is not %q", req.Kind, wire.KindBundle)
	}
	// The service reads the bundle as root. It does so only for a root
	// hook (what a runtime runs for a rootful container), whose config.json
	// must be root's (hook.ReadSpec checks the owner against the reader).
	if cred.Uid != 0 {
		return fallback("the hook runs as uid %d, not root: it reads the bundle itself", cred.Uid)
	}
	// Mount sources, mount tables and /proc/<pid> mean what they mean to
	// the hook only in the hook's own mount and pid namespaces and root.
	if err := samePlace(cred.Pid); err != nil {
		return fallback("%v", err)
	}
	st := &ocistate.State{OCIVersion: req.OCIVersion, ID: req.ContainerID, Status: req.Status, Pid: req.Pid, Bundle: req.Bundle}
	if err := st.Validate(); err != nil {
		return fallback("%v", err)
	}
	w, err := s.bundleJudge.BuildWorkload(st, req.HostRoot, req.IdentityFrom)
	if err != nil {
		return fallback("the container cannot be judged here: %v", err)
	}
	dreq := decision.DecideRequest{
		Version: decision.ProtocolVersion, ID: req.ID, Seen: w.Seen, Workload: w,
		ContainerID: req.ContainerID, BudgetMillis: req.BudgetMillis,
	}
	dresp := s.answer(ctx, &dreq, cred)
	resp.Exit, resp.Message = s.bundleJudge.Outcome(&dresp, w)
	return resp
}

// samePlace checks that process pid (the hook, by SO_PEERCRED) has this
// process's mount namespace, pid namespace and root directory.
func samePlace(pid int32) error {
	if pid <= 0 {
		return fmt.Errorf("peer pid %d unknown", pid)
	}
	peer := "/proc/" + strconv.Itoa(int(pid))
	for _, p := range []struct{ what, own, theirs string }{
		{"mount namespace", "/proc/self/ns/mnt", peer + "/ns/mnt"},
		{"pid namespace", "/proc/self/ns/pid", peer + "/ns/pid"},
		{"root directory", "/proc/self/root", peer + "/root"},
	} {
		a, err := os.Stat(p.own)
		if err != nil {
			return fmt.Errorf("the service's own %s: %v", p.what, err)
		}
		b, err := os.Stat(p.theirs)
		if err != nil {
			return fmt.Errorf("the hook's %s: %v", p.what, err)
		}
		if !os.SameFile(a, b) {
			return fmt.Errorf("the hook runs in another %s than the service: it reads the bundle itself", p.what)
		}
	}
	return nil
}
