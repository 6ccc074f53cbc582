package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/nri/pkg/api"
	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/patchgate/patchgate/audit"
	"github.com/patchgate/patchgate/hook"
	"github.com/patchgate/patchgate/internal/trustedpath"
	"github.com/patchgate/patchgate/livepatch"
	"github.com/patchgate/patchgate/metrics"
	"github.com/patchgate/patchgate/plugin"
	"github.com/patchgate/patchgate/policy"
	"github.com/patchgate/patchgate/service"
)

func init() {
	register(newNRICmd)
}

func defaultNRISettings() nodeSettings {
	return nodeSettings{
		Policy:         policy.DefaultDir,
		NodeName:       hook.NodeName(), // $NODE_NAME (the DaemonSet's downward API), else the hostname
		HostRoot:       "/",
		decisionSocket: service.DefaultSocket,
		auditSocket:    audit.DefaultSocket,
		statusFile:     service.DefaultStatusFile,
		stateFile:      livepatch.DefaultStateFile,
		kernelInterval: time.Minute,
		pollInterval:   2 * time.Second,
	}
}

// parseNRIConf reads nri.conf strictly over the defaults: an unknown key or a
// wrong type is an error.
func parseNRIConf(data string, s nodeSettings) (nodeSettings, error) {
	if strings.TrimSpace(data) == "" {
		return s, nil
	}
	var c struct {
		nodeSettings
		DecisionSocket string `json:"decisionSocket,omitempty"`
		AuditSocket    string `json:"auditSocket,omitempty"`
		AuditLog       string `json:"auditLog,omitempty"`
		StatusFile     string `json:"statusFile,omitempty"`
		StateFile      string `json:"stateFile,omitempty"`
	}
	if err := yaml.UnmarshalStrict([]byte(data), &c); err != nil {
		return s, fmt.Errorf("nri.conf: %w", err)
	}
	for _, kv := range []struct {
		from string
		to   *string
	}{{c.DecisionSocket, &s.decisionSocket}, {c.AuditSocket, &s.auditSocket}, {c.AuditLog, &s.auditLog},
		{c.StatusFile, &s.statusFile}, {c.StateFile, &s.stateFile}} {
		if kv.from != "" {
			if !filepath.IsAbs(kv.from) {
				return s, fmt.Errorf("nri.conf: %q must be an absolute path", kv.from)
			}
			*kv.to = kv.from
		}
	}
	if c.Policy != "" {
		s.Policy = c.Policy
	}
	if c.NodeName != "" {
		s.NodeName = c.NodeName
	}
	if c.HostRoot != "" {
		s.HostRoot = c.HostRoot
	}
	s.MetricsAddr = c.MetricsAddr
	s.HookPath = c.HookPath
	s.ToolsChroot = c.ToolsChroot
	return s, s.validate()
}

// hookArgs tell the injected hook where this node service is: it asks the
// decision socket, sends audit records to the audit socket (spool next to
// the log otherwise) and, when the service is unreachable, decides with the
// same policy and kernel state file.
func (s nodeSettings) hookArgs() []string {
	args := []string{
		"--socket=" + s.decisionSocket,
		"--audit-socket=" + s.auditSocket,
		"--state-file=" + s.stateFile,
		"--policy=" + s.hookPolicy(),
		"--node-name=" + s.NodeName,
	}
	if s.auditLog != "" {
		args = append(args, "--audit-spool="+audit.SpoolPathFor(s.auditLog))
	}
	return args
}

// hookPolicy is the policy path the injected hook decides with when the
// service cannot answer: the service's root-only copy where there is one.
func (s nodeSettings) hookPolicy() string {
	if s.policyCopy != "" {
		return s.policyCopy
	}
	return s.Policy
}

func (s nodeSettings) validate() error {
	var errs []error
	if !filepath.IsAbs(s.HostRoot) {
		errs = append(errs, fmt.Errorf("host root %q must be absolute", s.HostRoot))
	}
	if s.HookPath != "" && !filepath.IsAbs(s.HookPath) {
		errs = append(errs, fmt.Errorf("hook path %q must be absolute (the binary's path on the host)", s.HookPath))
	}
	if s.MetricsAddr != "" && !s.metricsRemote {
		if err := metrics.CheckAddr(s.MetricsAddr); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// checkHookBinary refuses a hook binary that anyone but root could change
// on the host whose / is at hostRoot: runc runs it as root for every
// container, so a writable parent (/opt, /opt/patchgate) or file is every
// container's admission in someone else's hands. `patchgate install`
// checks its destination too, but in the DaemonSet it sees only the
// mounted directory, not the host's parents; this sees the whole path
// through --host-root. The thin hook's fallback, the patchgate beside
// patchgate-hook, is checked as well. A binary that is not there under
// hostRoot is an error wrapping fs.ErrNotExist, which the caller only
// logs: runc then fails every container that names it (closed), and in the
// test harnesses --host-root is a fixture tree while the hook is a binary
// of this machine.
func checkHookBinary(hostRoot, path string) error {
	paths := []string{path}
	if filepath.Base(path) == "patchgate-hook" {
		paths = append(paths, filepath.Join(filepath.Dir(path), "patchgate"))
	}
	for _, p := range paths {
		resolved, err := trustedpath.ChainIn(hostRoot, p)
		if err != nil {
			return fmt.Errorf("hook binary %s on the host: %w", p, err)
		}
		fi, err := os.Lstat(filepath.Join(hostRoot, resolved))
		if err != nil {
			return fmt.Errorf("hook binary %s on the host: %w", p, err)
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("hook binary %s on the host: %s is not a regular file", p, resolved)
		}
		if err := trustedpath.Check(resolved, fi); err != nil {
			return fmt.Errorf("hook binary %s on the host: %w", p, err)
		}
	}
	return nil
}

// verifyHookBinary is checkHookBinary for the hook path the plugin will
// inject ("" for none), a missing binary logged rather than refused.
func verifyHookBinary(log *logrus.Logger, hostRoot, path string) error {
	if path == "" {
		return nil
	}
	err := checkHookBinary(hostRoot, path)
	if errors.Is(err, fs.ErrNotExist) {
		log.WithError(err).Warn("hook binary not found under the host root: not checked")
		return nil
	}
	return err
}

// nriFlags are `patchgate nri`'s flags beyond the node settings.
type nriFlags struct {
	s                 nodeSettings
	socket, name, idx string
	log               logFlags
}

func newNRICmd() *cobra.Command {
	f := &nriFlags{s: defaultNRISettings()}
	cmd := &cobra.Command{
		Use:   "nri",
		Short: "run as containerd's NRI plugin, with the node service in-process",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return codeErr(runNRI(f, cmd.OutOrStdout(), cmd.ErrOrStderr()))
		},
	}
	fs := cmd.Flags()
	s := &f.s
	fs.StringVar(&f.socket, "socket", api.DefaultSocketPath, "NRI socket of the container runtime")
	fs.StringVar(&f.name, "name", "patchgate", "plugin name (the default validator's required_plugins lists it)")
	fs.StringVar(&f.idx, "idx", "", "plugin index: two digits, the order among plugins (default 50; 99 on runtimes without the NRI validation event, containerd < 2.2, so that patchgate decides after the other plugins' adjustments)")
	fs.StringVar(&s.Policy, "policy", s.Policy, "policy file or directory (policy.yaml + policy.d/ + nodes/<node>.yaml)")
	nodeNameFlag(fs, &s.NodeName, s.NodeName, "node name for the nodes/<name>.yaml overlay", "$NODE_NAME, else the hostname")
	fs.StringVar(&s.HostRoot, "host-root", s.HostRoot, "where the host's / is (/proc, /sys, provider tools)")
	fs.StringVar(&s.MetricsAddr, "metrics-addr", "", "serve Prometheus metrics and the probes (/healthz liveness, /readyz readiness) on this loopback address (e.g. 127.0.0.1:9646)")
	fs.StringVar(&s.policyCopy, "policy-copy", "", "write the policy in force (root-only) into this host directory after every load, and give the injected hook --policy there: for a DaemonSet, whose --policy is a ConfigMap the hook on the host cannot read")
	fs.StringVar(&s.healthAddr, "health-addr", "", "also serve the liveness and readiness probes (/healthz, /readyz; no metrics) on this address, e.g. for kubelet when --metrics-addr is loopback; the probes are on the metrics listener in any case")
	fs.BoolVar(&s.metricsRemote, "metrics-remote", false, "allow a --metrics-addr that is not loopback (a DaemonSet: $(POD_IP):9646, for Prometheus)")
	fs.BoolVar(&s.ToolsChroot, "tools-chroot", false, "run provider tools inside chroot(--host-root) (DaemonSet with the node's / at /host; needs CAP_SYS_CHROOT)")
	fs.StringVar(&s.HookPath, "hook-path", "", "patchgate binary's path on the host, injected as a createRuntime OCI hook (empty: no hook; the rules only the hook can judge then follow the policy's hook.onError: deny refuses such containers)")
	fs.StringVar(&s.decisionSocket, "decision-socket", s.decisionSocket, "decision socket the injected hook asks")
	fs.StringVar(&s.auditSocket, "audit-socket", s.auditSocket, "audit socket for records from the injected hooks")
	fs.StringVar(&s.auditLog, "audit-log", "", "audit log path (default: the policy's spec.audit.path)")
	fs.StringVar(&s.statusFile, "status-file", s.statusFile, "status file read by patchgate check")
	fs.StringVar(&s.stateFile, "state-file", s.stateFile, "kernel state file kept fresh for hooks")
	fs.DurationVar(&s.kernelInterval, "kernel-interval", s.kernelInterval, "how often the kernel state is read")
	fs.DurationVar(&s.pollInterval, "poll-interval", s.pollInterval, "how often the policy files are checked for changes")
	f.log.add(cmd)
	return cmd
}

func runNRI(f *nriFlags, stdout, stderr io.Writer) int {
	s := f.s
	// The NRI plugin's connection to the runtime is part of readiness.
	s.runtimeConnection = true
	logger, err := f.log.logger(stderr)
	if err != nil {
		fmt.Fprintf(stderr, "patchgate nri: %v\n", err)
		return exitInvalid
	}
	if err := s.validate(); err != nil {
		fmt.Fprintf(stderr, "patchgate nri: %v\n", err)
		return exitInvalid
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	n := &nodeRunner{log: logger}
	defer n.close()
	opts := []plugin.Option{
		plugin.WithSocket(f.socket),
		plugin.WithLogger(logger),
	}
	if f.idx != "" {
		opts = append(opts, plugin.WithName(f.name, f.idx))
	} else {
		opts = append(opts, plugin.WithPluginName(f.name))
	}
	var p *plugin.Plugin // the runtime-launched plugin's Configure sets its hook
	launched := os.Getenv(api.PluginSocketEnvVar) != ""
	if launched {
		// The runtime started us: the settings arrive in Configure.
		base := s
		// The service starts inside Configure, within the runtime's
		// plugin registration timeout (5 s by default): keep the first
		// kernel read well inside it.
		n.startupRead = 3 * time.Second
		opts = append(opts, plugin.WithConfigure(func(ctx context.Context, config string) (plugin.Node, error) {
			cfg, err := parseNRIConf(config, base)
			if err != nil {
				return nil, err
			}
			if err := verifyHookBinary(logger, cfg.HostRoot, cfg.HookPath); err != nil {
				return nil, err
			}
			if err := p.SetHook(cfg.HookPath, cfg.hookArgs()...); err != nil {
				return nil, err
			}
			return n.start(ctx, cfg)
		}), plugin.WithMetrics(n.metrics()))
		if name := os.Getenv(api.PluginNameEnvVar); name != "" {
			opts = append(opts, plugin.WithName(name, os.Getenv(api.PluginIdxEnvVar)))
		}
	} else {
		if err := verifyHookBinary(logger, s.HostRoot, s.HookPath); err != nil {
			fmt.Fprintf(stderr, "patchgate nri: %v\n", err)
			return exitInvalid
		}
		svc, err := n.start(ctx, s)
		if err != nil {
			fmt.Fprintf(stderr, "patchgate nri: %v\n", err)
			return exitInvalid
		}
		opts = append(opts, plugin.WithNode(svc), plugin.WithMetrics(n.metrics()), plugin.WithHook(s.HookPath, s.hookArgs()...))
	}
	p, err = plugin.New(opts...)
	if err != nil {
		fmt.Fprintf(stderr, "patchgate nri: %v\n", err)
		return exitInvalid
	}
	return runPlugin(ctx, p, stderr)
}

func runPlugin(ctx context.Context, p *plugin.Plugin, stderr io.Writer) int {
	if err := p.Run(ctx); err != nil {
		fmt.Fprintf(stderr, "patchgate nri: %v\n", err)
		return exitInvalid
	}
	return exitOK
}
