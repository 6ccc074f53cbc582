package plugin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/containerd/nri/pkg/api"
	"github.com/containerd/nri/pkg/stub"
	"github.com/sirupsen/logrus"

	"github.com/patchgate/patchgate/audit"
	"github.com/patchgate/patchgate/hook"
	"github.com/patchgate/patchgate/internal/logfields"
	"github.com/patchgate/patchgate/policy"
	"github.com/patchgate/patchgate/service"
)

// The plugin implements only the handlers it needs.
var (
	_ stub.ConfigureInterface                   = (*Plugin)(nil)
	_ stub.SynchronizeInterface                 = (*Plugin)(nil)
	_ stub.ShutdownInterface                    = (*Plugin)(nil)
	_ stub.RunPodInterface                      = (*Plugin)(nil)
	_ stub.CreateContainerInterface             = (*Plugin)(nil)
	_ stub.PostCreateContainerInterface         = (*Plugin)(nil)
	_ stub.ValidateContainerAdjustmentInterface = (*Plugin)(nil)
)

// Annotations patchgate sets on the containers it admits.
const (
	// AnnotationFlagged is "true" on a container admitted with warnings.
	AnnotationFlagged = "patchgate.dev/flagged"
	// AnnotationRules lists the rule IDs that flagged it, comma-separated.
	AnnotationRules = "patchgate.dev/rules"
	// AnnotationUnchecked lists the rules nobody judged because no OCI hook
	// runs (none configured, or the runtime refuses it) and the policy's
	// hook.onError is allow.
	AnnotationUnchecked = "patchgate.dev/unchecked"
)

// ErrConfig is wrapped by set-up errors.
var ErrConfig = errors.New("invalid plugin configuration")

// Node is what the plugin needs from the node service. *service.Service
// provides it; the plugin runs it in-process.
type Node interface {
	Policy() *policy.Policy
	Kernel() *policy.KernelState
	Admit(ctx context.Context, w *policy.Workload, o service.AdmitOptions) service.Result
	AuditLog() *audit.Log
	SetHookInjection(service.HookInjection)
	SetRuntime(service.RuntimeConnection)
}

// Metrics is what the plugin reports besides the service's own decisions.
type Metrics interface {
	ObserveDecision(source string, d *policy.Decision, took time.Duration)
	SetHookInjectionRefused(refused bool)
	SetRuntimeConnected(mode string, connected bool)
}

// Plugin is patchgate's NRI plugin. Create it with New and Run it.
type Plugin struct {
	name     string
	idxMu    sync.Mutex
	idx      string
	idxSet   bool // the index was chosen (WithName, NRI_PLUGIN_IDX): never moved
	socket   string
	hookMu   sync.RWMutex
	hookPath string
	hookArgs []string
	hookTO   int64
	// identityFrom tells the injected hook which runtime set the identity
	// annotations it may trust ("containerd", "crio"), learnt at Configure;
	// never from the container itself.
	identityFrom atomic.Pointer[string]
	reqTimeout   atomic.Int64 // the runtime's NRI request timeout, in ns
	stub         atomic.Pointer[stub.Stub]
	backoffMax   time.Duration
	log          logrus.FieldLogger
	metrics      Metrics
	now          func() time.Time
	configure    func(ctx context.Context, config string) (Node, error)
	dial         func(string) (net.Conn, error) // nil: the stub's own

	node  atomic.Pointer[nodeBox]
	hooks *hookTracker

	syncMu   sync.Mutex
	reported map[string]bool // containers already audited (create or sync)

	noHookOnce sync.Once // the start-up warning when no hook path is configured

	// conn is the current connection's progress (replaced, never
	// mutated); lastState what was last published.
	conn      atomic.Pointer[conn]
	lastState atomic.Pointer[service.RuntimeConnection]
	// noValidator: a runtime of unknown NRI version refused the validation
	// event; decide in CreateContainer on such runtimes from now on.
	noValidator atomic.Bool
	// baseSpec: per runtime handler, whether its containers arrive with
	// patchgate's hook already in the spec (base_runtime_spec).
	baseMu   sync.Mutex
	baseSpec map[string]bool
	// seccompVisible: the runtime puts the spec's seccomp filter into NRI's
	// container (containerd >= 2.3), so no filter there means none at all.
	seccompVisible atomic.Bool
	// nriVersion overrides the runtime NRI version the stub learnt (tests).
	nriVersion func() string
}

type nodeBox struct{ Node }

// Option configures a Plugin.
type Option func(*Plugin) error

// WithNode sets the node service the plugin decides with.
func WithNode(n Node) Option {
	return func(p *Plugin) error {
		if n == nil {
			return fmt.Errorf("%w: nil node service", ErrConfig)
		}
		p.node.Store(&nodeBox{n})
		return nil
	}
}

// WithConfigure sets how the plugin builds its node service from the
// runtime's drop-in configuration (nri.conf) when the runtime launched it.
// It is called on the first Configure request that arrives without a node.
func WithConfigure(f func(ctx context.Context, config string) (Node, error)) Option {
	return func(p *Plugin) error { p.configure = f; return nil }
}

// WithName sets the plugin name and index (default "patchgate", "50"; the
// runtime's NRI_PLUGIN_NAME/NRI_PLUGIN_IDX when it launched the plugin).
func WithName(name, idx string) Option {
	return func(p *Plugin) error {
		if name == "" || strings.ContainsAny(name, "/ ") {
			return fmt.Errorf("%w: plugin name %q", ErrConfig, name)
		}
		if len(idx) != 2 || idx[0] < '0' || idx[0] > '9' || idx[1] < '0' || idx[1] > '9' {
			return fmt.Errorf("%w: plugin index %q must be two digits", ErrConfig, idx)
		}
		p.name, p.idx, p.idxSet = name, idx, true
		return nil
	}
}

// WithPluginName sets the plugin name and leaves the index to the default:
// "50", or createModeIdx on a runtime without the validation event.
func WithPluginName(name string) Option {
	return func(p *Plugin) error {
		if name == "" || strings.ContainsAny(name, "/ ") {
			return fmt.Errorf("%w: plugin name %q", ErrConfig, name)
		}
		p.name = name
		return nil
	}
}

// WithSocket sets the NRI socket (default /var/run/nri/nri.sock).
func WithSocket(path string) Option {
	return func(p *Plugin) error {
		if path == "" {
			return fmt.Errorf("%w: empty NRI socket path", ErrConfig)
		}
		p.socket = path
		return nil
	}
}

// WithHook makes the plugin inject `<path> hook <args...>` as a
// createRuntime hook, so that the OCI hook judges what NRI cannot see. path
// is the patchgate binary's path on the host. An empty path disables
// injection: the rules only the hook can judge (capabilities, privileged,
// ...) are then unjudged, and the policy's hook.onError decides: deny (the
// default) refuses every container that has any, allow admits it with the
// AnnotationUnchecked annotation and a warning.
func WithHook(path string, args ...string) Option {
	return func(p *Plugin) error {
		if path != "" && !strings.HasPrefix(path, "/") {
			return fmt.Errorf("%w: hook path %q must be absolute (it is the binary's path on the host)", ErrConfig, path)
		}
		p.hookPath, p.hookArgs = path, args
		return nil
	}
}

// SetHook changes the injected hook (see WithHook): a plugin the runtime
// launched learns its settings only in Configure.
func (p *Plugin) SetHook(path string, args ...string) error {
	if path != "" && !strings.HasPrefix(path, "/") {
		return fmt.Errorf("%w: hook path %q must be absolute (it is the binary's path on the host)", ErrConfig, path)
	}
	p.hookMu.Lock()
	defer p.hookMu.Unlock()
	p.hookPath, p.hookArgs = path, args
	return nil
}

// hookConfig returns the hook's path ("" for none) and extra arguments.
func (p *Plugin) hookConfig() (string, []string) {
	p.hookMu.RLock()
	defer p.hookMu.RUnlock()
	return p.hookPath, p.hookArgs
}

// WithRequestTimeout sets the runtime's NRI request timeout the plugin plans
// with before the runtime has told it (default 2s). Remediation waits at
// most half of it.
func WithRequestTimeout(d time.Duration) Option {
	return func(p *Plugin) error {
		if d < 100*time.Millisecond {
			return fmt.Errorf("%w: request timeout %v too short", ErrConfig, d)
		}
		p.reqTimeout.Store(int64(d))
		return nil
	}
}

// WithLogger sets the operational logger.
func WithLogger(l logrus.FieldLogger) Option {
	return func(p *Plugin) error {
		if l == nil {
			return fmt.Errorf("%w: nil logger", ErrConfig)
		}
		p.log = l
		return nil
	}
}

// WithMetrics sets where the plugin reports pod-level and synchronize
// decisions and the hook injection state.
func WithMetrics(m Metrics) Option {
	return func(p *Plugin) error { p.metrics = m; return nil }
}

// WithReconnectBackoff sets the longest wait between reconnect attempts
// (default 5s; the first retry is after 100ms).
func WithReconnectBackoff(max time.Duration) Option {
	return func(p *Plugin) error {
		if max < 10*time.Millisecond {
			return fmt.Errorf("%w: backoff %v too short", ErrConfig, max)
		}
		p.backoffMax = max
		return nil
	}
}

// New validates the options. Nothing connects until Run.
func New(opts ...Option) (*Plugin, error) {
	p := &Plugin{
		name:       "patchgate",
		idx:        "50",
		idxSet:     os.Getenv(api.PluginIdxEnvVar) != "",
		socket:     api.DefaultSocketPath,
		backoffMax: 5 * time.Second,
		log:        logrus.StandardLogger(),
		now:        time.Now,
		reported:   map[string]bool{},
		hookTO:     5,
	}
	p.reqTimeout.Store(int64(api.DefaultPluginRequestTimeout))
	for _, o := range opts {
		if err := o(p); err != nil {
			return nil, err
		}
	}
	if p.node.Load() == nil && p.configure == nil {
		return nil, fmt.Errorf("%w: no node service and no way to configure one", ErrConfig)
	}
	p.hooks = newHookTracker(p)
	return p, nil
}

func (p *Plugin) nodeOrErr() (Node, error) {
	if b := p.node.Load(); b != nil {
		return b.Node, nil
	}
	return nil, errors.New("patchgate: not configured yet (no policy loaded), retry")
}

// maxWait is how long a request may wait for a remediation: half the
// runtime's request timeout, so the answer always arrives in time.
func (p *Plugin) maxWait() time.Duration { return time.Duration(p.reqTimeout.Load()) / 2 }

// Configure is the runtime's first request. When the runtime launched the
// plugin, config is its drop-in configuration (nri.conf) and the node
// service is built from it here.
func (p *Plugin) Configure(ctx context.Context, config, runtime, version string) (api.EventMask, error) {
	// The stub has taken the runtime's request timeout from this request.
	if s := p.stub.Load(); s != nil {
		if d := (*s).RequestTimeout(); d >= 100*time.Millisecond {
			p.reqTimeout.Store(int64(d))
		}
	}
	p.identityFrom.Store(ptr(identitySource(runtime)))
	c := &conn{runtime: runtime, version: version, nriVersion: p.runtimeNRIVersion()}
	p.seccompVisible.Store(sendsSeccomp(runtime, version))
	p.log.WithFields(logrus.Fields{"runtime": runtime, "version": version, "nri_version": c.nriVersion, "request_timeout_ms": logfields.Ms(p.maxWait() * 2)}).
		Info("configuring with the container runtime (registered only once it synchronizes)")
	if p.node.Load() == nil {
		n, err := p.configure(ctx, config)
		if err != nil {
			p.conn.Store(c)
			return 0, fmt.Errorf("patchgate: %w", err)
		}
		p.node.Store(&nodeBox{n})
	}
	events, err := p.configureMode(c)
	if err != nil {
		p.conn.Store(c)
		return 0, err
	}
	c.configured = true
	p.conn.Store(c)
	if hookPath, _ := p.hookConfig(); hookPath == "" {
		p.noHook()
	}
	return events, nil
}

// runtimeNRIVersion is the runtime's NRI version as the stub learnt it at
// Configure (reported, or inferred from the runtime's name and version).
func (p *Plugin) runtimeNRIVersion() string {
	if p.nriVersion != nil {
		return p.nriVersion()
	}
	if s := p.stub.Load(); s != nil {
		return (*s).RuntimeNRIVersion()
	}
	return ""
}

// noHookReason is why, without a hook path, some rules cannot be judged.
const noHookReason = "no OCI hook path configured (patchgate nri --hook-path, or hookPath in nri.conf): " +
	"capabilities, privileged, privilegeEscalation, AppArmor, procMount and sysctls cannot be judged by NRI alone"

// noHook says loudly, once, that no hook is configured, and puts it in the
// status file.
func (p *Plugin) noHook() {
	node, err := p.nodeOrErr()
	if err != nil {
		return
	}
	onError := node.Policy().Spec.Hook.OnError
	p.hooks.publish(service.HookInjection{Status: hookDisabled, Reason: noHookReason})
	p.noHookOnce.Do(func() {
		what := "containers with any of them are REFUSED (policy hook.onError: deny)"
		if onError == policy.OnErrorAllow {
			what = "containers are admitted with them unchecked, annotated " + AnnotationUnchecked + " (policy hook.onError: allow)"
		}
		p.log.Error("NO OCI HOOK: " + noHookReason + "; " + what)
	})
}

// Shutdown is the runtime going away; Run reconnects.
func (p *Plugin) Shutdown(context.Context) {
	p.log.Warn("container runtime is shutting down; will reconnect when it is back")
}

// podRules are the rules the pod sandbox view can judge.
var podRules = []string{"hostNamespaces"}

// RunPodSandbox judges what only the pod shows: host namespaces. A denied
// pod never starts. Kernel rules and everything else are judged per
// container, so a pod gets no record unless a pod rule fails.
func (p *Plugin) RunPodSandbox(ctx context.Context, pod *api.PodSandbox) error {
	start := p.now()
	node, err := p.nodeOrErr()
	if err != nil {
		return err
	}
	w, err := PodWorkload(pod, p.runtimeIdentitySource())
	if err != nil {
		return fmt.Errorf("patchgate: cannot judge pod: %v", err)
	}
	k := node.Kernel()
	d := JudgePod(node.Policy(), w, k, p.now())
	if p.metrics != nil {
		p.metrics.ObserveDecision(audit.SourceNRI, &d, p.now().Sub(start))
	}
	log := p.log.WithFields(logrus.Fields{"pod": w.Pod.Namespace + "/" + w.Pod.Name, "decision": d.Verdict})
	if d.Verdict != policy.Allow || len(d.Violations) > 0 {
		rec := audit.NewRecord(audit.SourceNRI, w, &d, k, nil)
		if err := node.AuditLog().Write(ctx, rec); err != nil {
			log.WithError(err).Error("audit record not written")
		}
	}
	if d.Verdict == policy.Deny {
		log.WithField("rules", ruleIDs(d.Violations, policy.ActionEnforce)).Warn("pod refused")
		return errors.New(DenyMessage(&d, w, false))
	}
	return nil
}

// JudgePod is the decision on a pod sandbox (PodWorkload) as RunPodSandbox
// makes it: only the pod rules count, the pause image exempts nothing, and
// the details name the pod. `patchgate eval --running` judges a running
// pod sandbox with it too.
func JudgePod(pol *policy.Policy, w *policy.Workload, k *policy.KernelState, now time.Time) policy.Decision {
	// Image and container name would let an image exemption meant for one
	// container lift the pod's checks through the pause image.
	w.Container.Image = ""
	d := podDecision(policy.Evaluate(pol, w, k, now))
	// The rules speak of containers; this one is the pod.
	for i := range d.Violations {
		d.Violations[i].Detail = strings.Replace(d.Violations[i].Detail, `container "POD"`,
			fmt.Sprintf("pod %q", w.Pod.Namespace+"/"+w.Pod.Name), 1)
	}
	return d
}

// podDecision keeps only the pod rules' violations and no deferrals: the
// containers are judged on their own.
func podDecision(d policy.Decision) policy.Decision {
	var vs []policy.Violation
	for _, v := range d.Violations {
		if slices.Contains(podRules, v.Rule) || v.Rule == "invalid" {
			vs = append(vs, v)
		}
	}
	d.Violations = vs
	d.Deferred = nil
	d.Verdict = policy.Allow
	for _, v := range vs {
		if v.Action == policy.ActionEnforce {
			d.Verdict = policy.Deny
			break
		}
		if v.Action == policy.ActionWarn {
			d.Verdict = policy.Warn
		}
	}
	return d
}

// CreateContainer makes patchgate's own adjustments only: the flag
// annotations from a first look at the pristine container, and the OCI hook.
// The decision is made in ValidateContainerAdjustment on the container as it
// will run.
func (p *Plugin) CreateContainer(ctx context.Context, pod *api.PodSandbox, ctr *api.Container) (*api.ContainerAdjustment, []*api.ContainerUpdate, error) {
	node, err := p.nodeOrErr()
	if err != nil {
		return nil, nil, err
	}
	if p.currentMode() == ModeCreate {
		return p.decideAtCreate(ctx, node, pod, ctr)
	}
	adj := &api.ContainerAdjustment{}
	w, err := p.containerWorkload(pod, ctr)
	if err != nil {
		// The validator refuses it; nothing to adjust.
		return adj, nil, nil
	}
	d := policy.Evaluate(node.Policy(), w, node.Kernel(), p.now())
	if d.Verdict == policy.Warn {
		adj.AddAnnotation(AnnotationFlagged, "true")
		adj.AddAnnotation(AnnotationRules, strings.Join(ruleIDs(d.Violations, policy.ActionWarn), ","))
	}
	hookPath, hookArgs := p.hookConfig()
	if hookPath != "" {
		p.noteBaseSpec(pod, hasOwnHook(ctr, hookPath))
	}
	switch {
	case hookPath != "" && hasOwnHook(ctr, hookPath):
		// The runtime's base spec has it already (fail closed while
		// patchgate is down): one hook, one judgement.
	case hookPath != "" && p.hooks.inject():
		adj.AddHooks(&api.Hooks{CreateRuntime: []*api.Hook{p.hook(hookPath, hookArgs)}})
	case len(d.Deferred) > 0 && node.Policy().Spec.Hook.OnError == policy.OnErrorAllow:
		// No hook will judge them (none configured, or the runtime refuses
		// it); with onError deny the validator refuses the container.
		adj.AddAnnotation(AnnotationUnchecked, strings.Join(d.Deferred, ","))
	}
	return adj, nil, nil
}

// decideAtCreate is the decision in CreateContainer mode (a runtime without
// the validation event): on the container as patchgate sees it, before the
// adjustments of plugins ordered after it. An error here fails the create.
// With patchgate's OCI hook to follow (injected now, or in the runtime's
// base spec), the hook judges the final spec in full, and audits what it
// flags; this decision is recorded only when it refuses.
func (p *Plugin) decideAtCreate(ctx context.Context, node Node, pod *api.PodSandbox, ctr *api.Container) (*api.ContainerAdjustment, []*api.ContainerUpdate, error) {
	adj := &api.ContainerAdjustment{}
	w, err := p.containerWorkload(pod, ctr)
	if err != nil {
		return nil, nil, fmt.Errorf("patchgate: cannot judge container: %v", err)
	}
	hookPath, hookArgs := p.hookConfig()
	hooked := hookPath != "" && hasOwnHook(ctr, hookPath)
	if hookPath != "" {
		p.noteBaseSpec(pod, hooked)
	}
	injected := false
	if hookPath != "" && !hooked && p.hooks.inject() {
		adj.AddHooks(&api.Hooks{CreateRuntime: []*api.Hook{p.hook(hookPath, hookArgs)}})
		hooked, injected = true, true
	}
	ctx, cancel := context.WithTimeout(ctx, p.maxWait())
	defer cancel()
	res := node.Admit(ctx, w, service.AdmitOptions{
		Source: audit.SourceNRI, Final: !hooked, NRIJudged: w.Seen,
		Mode: string(ModeCreate), Unseen: createModeUnseen, AuditDeniedOnly: hooked,
	})
	d := res.Decision
	unjudged, err := p.concluded(w, res, hooked, hookPath, ModeCreate)
	if err != nil {
		return nil, nil, err
	}
	if d.Verdict == policy.Warn {
		adj.AddAnnotation(AnnotationFlagged, "true")
		adj.AddAnnotation(AnnotationRules, strings.Join(ruleIDs(d.Violations, policy.ActionWarn), ","))
	}
	if len(unjudged) > 0 {
		adj.AddAnnotation(AnnotationUnchecked, strings.Join(unjudged, ","))
	}
	if injected {
		p.hooks.admitted(ctr.GetId())
	}
	return adj, nil, nil
}

// hook is the createRuntime hook for one container. It carries no claim
// about what NRI judged: what the validator judged of the container as it
// will run (after every plugin's adjustments) is remembered by the node
// service, which the hook asks; without that answer the hook judges
// everything.
func (p *Plugin) hook(path string, extra []string) *api.Hook {
	args := append([]string{path, "hook", "--identity-from=" + p.runtimeIdentitySource()}, extra...)
	return &api.Hook{Path: path, Args: args, Timeout: &api.OptionalInt{Value: p.hookTO}}
}

// ValidateContainerAdjustment is the decision: the pristine container with
// every plugin's adjustments, so a device or mount another plugin injected is
// judged too. A validator's rejection fails the request even on runtimes
// that fail open for other plugin errors.
func (p *Plugin) ValidateContainerAdjustment(ctx context.Context, req *api.ValidateContainerAdjustmentRequest) error {
	node, err := p.nodeOrErr()
	if err != nil {
		return err
	}
	full := adjusted(req.GetContainer(), req.GetAdjust())
	w, err := p.containerWorkload(req.GetPod(), full)
	if err != nil {
		return fmt.Errorf("patchgate: cannot judge container: %v", err)
	}
	// Never hold the runtime's lock longer than the budget: the runtime
	// serializes every container operation on the node behind this request.
	ctx, cancel := context.WithTimeout(ctx, p.maxWait())
	defer cancel()
	hookPath, _ := p.hookConfig()
	hooked := hookPath != "" && hasOwnHook(full, hookPath)
	// Without patchgate's hook this is the last judge: the rules NRI cannot
	// see are judged by nobody and follow the policy's hook.onError (deny:
	// an enforce violation "unjudged"; allow: a warn one), in the decision
	// and its audit record.
	// With the hook to follow, the service remembers what was judged here,
	// on the final container, so the hook judges exactly the rest.
	res := node.Admit(ctx, w, service.AdmitOptions{Source: audit.SourceNRI, Final: !hooked, NRIJudged: w.Seen, RememberJudged: hooked})
	if _, err := p.concluded(w, res, hooked, hookPath, ModeValidator); err != nil {
		return err
	}
	if hooked {
		p.hooks.admitted(full.GetId())
	}
	return nil
}

// concluded logs and remembers a container decision made in either mode
// (res, on workload w) and turns a refusal into the runtime's one-line error.
// Without patchgate's hook to follow (hooked false) this was the last judge:
// it returns the rules nobody judged (policy hook.onError: allow admitted
// them). Log fields are built only for a line that is written: an admitted
// compliant container logs nothing.
func (p *Plugin) concluded(w *policy.Workload, res service.Result, hooked bool, hookPath string, mode Mode) (unjudged []string, err error) {
	d := &res.Decision
	log := func() logrus.FieldLogger {
		return p.log.WithFields(logrus.Fields{
			"pod": w.Pod.Namespace + "/" + w.Pod.Name, "container": w.Container.Name, "decision": d.Verdict, "mode": mode,
		})
	}
	if res.AuditErr != nil {
		log().WithError(res.AuditErr).Error("audit record not written")
	}
	p.markReported(w.Container.ID)
	if !hooked {
		unjudged = policy.Unjudged(d, w.Seen)
	}
	if d.Verdict == policy.Deny {
		inProgress := res.Remediation != nil && res.Remediation.Outcome == "running"
		ids := ruleIDs(d.Violations, policy.ActionEnforce)
		log().WithField("rules", ids).Warn("container refused")
		if len(unjudged) > 0 && slices.Equal(ids, []string{policy.RuleUnjudged}) {
			// Refused only because nobody judged them: say how to fix it.
			return nil, errors.New(UnjudgedMessage(unjudged, hookPath == "", d.Policy.Name))
		}
		return nil, errors.New(DenyMessage(d, w, inProgress))
	}
	if len(unjudged) > 0 {
		log().WithField("unchecked", unjudged).Warn("container admitted with rules unchecked: no OCI hook judges them (policy hook.onError: allow)")
	}
	if d.Verdict == policy.Warn {
		log().WithField("rules", ruleIDs(d.Violations, policy.ActionWarn)).Info("container flagged")
	}
	return unjudged, nil
}

// UnjudgedMessage is the one-line error for a container refused because no
// OCI hook judges the rules NRI cannot see (rules) and the policy's
// hook.onError is deny.
func UnjudgedMessage(rules []string, noHookPath bool, policyName string) string {
	rs := slices.Clone(rules)
	slices.Sort(rs)
	rs = slices.Compact(rs)
	why := "the runtime refuses patchgate's OCI hook (allow OCI hook adjustments for patchgate, or set hook.onError: allow)"
	if noHookPath {
		why = "no OCI hook path configured (set --hook-path / hookPath in nri.conf)"
	}
	return oneLine(fmt.Sprintf("patchgate: cannot judge [%s]: %s (policy %q)", strings.Join(rs, ","), why, policyName))
}

// PostCreateContainer tells the plugin the container was created: the
// runtime accepted the hook patchgate injected.
func (p *Plugin) PostCreateContainer(_ context.Context, _ *api.PodSandbox, ctr *api.Container) error {
	if hookPath, _ := p.hookConfig(); hookPath != "" && hasOwnHook(ctr, hookPath) {
		p.hooks.created(ctr.GetId())
	}
	return nil
}

// Synchronize judges the containers that were running before patchgate
// connected: it audits and counts the non-compliant ones and never stops
// them. One without patchgate's OCI hook started while patchgate was not
// connected and was judged by nobody on what NRI cannot see: its record
// names those rules (markUnjudgedRunning).
func (p *Plugin) Synchronize(ctx context.Context, pods []*api.PodSandbox, ctrs []*api.Container) ([]*api.ContainerUpdate, error) {
	node, err := p.nodeOrErr()
	if err != nil {
		return nil, err
	}
	if c := p.conn.Load(); c != nil && !c.synced {
		cc := *c
		cc.synced = true
		p.conn.Store(&cc)
		p.publishRuntime("connected", &cc, "")
		p.log.WithFields(logrus.Fields{"plugin": p.regName(), "mode": cc.mode, "runtime": cc.runtime, "version": cc.version}).
			Info("registered with the container runtime")
	}
	byID := make(map[string]*api.PodSandbox, len(pods))
	for _, pod := range pods {
		byID[pod.GetId()] = pod
	}
	pol, k := node.Policy(), node.Kernel()
	var flagged int
	for _, c := range ctrs {
		if c.GetState() != api.ContainerState_CONTAINER_RUNNING && c.GetState() != api.ContainerState_CONTAINER_CREATED {
			continue
		}
		w, err := p.containerWorkload(byID[c.GetPodSandboxId()], c)
		if err != nil {
			p.log.WithError(err).WithField("container", c.GetId()).Warn("running container not judged")
			continue
		}
		d := policy.Evaluate(pol, w, k, p.now())
		hookPath, _ := p.hookConfig()
		hooked := hookPath != "" && hasOwnHook(c, hookPath)
		if !hooked {
			// Started without patchgate's hook: while patchgate was not
			// connected (a pod that tolerates missing NRI plugins, or no
			// required_plugins), or before it was installed. Nobody judged
			// the rules NRI cannot see: the record says which.
			markUnjudgedRunning(&d, w)
		}
		if d.Verdict == policy.Allow && len(d.Violations) == 0 {
			continue
		}
		flagged++
		// It is running already: patchgate flags it, it does not kill it.
		if d.Verdict == policy.Deny {
			d.Verdict = policy.Warn
		}
		if p.metrics != nil {
			p.metrics.ObserveDecision(audit.SourceNRI, &d, 0)
		}
		p.log.WithFields(logrus.Fields{
			"pod": w.Pod.Namespace + "/" + w.Pod.Name, "container": w.Container.Name,
			"rules": ruleIDs(d.Violations, ""),
		}).Warn("running container does not comply with the policy (not stopped)")
		if p.markReported(w.Container.ID) || hooked {
			// patchgate's hook judged it on its final spec when it started
			// and wrote its record then (through the spool if the service
			// was down); NRI's view here is less than the hook saw.
			continue
		}
		if err := node.AuditLog().Write(ctx, audit.NewRecord(audit.SourceNRI, w, &d, k, nil)); err != nil {
			p.log.WithError(err).Error("audit record not written")
		}
	}
	p.log.WithFields(logrus.Fields{"pods": len(pods), "containers": len(ctrs), "noncompliant": flagged}).Info("synchronized with the runtime")
	return nil, nil
}

// markUnjudgedRunning adds to d, the decision on a running container that
// started without patchgate's OCI hook, a warn violation RuleUnjudged that
// names the rules NRI's view alone could not judge (policy.Unjudged of what
// the NRI workload shows), so its audit record does not read as a pass.
func markUnjudgedRunning(d *policy.Decision, w *policy.Workload) {
	ids := policy.Unjudged(d, w.Seen)
	if len(ids) == 0 {
		return
	}
	slices.Sort(ids)
	name := w.Container.Name
	if name == "" {
		name = w.Container.ID
	}
	d.Violations = append(d.Violations, policy.Violation{
		Rule: policy.RuleUnjudged, Action: policy.ActionWarn, Reason: "input not visible",
		Detail: oneLine(fmt.Sprintf("container %q started without patchgate's OCI hook (created while patchgate was not connected); NRI cannot see the input of %s: not judged",
			name, strings.Join(ids, ", "))),
	})
	if d.Verdict == policy.Allow {
		d.Verdict = policy.Warn
	}
}

// markReported remembers that a container has its audit record, so a
// reconnect's Synchronize does not write it again. It reports whether it was
// already known.
func (p *Plugin) markReported(id string) bool {
	if id == "" {
		return false
	}
	p.syncMu.Lock()
	defer p.syncMu.Unlock()
	if p.reported[id] {
		return true
	}
	if len(p.reported) > 100000 {
		clear(p.reported)
	}
	p.reported[id] = true
	return false
}

// DenyMessage is the one-line error the runtime shows after its own prefix
// ("failed to get NRI adjustment for container: ..."), which kubectl
// describe pod shows: it starts with "patchgate:", names the rule IDs and,
// through policy.Explain, each finding with its OCI field, what to change
// in the pod spec, and the kernel's part when whenKernelBehind made a rule
// stricter. w is the judged workload (nil: no pod fields are named).
func DenyMessage(d *policy.Decision, w *policy.Workload, remediationRunning bool) string {
	rules := ruleIDs(d.Violations, policy.ActionEnforce)
	var b strings.Builder
	if remediationRunning && d.KernelBehind {
		b.WriteString("patchgate: kernel live patch in progress, retry")
	} else {
		b.WriteString("patchgate: denied")
	}
	tag := "[" + strings.Join(rules, ",") + "]"
	b.WriteString(" " + tag)
	if len(rules) > 0 {
		b.WriteString(": ")
		// One finding tagged with exactly the rules of the summary does
		// not repeat them: "denied [runAsRoot]: container ...".
		b.WriteString(strings.TrimPrefix(policy.Explain(d, w, policy.ActionEnforce), tag+" "))
	}
	fmt.Fprintf(&b, " (policy %q)", d.Policy.Name)
	return oneLine(b.String())
}

func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
}

// ruleIDs lists the rule IDs of the violations with the given action (all
// when action is ""), sorted and unique.
func ruleIDs(vs []policy.Violation, action policy.Action) []string {
	var ids []string
	for _, v := range vs {
		if action == "" || v.Action == action {
			ids = append(ids, v.Rule)
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// hasOwnHook reports whether ctr carries patchgate's createRuntime hook:
// path (the configured hook), or its sibling binary in the same directory
// (patchgate and the thin patchgate-hook are installed side by side, and a
// base spec may name either), run with a "hook" argument.
func hasOwnHook(ctr *api.Container, path string) bool {
	for _, h := range ctr.GetHooks().GetCreateRuntime() {
		if !slices.Contains(h.GetArgs(), "hook") {
			continue
		}
		hp := h.GetPath()
		if hp == path {
			return true
		}
		if filepath.Dir(hp) == filepath.Dir(path) && (filepath.Base(hp) == "patchgate" || filepath.Base(hp) == "patchgate-hook") &&
			(filepath.Base(path) == "patchgate" || filepath.Base(path) == "patchgate-hook") {
			return true
		}
	}
	return false
}

// identitySource maps the runtime name NRI reports at Configure to the hook's
// --identity-from value: the runtime whose CRI identity annotations the hook
// may trust. Anything else trusts none, so a pod cannot name its own namespace.
func identitySource(runtime string) string {
	switch strings.ToLower(runtime) {
	case "containerd":
		return hook.IdentityFromContainerd
	case "cri-o", "crio":
		return hook.IdentityFromCRIO
	}
	return hook.IdentityFromNone
}

// runtimeIdentitySource is the connected runtime's identitySource, "none" before
// Configure.
func (p *Plugin) runtimeIdentitySource() string {
	if f := p.identityFrom.Load(); f != nil {
		return *f
	}
	return hook.IdentityFromNone
}

func ptr[T any](v T) *T { return &v }
