package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/nri/pkg/api"
	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/patchgate/patchgate/audit"
	"github.com/patchgate/patchgate/hook"
	"github.com/patchgate/patchgate/livepatch"
	"github.com/patchgate/patchgate/metrics"
	"github.com/patchgate/patchgate/plugin"
	"github.com/patchgate/patchgate/policy"
	"github.com/patchgate/patchgate/service"
)

func init() {
	register(newNRICmd)
}

// nriSettings are the node settings: from flags, or from the runtime's
// drop-in configuration (nri.conf) when the runtime launched patchgate.
type nriSettings struct {
	Policy      string `json:"policy,omitempty"`
	NodeName    string `json:"nodeName,omitempty"`
	HostRoot    string `json:"hostRoot,omitempty"`
	MetricsAddr string `json:"metricsAddr,omitempty"`
	HookPath    string `json:"hookPath,omitempty"`
	// ToolsChroot runs provider tools inside chroot(HostRoot) (DaemonSet:
	// the node's root at /host; livepatch/exec.go).
	ToolsChroot bool `json:"toolsChroot,omitempty"`

	// metricsRemote allows a MetricsAddr that is not loopback (flag only:
	// a DaemonSet serves Prometheus on the pod IP).
	metricsRemote bool
	// healthAddr serves the probes (/healthz, /readyz) alone on an address
	// of their own (flag only; they are on the metrics listener too).
	healthAddr string
	// policyCopy is where the service writes the policy in force for the
	// injected hook (flag only: a DaemonSet's policy is a ConfigMap inside
	// its pod, which a hook on the host cannot read).
	policyCopy string

	// Where the node service keeps its sockets and files (flags, or the
	// optional nri.conf keys below; the defaults are under /run/patchgate).
	decisionSocket string
	auditSocket    string
	auditLog       string
	statusFile     string
	stateFile      string
	kernelInterval time.Duration
	pollInterval   time.Duration
}

func defaultNRISettings() nriSettings {
	return nriSettings{
		Policy:         policy.DefaultDir,
		NodeName:       nriNodeName(),
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
func parseNRIConf(data string, s nriSettings) (nriSettings, error) {
	if strings.TrimSpace(data) == "" {
		return s, nil
	}
	var c struct {
		nriSettings
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
func (s nriSettings) hookArgs() []string {
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
func (s nriSettings) hookPolicy() string {
	if s.policyCopy != "" {
		return s.policyCopy
	}
	return s.Policy
}

func (s nriSettings) validate() error {
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

// nriFlags are `patchgate nri`'s flags beyond the node settings.
type nriFlags struct {
	s                 nriSettings
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
	fs.StringVar(&s.NodeName, "node-name", s.NodeName, "node name for the nodes/<name>.yaml overlay (default $NODE_NAME or the hostname)")
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
			if err := p.SetHook(cfg.HookPath, cfg.hookArgs()...); err != nil {
				return nil, err
			}
			return n.start(ctx, cfg)
		}), plugin.WithMetrics(n.metrics()))
		if name := os.Getenv(api.PluginNameEnvVar); name != "" {
			opts = append(opts, plugin.WithName(name, os.Getenv(api.PluginIdxEnvVar)))
		}
	} else {
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

// nodeRunner starts the node service (kernel monitor, policy watcher,
// decision and audit sockets, metrics) in this process and stops it.
type nodeRunner struct {
	log *logrus.Logger
	// startupRead bounds the service's first kernel read (0: the default).
	startupRead time.Duration

	mu      sync.Mutex
	m       *metrics.Metrics
	svc     *service.Service
	stopMon context.CancelFunc
	monDone chan struct{}
}

func (n *nodeRunner) metrics() *metrics.Metrics {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.m == nil {
		n.m = metrics.New()
	}
	return n.m
}

func (n *nodeRunner) start(ctx context.Context, s nriSettings) (*service.Service, error) {
	// The policy is read once here for the kernel provider and remediation
	// settings; the service loads and watches it itself.
	pol, err := policy.Load(s.Policy, s.NodeName)
	if err != nil {
		return nil, err
	}
	reader, err := livepatch.NewReader(livepatch.WithHostRoot(s.HostRoot),
		livepatch.WithProvider(pol.Spec.Kernel.Provider), livepatch.WithTools(pol.Spec.Kernel.Tools),
		livepatch.WithChroot(s.ToolsChroot))
	if err != nil {
		return nil, err
	}
	mon, err := livepatch.NewMonitor(reader, livepatch.WithStateFile(s.stateFile),
		livepatch.WithInterval(s.kernelInterval), livepatch.WithLogger(n.log))
	if err != nil {
		return nil, err
	}
	opts := []service.Option{
		service.WithPolicy(s.Policy, s.NodeName),
		service.WithPollInterval(s.pollInterval),
		service.WithSocket(s.decisionSocket),
		service.WithStatusFile(s.statusFile),
		service.WithKernelMonitor(mon),
		service.WithLogger(n.log),
		// The NRI plugin reports its connection: not ready until connected.
		service.WithRuntimeConnection(),
		service.WithHealthAddr(s.healthAddr),
	}
	if s.policyCopy != "" {
		opts = append(opts, service.WithPolicyCopy(s.policyCopy))
	}
	if s.metricsRemote {
		// The service accepts only loopback; a remote address (checked
		// by nothing but the operator's --metrics-remote) is served here.
		opts = append(opts, service.WithMetrics(n.metrics(), ""))
	} else {
		opts = append(opts, service.WithMetrics(n.metrics(), s.MetricsAddr))
	}
	if n.startupRead > 0 {
		opts = append(opts, service.WithStartupRead(n.startupRead))
	}
	var svc *service.Service
	if s.auditLog != "" || s.auditSocket != audit.DefaultSocket {
		a := pol.Spec.Audit
		path := a.Path
		if s.auditLog != "" {
			path = s.auditLog
		}
		opts = append(opts, service.WithAudit(audit.Config{
			Path: path, MaxSizeBytes: int64(a.MaxSizeMB) << 20, MaxBackups: a.MaxBackups,
			RecordAllowed: a.RecordAllowed, Sync: a.Sync, FailClosed: a.FailClosed, Logger: n.log,
		}, s.auditSocket))
	}
	if pol.Spec.Remediation.Enabled {
		rem, err := livepatch.NewRemediator(reader, mon,
			// Behind means what the policy in force says, also after a reload.
			livepatch.WithBehind(func(k *policy.KernelState) bool {
				cur := pol
				if svc != nil {
					cur = svc.Policy()
				}
				_, behind := policy.EvaluateKernel(cur, k, time.Now())
				return behind
			}),
			livepatch.WithOnOutcome(func(o livepatch.Outcome) { n.metrics().ObserveRemediation(o.Status) }),
			livepatch.WithCommand(pol.Spec.Remediation.Command),
			livepatch.WithModules(pol.Spec.Kernel.RequiredPatches),
			livepatch.WithRemediationTimeout(pol.Spec.Remediation.Timeout.D()),
			livepatch.WithRemediationLogger(n.log))
		if err != nil {
			return nil, err
		}
		opts = append(opts, service.WithRemediator(remediatorAdapter{rem}))
	}
	// The thin hook (patchgate-hook) hands over the container; the
	// service reads its bundle with the hook's own code.
	opts = append(opts, service.WithBundleJudge(hook.BundleJudge{}))
	svc, err = service.New(opts...)
	if err != nil {
		return nil, err
	}
	mctx, cancel := context.WithCancel(context.Background())
	// Start reads the kernel once before it serves (REVIEW BFG1); the
	// monitor's background reads begin after it, so that first read does
	// not queue behind one of them.
	if err := svc.Start(mctx); err != nil {
		cancel()
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = mon.Run(mctx)
	}()
	if s.metricsRemote && s.MetricsAddr != "" {
		go func() {
			if err := metrics.Serve(mctx, s.MetricsAddr, n.metrics(), svc.HealthHandler()); err != nil {
				n.log.WithError(err).Error("metrics not served")
			}
		}()
	}
	n.mu.Lock()
	n.svc, n.stopMon, n.monDone = svc, cancel, done
	n.mu.Unlock()
	return svc, nil
}

func (n *nodeRunner) close() {
	n.mu.Lock()
	svc, cancel, done := n.svc, n.stopMon, n.monDone
	n.mu.Unlock()
	if svc == nil {
		return
	}
	if err := svc.Close(); err != nil {
		n.log.WithError(err).Error("node service stopped with an error")
	}
	cancel()
	<-done
}

// nriNodeName is $NODE_NAME (the DaemonSet sets it from the downward API), else
// the hostname.
func nriNodeName() string {
	if n := os.Getenv("NODE_NAME"); n != "" {
		return n
	}
	n, _ := os.Hostname()
	return n
}
