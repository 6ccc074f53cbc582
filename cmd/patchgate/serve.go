package main

import (
	"context"
	"fmt"
	"io"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/patchgate/patchgate/audit"
	"github.com/patchgate/patchgate/hook"
	"github.com/patchgate/patchgate/livepatch"
	"github.com/patchgate/patchgate/metrics"
	"github.com/patchgate/patchgate/policy"
	"github.com/patchgate/patchgate/service"
)

func init() {
	register(newServeCmd)
}

// serveFlags are `patchgate serve`'s flags.
type serveFlags struct {
	policyPath, nodeName, socket, auditSocket, auditLog, statusFile, stateFile, hostRoot, metricsAddr, healthAddr string
	log                                                                                                           logFlags
	interval, poll                                                                                                time.Duration
}

func newServeCmd() *cobra.Command {
	f := &serveFlags{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "run the node service (kernel monitor, policy watcher, decision and audit sockets, metrics)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return codeErr(runServe(f, cmd.OutOrStdout(), cmd.ErrOrStderr()))
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.policyPath, "policy", policy.DefaultDir, "policy file or directory")
	fs.StringVar(&f.nodeName, "node-name", hook.NodeName(), "node name for the nodes/<name>.yaml overlay")
	fs.StringVar(&f.socket, "socket", service.DefaultSocket, "decision socket for the hooks (patchgate hook, patchgate-hook)")
	fs.StringVar(&f.auditSocket, "audit-socket", audit.DefaultSocket, "audit socket for records from other processes")
	fs.StringVar(&f.auditLog, "audit-log", "", "audit log path (default: the policy's spec.audit.path)")
	fs.StringVar(&f.statusFile, "status-file", service.DefaultStatusFile, "status file read by patchgate check")
	fs.StringVar(&f.stateFile, "state-file", livepatch.DefaultStateFile, "kernel state file kept fresh for hooks")
	fs.StringVar(&f.hostRoot, "host-root", "/", "host root for /proc and /sys")
	fs.DurationVar(&f.interval, "kernel-interval", time.Minute, "how often the kernel state is read")
	fs.DurationVar(&f.poll, "poll-interval", 2*time.Second, "how often the policy files are checked for changes")
	fs.StringVar(&f.metricsAddr, "metrics-addr", "", "serve Prometheus metrics and the probes (/healthz, /readyz) on this loopback address (e.g. 127.0.0.1:9464)")
	fs.StringVar(&f.healthAddr, "health-addr", "", "also serve the liveness and readiness probes (/healthz, /readyz; no metrics) on this address")
	f.log.add(cmd)
	return cmd
}

func runServe(f *serveFlags, stdout, stderr io.Writer) int {
	// The service hands this path to hooks; make it absolute.
	if abs, err := filepath.Abs(f.policyPath); err == nil {
		f.policyPath = abs
	}
	logger, err := f.log.logger(stderr)
	if err != nil {
		fmt.Fprintf(stderr, "patchgate serve: %v\n", err)
		return exitInvalid
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	// The policy is loaded once here for the kernel provider settings; the
	// service loads (and watches) it itself.
	pol, err := policy.Load(f.policyPath, f.nodeName)
	if err != nil {
		fmt.Fprintf(stderr, "patchgate serve: %v\n", err)
		return exitInvalid
	}
	reader, err := livepatch.NewReader(livepatch.WithHostRoot(f.hostRoot), livepatch.WithProvider(pol.Spec.Kernel.Provider),
		livepatch.WithTools(pol.Spec.Kernel.Tools))
	if err != nil {
		fmt.Fprintf(stderr, "patchgate serve: %v\n", err)
		return exitInvalid
	}
	mon, err := livepatch.NewMonitor(reader, livepatch.WithStateFile(f.stateFile), livepatch.WithInterval(f.interval), livepatch.WithLogger(logger))
	if err != nil {
		fmt.Fprintf(stderr, "patchgate serve: %v\n", err)
		return exitInvalid
	}
	opts := []service.Option{
		service.WithPolicy(f.policyPath, f.nodeName),
		service.WithPollInterval(f.poll),
		service.WithSocket(f.socket),
		service.WithStatusFile(f.statusFile),
		service.WithKernelMonitor(mon),
		service.WithLogger(logger),
		service.WithMetrics(metrics.New(), f.metricsAddr),
		service.WithHealthAddr(f.healthAddr),
	}
	if f.auditLog != "" {
		a := pol.Spec.Audit
		opts = append(opts, service.WithAudit(audit.Config{
			Path: f.auditLog, MaxSizeBytes: int64(a.MaxSizeMB) << 20, MaxBackups: a.MaxBackups,
			RecordAllowed: a.RecordAllowed, Sync: a.Sync, FailClosed: a.FailClosed, Logger: logger,
		}, f.auditSocket))
	} else if f.auditSocket != audit.DefaultSocket {
		a := pol.Spec.Audit
		opts = append(opts, service.WithAudit(audit.Config{
			Path: a.Path, MaxSizeBytes: int64(a.MaxSizeMB) << 20, MaxBackups: a.MaxBackups,
			RecordAllowed: a.RecordAllowed, Sync: a.Sync, FailClosed: a.FailClosed, Logger: logger,
		}, f.auditSocket))
	}
	if pol.Spec.Remediation.Enabled {
		rem, err := livepatch.NewRemediator(reader, mon,
			livepatch.WithPolicy(pol),
			livepatch.WithCommand(pol.Spec.Remediation.Command),
			livepatch.WithRemediationTimeout(pol.Spec.Remediation.Timeout.D()),
			livepatch.WithRemediationLogger(logger))
		if err != nil {
			fmt.Fprintf(stderr, "patchgate serve: %v\n", err)
			return exitInvalid
		}
		opts = append(opts, service.WithRemediator(remediatorAdapter{rem}))
	}
	// The thin hook (patchgate-hook) hands over the container; the
	// service reads its bundle with the hook's own code.
	opts = append(opts, service.WithBundleJudge(hook.BundleJudge{}))
	svc, err := service.New(opts...)
	if err != nil {
		fmt.Fprintf(stderr, "patchgate serve: %v\n", err)
		return exitInvalid
	}
	// Start reads the kernel once before it serves (REVIEW BFG1); the
	// monitor's background reads begin after it, so that first read does
	// not queue behind one of them.
	if err := svc.Start(ctx); err != nil {
		fmt.Fprintf(stderr, "patchgate serve: %v\n", err)
		return exitInvalid
	}
	monDone := make(chan struct{})
	go func() {
		defer close(monDone)
		_ = mon.Run(ctx) // returns ctx.Err() when serve stops
	}()
	<-svc.Done()
	<-monDone
	if err := svc.Err(); err != nil {
		fmt.Fprintf(stderr, "patchgate serve: %v\n", err)
		return exitInvalid
	}
	return exitOK
}

// remediatorAdapter gives the service the livepatch remediator.
type remediatorAdapter struct{ r *livepatch.Remediator }

func (a remediatorAdapter) Remediate(ctx context.Context, wait time.Duration) (string, string) {
	out := a.r.Ensure(ctx, wait)
	return out.Status, out.Reason
}
