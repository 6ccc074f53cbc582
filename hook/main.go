package hook

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/patchgate/patchgate/audit"
	"github.com/patchgate/patchgate/livepatch"
	"github.com/patchgate/patchgate/policy"
	"github.com/patchgate/patchgate/service/decision"
)

// Main is `patchgate hook`: flags in args, the runtime's state on stdin, one
// line on stderr, and the exit code to return (ExitAdmit or ExitBlock). It
// is shared by the patchgate binary and the small patchgate-hook binary.
func Main(args []string, stdin io.Reader, stderr io.Writer) int {
	fs := flag.NewFlagSet("hook", flag.ContinueOnError)
	fs.SetOutput(stderr)
	policyPath := fs.String("policy", policy.DefaultDir, "policy file or directory, for deciding without the service")
	nodeName := fs.String("node-name", NodeName(), "node name for the nodes/<name>.yaml overlay")
	socket := fs.String("socket", decision.DefaultSocket, `node service decision socket ("" to always decide locally)`)
	stateFile := fs.String("state-file", livepatch.DefaultStateFile, "kernel state file the service keeps fresh")
	hostRoot := fs.String("host-root", "/", "host root for /proc and /sys")
	auditSocket := fs.String("audit-socket", audit.DefaultSocket, "audit socket of the service")
	auditSpool := fs.String("audit-spool", "", "audit spool file (default: next to the policy's audit log)")
	timeout := fs.Duration("timeout", 2*time.Second, "whole decision budget")
	serviceTimeout := fs.Duration("service-timeout", time.Second, "budget for asking the service")
	nriJudged := fs.String("nri-judged", "", "fields the NRI plugin that injected this hook has judged already (set by `patchgate nri`)")
	if err := fs.Parse(args); err != nil {
		// A hook that cannot parse its own flags cannot decide: deny.
		fmt.Fprintln(stderr, "patchgate: blocked the container: cannot decide: bad hook arguments (check the hooks.d file or the NRI hook injection)")
		return ExitBlock
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "patchgate: blocked the container: cannot decide: unexpected hook arguments %q\n", fs.Args())
		return ExitBlock
	}
	judged, err := policy.ParseFieldNames(*nriJudged)
	if err != nil {
		fmt.Fprintf(stderr, "patchgate: blocked the container: cannot decide: --nri-judged: %v\n", err)
		return ExitBlock
	}
	cfg := Config{
		NRIJudged:  judged,
		PolicyPath: *policyPath,
		NodeName:   *nodeName,
		HostRoot:   *hostRoot,
		Timeout:    *timeout,
		NewID:      audit.NewUUID,
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
