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
	nodeNameFlag(fs, &f.nodeName, hook.NodeName(), "node name for the nodes/<name>.yaml overlay", "$NODE_NAME, else the hostname")
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

// nodeSettings are the node service's settings from serve's flags.
func (f *serveFlags) nodeSettings() nodeSettings {
	return nodeSettings{
		Policy: f.policyPath, NodeName: f.nodeName, HostRoot: f.hostRoot,
		MetricsAddr: f.metricsAddr, healthAddr: f.healthAddr,
		decisionSocket: f.socket, auditSocket: f.auditSocket, auditLog: f.auditLog,
		statusFile: f.statusFile, stateFile: f.stateFile,
		kernelInterval: f.interval, pollInterval: f.poll,
	}
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

	n := &nodeRunner{log: logger}
	svc, err := n.start(ctx, f.nodeSettings())
	if err != nil {
		fmt.Fprintf(stderr, "patchgate serve: %v\n", err)
		return exitInvalid
	}
	// Until a signal, or until the service stops by itself (an error).
	select {
	case <-ctx.Done():
	case <-svc.Done():
	}
	n.close()
	if err := svc.Err(); err != nil {
		fmt.Fprintf(stderr, "patchgate serve: %v\n", err)
		return exitInvalid
	}
	return exitOK
}
