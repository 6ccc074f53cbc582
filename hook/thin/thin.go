// Package thin is the thin OCI hook, cmd/patchgate-hook: the process a
// runtime starts for every container. It reads the runtime state from stdin
// (strictly, as `patchgate hook` does), hands the node service the
// container's id, bundle and pid over the decision socket, and prints the
// answer. The service, already warm, reads and judges config.json with the
// hook package's own code (the same bundle, config.json, identity,
// sandbox-spec, mountinfo and uid_map reading).
//
// When the service cannot answer (it is down, it refuses the bundle, it is
// in another mount namespace, the answer is lost) the thin hook runs the
// full local decision, `patchgate hook` with the same arguments from the
// patchgate binary next to it, which decides exactly as it always has
// (spec.hook.onError, the audit spool).
//
// It links the standard library, hook/ocistate and service/decision/wire
// only: no policy engine, YAML, protobuf or logrus, and no regexps built at
// init (test: TestThinHookDependencies).
package thin

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/patchgate/patchgate/hook/ocistate"
	"github.com/patchgate/patchgate/service/decision/wire"

	"github.com/patchgate/patchgate/internal/uuid"
)

// Exit codes, as `patchgate hook`'s.
const (
	exitAdmit = 0
	exitBlock = 1
)

// FullName is the binary, next to the thin hook, that runs the full local
// decision (`patchgate hook`).
const FullName = "patchgate"

// Full runs the full local decision: `patchgate hook` with args, the state
// on its stdin and its stderr on stderr; it returns the exit code.
type Full func(args []string, state []byte, stderr io.Writer) int

// flags are the `patchgate hook` flags the thin hook needs. It accepts all
// of them (TestThinFlagsMatchFull), so that the same hook arguments work
// with either binary, and passes them all on to the full decision.
type flags struct {
	socket, hostRoot, identityFrom, auditID string
	timeout, serviceTimeout                 time.Duration
}

func parseFlags(args []string) (*flags, error) {
	f := &flags{}
	fs := flag.NewFlagSet("hook", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	defineFlags(fs, f)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected hook arguments %q", fs.Args())
	}
	if f.timeout <= 0 || f.serviceTimeout <= 0 {
		return nil, errors.New("--timeout and --service-timeout must be positive")
	}
	// Whatever `patchgate hook` refuses (and then blocks the container
	// for) is refused here too, and handed to it unchanged: the service
	// must never judge a container under arguments the full decision fails
	// closed on (TestThinHookRefusesWhatHookRefuses).
	var bad error
	fs.Visit(func(fl *flag.Flag) {
		v := fl.Value.String()
		switch fl.Name {
		case "policy", "audit-socket", "state-file", "host-root":
			if !filepath.IsAbs(v) {
				bad = fmt.Errorf("--%s %q must be an absolute path", fl.Name, v)
			}
		case "socket", "audit-spool":
			if v != "" && !filepath.IsAbs(v) {
				bad = fmt.Errorf("--%s %q must be an absolute path", fl.Name, v)
			}
		case "audit-id":
			if v != "" && !uuid.Valid(v) {
				bad = fmt.Errorf("--audit-id %q is not a UUID", v)
			}
		case "identity-from":
			if v != "none" && v != "containerd" && v != "crio" {
				bad = fmt.Errorf("--identity-from %q: want none, containerd or crio", v)
			}
		case "nri-judged":
			// Only the policy engine can check its field names; hooks
			// with it predate the thin hook.
			if v != "" {
				bad = errors.New("--nri-judged is checked by the full decision")
			}
		}
	})
	if bad != nil {
		return nil, bad
	}
	return f, nil
}

func defineFlags(fs *flag.FlagSet, f *flags) {
	var ignored string
	for _, name := range []string{"policy", "node-name", "state-file", "audit-socket", "audit-spool", "nri-judged"} {
		fs.StringVar(&ignored, name, "", "passed on to the full decision")
	}
	fs.StringVar(&f.socket, "socket", wire.DefaultSocket, "node service decision socket")
	fs.StringVar(&f.hostRoot, "host-root", "/", "host root for /proc and /sys")
	fs.StringVar(&f.identityFrom, "identity-from", "none", "which runtime's annotations name the pod and container")
	fs.StringVar(&f.auditID, "audit-id", "", "the audit record's UUID")
	fs.DurationVar(&f.timeout, "timeout", 2*time.Second, "whole decision budget")
	fs.DurationVar(&f.serviceTimeout, "service-timeout", time.Second, "budget for asking the service")
}

// Main is the thin hook: hook flags in args (those of `patchgate hook`),
// the runtime's state on stdin, at most one line on stderr; it returns the
// exit code. full runs the full local decision.
func Main(args []string, stdin io.Reader, stderr io.Writer, full Full) int {
	start := time.Now()
	state, err := io.ReadAll(io.LimitReader(stdin, ocistate.MaxStateBytes+1))
	if err != nil {
		fmt.Fprintf(stderr, "patchgate: blocked the container: cannot decide: reading the state on stdin: %v\n", err)
		return exitBlock
	}
	f, err := parseFlags(args)
	if err != nil {
		// The full decision reports the bad arguments as it always has.
		return full(args, state, stderr)
	}
	st, err := ocistate.ParseState(state)
	if err != nil || f.socket == "" {
		// A state the hook refuses is judged by the policy's
		// spec.hook.onError, which only the full decision reads.
		return full(args, state, stderr)
	}
	id := f.auditID
	if id == "" {
		id = newUUID()
	}
	ctx, cancel := context.WithDeadline(context.Background(), start.Add(f.timeout))
	defer cancel()
	sctx, scancel := context.WithTimeout(ctx, f.serviceTimeout)
	defer scancel()
	resp, err := wire.AskBundle(sctx, f.socket, &wire.BundleRequest{
		ID: id, ContainerID: st.ID, Bundle: st.Bundle, Pid: st.Pid,
		OCIVersion: st.OCIVersion, Status: st.Status,
		IdentityFrom: f.identityFrom, HostRoot: f.hostRoot,
	})
	if err == nil && resp.Fallback == "" {
		if resp.Message != "" {
			fmt.Fprintln(stderr, resp.Message)
		}
		return resp.Exit
	}
	// The full decision, with the same audit record UUID (written once)
	// and what is left of the budget.
	more := []string{"--timeout=" + max(time.Until(start.Add(f.timeout)), time.Millisecond).String()}
	if id != "" {
		more = append(more, "--audit-id="+id)
	}
	if err != nil {
		// The service is unreachable, or its answer was lost: decide
		// without it, as `patchgate hook` does after asking it.
		more = append(more, "--socket=")
	}
	// Otherwise the service is up but did not judge the bundle (it
	// refused it, or runs in another mount namespace): the full decision
	// asks it with the workload, as before.
	return full(append(append([]string(nil), args...), more...), state, stderr)
}

// ExecFull runs `patchgate hook` from the patchgate binary next to this
// executable.
func ExecFull(args []string, state []byte, stderr io.Writer) int {
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "patchgate: blocked the container: cannot decide: finding the full decision (%s hook): %v\n", FullName, err)
		return exitBlock
	}
	path := filepath.Join(filepath.Dir(exe), FullName)
	cmd := exec.Command(path, append([]string{"hook"}, args...)...)
	cmd.Stdin = bytes.NewReader(state)
	cmd.Stderr = stderr
	err = cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return exitAdmit
	case errors.As(err, &ee) && ee.ExitCode() == exitBlock:
		return exitBlock
	case errors.As(err, &ee):
		fmt.Fprintf(stderr, "patchgate: blocked the container: cannot decide: %s hook: %v\n", path, err)
		return exitBlock
	}
	fmt.Fprintf(stderr, "patchgate: blocked the container: cannot decide: the full decision %s hook could not run: %v\n", path, err)
	return exitBlock
}

// newUUID is a random (version 4) UUID from /dev/urandom, as
// audit.NewUUID's; "" when none can be read (the full decision then makes
// its own).
func newUUID() string {
	var b [16]byte
	f, err := os.Open("/dev/urandom")
	if err != nil {
		return ""
	}
	defer func() { _ = f.Close() }()
	if _, err := io.ReadFull(f, b[:]); err != nil {
		return ""
	}
	return uuid.V4(b)
}

// FlagNames are the flags the thin hook accepts: `patchgate hook`'s.
func FlagNames() []string {
	var names []string
	fs := flag.NewFlagSet("hook", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	defineFlags(fs, &flags{})
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	return names
}
