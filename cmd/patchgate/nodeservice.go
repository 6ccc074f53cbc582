package main

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/patchgate/patchgate/audit"
	"github.com/patchgate/patchgate/hook"
	"github.com/patchgate/patchgate/livepatch"
	"github.com/patchgate/patchgate/metrics"
	"github.com/patchgate/patchgate/policy"
	"github.com/patchgate/patchgate/service"
)

// The node service (kernel monitor, policy watcher, decision and audit
// sockets, remediation, metrics, probes) is built here, from its settings,
// for both daemons: `patchgate serve` and `patchgate nri`. Each daemon only
// fills in the settings from its flags (nri also from nri.conf) and adds
// what is its own around the service (nri: the NRI plugin and its hook).

// nodeSettings are the node settings: from flags, or from the runtime's
// drop-in configuration (nri.conf) when the runtime launched patchgate.
type nodeSettings struct {
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
	// runtimeConnection: a runtime connection (the NRI plugin's) is part
	// of readiness (patchgate nri; serve has none).
	runtimeConnection bool

	// Where the node service keeps its sockets and files (flags, or the
	// optional nri.conf keys; the defaults are under /run/patchgate).
	decisionSocket string
	auditSocket    string
	auditLog       string
	statusFile     string
	stateFile      string
	kernelInterval time.Duration
	pollInterval   time.Duration
}

// nodeRunner starts the node service in this process and stops it.
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

// start builds the node service from s and starts it with its kernel
// monitor. It runs until close, not until ctx ends: the runtime-launched
// NRI plugin starts it inside a Configure call whose context is short.
func (n *nodeRunner) start(_ context.Context, s nodeSettings) (*service.Service, error) {
	// The policy is read once here for the kernel provider settings and
	// the audit log's; the service loads and watches it itself, and the
	// remediation follows the policy in force (policyRemediator).
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
		service.WithHealthAddr(s.healthAddr),
	}
	if s.runtimeConnection {
		// The NRI plugin reports its connection: not ready until connected.
		opts = append(opts, service.WithRuntimeConnection())
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
	// The remediator is always there: the service asks it only while the
	// policy in force enables remediation, so a reload that enables it (or
	// changes its command) takes effect.
	var svc *service.Service
	rem := &policyRemediator{reader: reader, state: mon, log: n.log,
		policy: func() *policy.Policy {
			if svc != nil {
				if p := svc.Policy(); p != nil {
					return p
				}
			}
			return pol
		},
		onOutcome: func(o livepatch.Outcome) { n.metrics().ObserveRemediation(o.Status) },
	}
	if _, err := rem.current(); err != nil && pol.Spec.Remediation.Enabled {
		// A remediation the policy enables but that cannot be built is
		// an error at start, as before.
		return nil, err
	}
	opts = append(opts, service.WithRemediator(rem))
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

// close stops the service and its monitor; an error the service stopped
// with is logged (the service's Err still has it).
func (n *nodeRunner) close() {
	n.mu.Lock()
	svc, cancel, done := n.svc, n.stopMon, n.monDone
	n.svc = nil
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

// policyRemediator gives the service the livepatch remediator of the policy
// in force: "behind" is judged by that policy on every call, and the update
// command, its timeout and the kpatch modules are the ones it names now
// (spec.remediation, spec.kernel.requiredPatches). When they change, the
// next call builds a new livepatch.Remediator (after a run in flight has
// ended: callers join that run until then); the new one starts without the
// old one's rate limit, so a fixed command runs at once.
type policyRemediator struct {
	reader    *livepatch.Reader
	state     livepatch.Refresher
	policy    func() *policy.Policy
	log       logrus.FieldLogger
	onOutcome func(livepatch.Outcome)

	mu  sync.Mutex
	key string
	rem *livepatch.Remediator
}

// remediationKey identifies the settings a livepatch.Remediator is built from.
func remediationKey(p *policy.Policy) string {
	b, _ := json.Marshal(struct {
		Command []string
		Timeout time.Duration
		Modules []string
	}{p.Spec.Remediation.Command, p.Spec.Remediation.Timeout.D(), p.Spec.Kernel.RequiredPatches})
	return string(b)
}

func (p *policyRemediator) current() (*livepatch.Remediator, error) {
	pol := p.policy()
	key := remediationKey(pol)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rem != nil && (p.key == key || p.rem.Running()) {
		return p.rem, nil
	}
	rem, err := livepatch.NewRemediator(p.reader, p.state,
		// Behind means what the policy in force says, also after a reload.
		livepatch.WithBehind(func(k *policy.KernelState) bool {
			_, behind := policy.EvaluateKernel(p.policy(), k, time.Now())
			return behind
		}),
		livepatch.WithOnOutcome(p.onOutcome),
		livepatch.WithCommand(pol.Spec.Remediation.Command),
		livepatch.WithModules(pol.Spec.Kernel.RequiredPatches),
		livepatch.WithRemediationTimeout(pol.Spec.Remediation.Timeout.D()),
		livepatch.WithRemediationLogger(p.log))
	if err != nil {
		return nil, err
	}
	p.rem, p.key = rem, key
	return rem, nil
}

// Remediate starts or joins the update of the policy in force.
func (p *policyRemediator) Remediate(ctx context.Context, wait time.Duration) (string, string) {
	rem, err := p.current()
	if err != nil {
		return livepatch.StatusFailed, err.Error()
	}
	out := rem.Ensure(ctx, wait)
	return out.Status, out.Reason
}
