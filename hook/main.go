package hook

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/patchgate/patchgate/audit"
	"github.com/patchgate/patchgate/livepatch"
	"github.com/patchgate/patchgate/policy"
	"github.com/patchgate/patchgate/service/decision"
)

// flags are `patchgate hook`'s flags.
type flags struct {
	policyPath, nodeName, socket, stateFile, hostRoot string
	auditSocket, auditSpool, nriJudged, identityFrom  string
	auditID                                           string
	timeout, serviceTimeout                           time.Duration
}

// parseFlags parses the hook's arguments; any error means the hook cannot
// decide.
func parseFlags(args []string, stderr io.Writer) (*flags, error) {
	f := &flags{}
	fs := newFlagSet(f, stderr)
	if err := fs.Parse(args); err != nil {
		return nil, fmt.Errorf("bad hook arguments (check the hooks.d file or the NRI hook injection): %w", err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected hook arguments %q", fs.Args())
	}
	// Still checked, so a mistyped value is seen, but never used: a flag
	// in the container's hook arguments must not make the hook skip a rule.
	if _, err := policy.ParseFieldNames(f.nriJudged); err != nil {
		return nil, fmt.Errorf("--nri-judged: %w", err)
	}
	switch f.identityFrom {
	case IdentityFromNone, IdentityFromContainerd, IdentityFromCRIO:
	default:
		return nil, fmt.Errorf("--identity-from %q: want none, containerd or crio", f.identityFrom)
	}
	if f.auditID != "" && !audit.ValidUUID(f.auditID) {
		return nil, fmt.Errorf("--audit-id %q is not a UUID", f.auditID)
	}
	if f.timeout <= 0 || f.serviceTimeout <= 0 {
		return nil, fmt.Errorf("--timeout and --service-timeout must be positive")
	}
	// The runtime runs the hook in the bundle: a relative path would be
	// read from there.
	for name, p := range map[string]string{"--policy": f.policyPath, "--audit-socket": f.auditSocket, "--state-file": f.stateFile, "--host-root": f.hostRoot} {
		if p == "" || !filepath.IsAbs(p) {
			return nil, fmt.Errorf("%s %q must be an absolute path", name, p)
		}
	}
	for name, p := range map[string]string{"--socket": f.socket, "--audit-spool": f.auditSpool} {
		if p != "" && !filepath.IsAbs(p) {
			return nil, fmt.Errorf("%s %q must be an absolute path", name, p)
		}
	}
	return f, nil
}

func newFlagSet(f *flags, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("hook", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.policyPath, "policy", policy.DefaultDir, "policy file or directory, for deciding without the service")
	fs.StringVar(&f.nodeName, "node-name", NodeName(), "node name for the nodes/<name>.yaml overlay (default: $NODE_NAME, else the hostname)")
	// The usage names where the default comes from, not this host's name.
	fs.Lookup("node-name").DefValue = ""
	fs.StringVar(&f.socket, "socket", decision.DefaultSocket, `node service decision socket ("" to always decide locally)`)
	fs.StringVar(&f.stateFile, "state-file", livepatch.DefaultStateFile, "kernel state file the service keeps fresh")
	fs.StringVar(&f.hostRoot, "host-root", "/", "host root for /proc and /sys")
	fs.StringVar(&f.auditSocket, "audit-socket", audit.DefaultSocket, "audit socket of the service")
	fs.StringVar(&f.auditSpool, "audit-spool", "", "audit spool file (default: next to the policy's audit log)")
	fs.DurationVar(&f.timeout, "timeout", 2*time.Second, "whole decision budget")
	fs.DurationVar(&f.serviceTimeout, "service-timeout", time.Second, "budget for asking the service")
	fs.StringVar(&f.nriJudged, "nri-judged", "", "accepted for compatibility with hooks injected by older `patchgate nri` and ignored: what NRI judged is asked of the node service")
	fs.StringVar(&f.identityFrom, "identity-from", IdentityFromNone, "which runtime's annotations name the pod and container: none (default; any runtime lets the container's creator write them), containerd or crio")
	fs.StringVar(&f.auditID, "audit-id", "", "the audit record's UUID (set by the thin hook patchgate-hook when it hands over to this full decision, so that the record is written once)")
	return fs
}

// PrintDefaults writes `patchgate hook`'s flags with their defaults and
// help (for `patchgate hook --help`).
func PrintDefaults(w io.Writer) {
	newFlagSet(&flags{}, w).PrintDefaults()
}

// FlagNames are `patchgate hook`'s flags (the thin hook accepts the same).
func FlagNames() []string {
	var names []string
	newFlagSet(&flags{}, io.Discard).VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	return names
}

// CheckArgs reports whether `patchgate hook` accepts args; `patchgate
// hooks-config` uses it so that a hooks.d file never carries flags that
// would make the hook refuse every container.
func CheckArgs(args []string) error {
	_, err := parseFlags(args, io.Discard)
	return err
}

// Main is `patchgate hook`: flags in args, the runtime's state on stdin, one
// line on stderr, and the exit code to return (ExitAdmit or ExitBlock). It
// is shared by the patchgate binary and the small patchgate-hook binary.
func Main(args []string, stdin io.Reader, stderr io.Writer) int {
	f, err := parseFlags(args, io.Discard)
	if err != nil {
		// A hook that cannot parse its own flags cannot decide: deny.
		fmt.Fprintf(stderr, "patchgate: blocked the container: cannot decide: %v\n", err)
		return ExitBlock
	}
	policyPath, nodeName, socket, stateFile, hostRoot := &f.policyPath, &f.nodeName, &f.socket, &f.stateFile, &f.hostRoot
	auditSocket, auditSpool, timeout, serviceTimeout := &f.auditSocket, &f.auditSpool, &f.timeout, &f.serviceTimeout
	cfg := Config{
		IdentityFrom: f.identityFrom,
		PolicyPath:   *policyPath,
		NodeName:     *nodeName,
		HostRoot:     *hostRoot,
		Timeout:      *timeout,
		NewID:        audit.NewUUID,
		Kernel: func(ctx context.Context, pol *policy.Policy) (*policy.KernelState, error) {
			return LocalKernelState(ctx, pol, *stateFile, *hostRoot)
		},
		Audit: func(ctx context.Context, id string, pol *policy.Policy, w *policy.Workload, d *policy.Decision, k *policy.KernelState) error {
			spool := *auditSpool
			if spool == "" {
				p := pol.Spec.Audit.Path
				if p == "" {
					p = audit.DefaultPath
				}
				spool = audit.SpoolPathFor(p)
			}
			c, err := audit.NewClient(audit.WithClientSocket(*auditSocket), audit.WithSpool(spool), audit.WithTimeout(*serviceTimeout))
			if err != nil {
				return err
			}
			rec := audit.NewRecord(audit.SourceHook, w, d, k, nil)
			rec.UUID = id
			return c.Send(ctx, rec)
		},
	}
	if f.auditID != "" {
		id := f.auditID
		cfg.NewID = func() string { return id }
	}
	if *socket != "" {
		cfg.Service = &decision.Client{Socket: *socket, Timeout: *serviceTimeout}
	}
	out := Run(context.Background(), cfg, stdin)
	out.Print(stderr)
	return out.Exit
}

// LocalKernelState is the kernel state for a decision made without the
// service: the state file when it is fresh enough for the policy
// (kernel.maxStateAge), else the kernel's own sysfs read directly. Provider
// tools are never run here: the hook must stay fast and never waits on one.
func LocalKernelState(ctx context.Context, pol *policy.Policy, stateFile, hostRoot string) (*policy.KernelState, error) {
	if st, err := livepatch.ReadStateFile(stateFile); err == nil {
		maxAge := pol.Spec.Kernel.MaxStateAge.D()
		if maxAge <= 0 || time.Since(st.ObservedAt) <= maxAge {
			return st, nil
		}
	}
	r, err := livepatch.NewReader(livepatch.WithHostRoot(hostRoot), livepatch.WithProvider("sysfs"))
	if err != nil {
		return nil, err
	}
	k := r.Read(ctx)
	return &k, nil
}

// NodeName is $NODE_NAME, else the hostname.
func NodeName() string {
	if n := os.Getenv("NODE_NAME"); n != "" {
		return n
	}
	n, _ := os.Hostname()
	return n
}
