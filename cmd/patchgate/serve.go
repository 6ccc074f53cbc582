package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/patchgate/patchgate/audit"
	"github.com/patchgate/patchgate/hook"
	"github.com/patchgate/patchgate/livepatch"
	"github.com/patchgate/patchgate/metrics"
	"github.com/patchgate/patchgate/policy"
	"github.com/patchgate/patchgate/service"
)

func init() {
	register(command{
		name:    "serve",
		summary: "run the node service (kernel monitor, policy watcher, decision and audit sockets, metrics)",
		run:     runServe,
	})
}

func runServe(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	policyPath := fs.String("policy", policy.DefaultDir, "policy file or directory")
	nodeName := fs.String("node-name", hook.NodeName(), "node name for the nodes/<name>.yaml overlay")
	socket := fs.String("socket", service.DefaultSocket, "decision socket for `patchgate hook`")
	auditSocket := fs.String("audit-socket", audit.DefaultSocket, "audit socket for records from other processes")
	auditLog := fs.String("audit-log", "", "audit log path (default: the policy's spec.audit.path)")
	statusFile := fs.String("status-file", service.DefaultStatusFile, "status file read by `patchgate check`")
	stateFile := fs.String("state-file", livepatch.DefaultStateFile, "kernel state file kept fresh for hooks")
	hostRoot := fs.String("host-root", "/", "host root for /proc and /sys")
	interval := fs.Duration("kernel-interval", time.Minute, "how often the kernel state is read")
	poll := fs.Duration("poll-interval", 2*time.Second, "how often the policy files are checked for changes")
	metricsAddr := fs.String("metrics-addr", "", "serve Prometheus metrics and the probes (/healthz, /readyz) on this loopback address (e.g. 127.0.0.1:9464)")
	healthAddr := fs.String("health-addr", "", "also serve the liveness and readiness probes (/healthz, /readyz; no metrics) on this address")
	logLevel := fs.String("log-level", "info", "operational log level")
	if err := fs.Parse(args); err != nil {
		return exitInvalid
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "patchgate serve: unexpected argument %q\n", fs.Arg(0))
		return exitInvalid
	}
	// The service hands this path to hooks; make it absolute.
	if abs, err := filepath.Abs(*policyPath); err == nil {
		*policyPath = abs
	}
	logger := logrus.New()
	logger.SetOutput(stderr)
	logger.SetFormatter(&logrus.JSONFormatter{})
	lvl, err := logrus.ParseLevel(*logLevel)
	if err != nil {
		fmt.Fprintf(stderr, "patchgate serve: %v\n", err)
		return exitInvalid
	}
	logger.SetLevel(lvl)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	// The policy is loaded once here for the kernel provider settings; the
	// service loads (and watches) it itself.
	pol, err := policy.Load(*policyPath, *nodeName)
	if err != nil {
		fmt.Fprintf(stderr, "patchgate serve: %v\n", err)
		return exitInvalid
	}
	reader, err := livepatch.NewReader(livepatch.WithHostRoot(*hostRoot), livepatch.WithProvider(pol.Spec.Kernel.Provider),
		livepatch.WithTools(pol.Spec.Kernel.Tools))
	if err != nil {
		fmt.Fprintf(stderr, "patchgate serve: %v\n", err)
		return exitInvalid
	}
	mon, err := livepatch.NewMonitor(reader, livepatch.WithStateFile(*stateFile), livepatch.WithInterval(*interval), livepatch.WithLogger(logger))
	if err != nil {
		fmt.Fprintf(stderr, "patchgate serve: %v\n", err)
		return exitInvalid
	}
	opts := []service.Option{
		service.WithPolicy(*policyPath, *nodeName),
		service.WithPollInterval(*poll),
		service.WithSocket(*socket),
		service.WithStatusFile(*statusFile),
		service.WithKernelMonitor(mon),
		service.WithLogger(logger),
		service.WithMetrics(metrics.New(), *metricsAddr),
		service.WithHealthAddr(*healthAddr),
	}
	if *auditLog != "" {
		a := pol.Spec.Audit
		opts = append(opts, service.WithAudit(audit.Config{
			Path: *auditLog, MaxSizeBytes: int64(a.MaxSizeMB) << 20, MaxBackups: a.MaxBackups,
			RecordAllowed: a.RecordAllowed, Sync: a.Sync, FailClosed: a.FailClosed, Logger: logger,
		}, *auditSocket))
	} else if *auditSocket != audit.DefaultSocket {
		a := pol.Spec.Audit
		opts = append(opts, service.WithAudit(audit.Config{
			Path: a.Path, MaxSizeBytes: int64(a.MaxSizeMB) << 20, MaxBackups: a.MaxBackups,
			RecordAllowed: a.RecordAllowed, Sync: a.Sync, FailClosed: a.FailClosed, Logger: logger,
		}, *auditSocket))
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
