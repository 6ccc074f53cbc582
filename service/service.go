// Package service is patchgate's node service: it keeps the policy (reloading
// it when the files change, keeping the last good one when they break), the
// kernel state (through a livepatch monitor), the audit log and its socket,
// and answers decision requests on a root-only unix socket. `patchgate
// serve` runs it on hosts without NRI, where the OCI hook asks it for
// decisions; the NRI plugin runs the same Service in-process.
package service

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/patchgate/patchgate/audit"
	"github.com/patchgate/patchgate/internal/logfields"
	"github.com/patchgate/patchgate/metrics"
	"github.com/patchgate/patchgate/policy"
	"github.com/patchgate/patchgate/service/decision"
)

// ErrConfig is wrapped by option and start-up errors.
var ErrConfig = errors.New("invalid service configuration")

// KernelMonitor is what the service needs from a livepatch monitor
// (*livepatch.Monitor is one): a snapshot without I/O, and a fresh reading
// on demand.
type KernelMonitor interface {
	Snapshot() *policy.KernelState
	Refresh(ctx context.Context) *policy.KernelState
}

// Remediator starts (or joins) a live-patch update and waits at most wait
// for it. It returns the outcome status (patched, running, failed,
// notNeeded) and a reason.
type Remediator interface {
	Remediate(ctx context.Context, wait time.Duration) (status, reason string)
}

// Service is the node service. Create it with New, then Start it.
type Service struct {
	policyPath   string
	policyCopy   string
	nodeName     string
	pollInterval time.Duration
	socketPath   string
	statusPath   string
	allowedUIDs  []uint32
	bundleJudge  BundleJudge
	auditCfg     *audit.Config
	auditSocket  string
	kernel       KernelMonitor
	startupRead  time.Duration
	remediator   Remediator
	logger       logrus.FieldLogger
	now          func() time.Time
	onDecision   func(source string, d policy.Decision, took time.Duration)
	metrics      *metrics.Metrics
	metricsAddr  string
	healthAddr   string
	// runtimeExpected: an NRI front end reports the runtime connection
	// (WithRuntimeConnection); readiness waits for it.
	runtimeExpected bool

	pol       atomic.Pointer[policy.Policy]
	polStatus atomic.Pointer[PolicyStatus]
	hookInj   atomic.Pointer[HookInjection]
	runtime   atomic.Pointer[RuntimeConnection]
	fprint    string
	statusMu  sync.Mutex // serialises writeStatus, so an older snapshot never replaces a newer one

	auditLog *audit.Log
	auditSrv *audit.Server
	recent   recentIDs
	judged   judgedCache
	ln       *net.UnixListener
	started  time.Time

	// For the probes (health.go): the watcher's last round (unix
	// nanoseconds by s.now), whether the decision socket's accept loop
	// runs, and the socket file it listens on.
	watchBeat        atomic.Int64
	accepting        atomic.Bool
	sockDev, sockIno uint64

	cancel  context.CancelFunc
	wg      sync.WaitGroup
	conns   sync.WaitGroup
	stopped chan struct{}
	errMu   sync.Mutex
	runErr  error
}

// Option configures a Service.
type Option func(*Service) error

// WithPolicy sets the policy file or directory (default /etc/patchgate) and
// the node name for the nodes/<name>.yaml overlay.
func WithPolicy(path, nodeName string) Option {
	return func(s *Service) error {
		if !filepath.IsAbs(path) {
			return fmt.Errorf("%w: policy path %q is not absolute", ErrConfig, path)
		}
		s.policyPath, s.nodeName = filepath.Clean(path), nodeName
		return nil
	}
}

// WithPolicyCopy makes the service write the policy in force to
// dir/policy.yaml (root-only) after every successful load, for OCI hooks
// that decide alone and cannot see the service's policy path (WritePolicyCopy).
func WithPolicyCopy(dir string) Option {
	return func(s *Service) error {
		if !filepath.IsAbs(dir) {
			return fmt.Errorf("%w: policy copy directory %q is not absolute", ErrConfig, dir)
		}
		s.policyCopy = filepath.Clean(dir)
		return nil
	}
}

// WithPollInterval sets how often the policy files are checked for changes
// and the status file is rewritten (default 2s).
func WithPollInterval(d time.Duration) Option {
	return func(s *Service) error {
		if d <= 0 {
			return fmt.Errorf("%w: poll interval %v", ErrConfig, d)
		}
		s.pollInterval = d
		return nil
	}
}

// WithSocket sets the decision socket (default DefaultSocket); "" runs no
// decision socket (the NRI plugin decides in-process).
func WithSocket(path string) Option {
	return func(s *Service) error {
		if path != "" && !filepath.IsAbs(path) {
			return fmt.Errorf("%w: socket path %q is not absolute", ErrConfig, path)
		}
		s.socketPath = path
		return nil
	}
}

// WithStatusFile sets where the status JSON is written (default
// DefaultStatusFile); "" writes none.
func WithStatusFile(path string) Option {
	return func(s *Service) error {
		if path != "" && !filepath.IsAbs(path) {
			return fmt.Errorf("%w: status path %q is not absolute", ErrConfig, path)
		}
		s.statusPath = path
		return nil
	}
}

// WithAllowedUIDs lets these uids besides root use the decision socket.
func WithAllowedUIDs(uids ...uint32) Option {
	return func(s *Service) error {
		s.allowedUIDs = append(s.allowedUIDs, uids...)
		return nil
	}
}

// WithAudit overrides the audit log configuration that would otherwise come
// from the policy's spec.audit, and the audit socket ("" for none; default
// audit.DefaultSocket).
func WithAudit(cfg audit.Config, socket string) Option {
	return func(s *Service) error {
		if socket != "" && !filepath.IsAbs(socket) {
			return fmt.Errorf("%w: audit socket %q is not absolute", ErrConfig, socket)
		}
		c := cfg
		s.auditCfg, s.auditSocket = &c, socket
		return nil
	}
}

// WithKernelMonitor sets the kernel state source. The caller runs it.
func WithKernelMonitor(m KernelMonitor) Option {
	return func(s *Service) error {
		s.kernel = m
		return nil
	}
}

// DefaultStartupRead bounds the kernel read Start does before it serves.
const DefaultStartupRead = 10 * time.Second

// WithStartupRead bounds the one synchronous kernel read Start does before
// it serves decisions (default DefaultStartupRead; 0 turns it off). A read
// that does not finish in time leaves what it got (the parts it could not
// read are unknown), and Start logs it as an error.
func WithStartupRead(timeout time.Duration) Option {
	return func(s *Service) error {
		if timeout < 0 {
			return fmt.Errorf("%w: negative start-up read timeout %v", ErrConfig, timeout)
		}
		s.startupRead = timeout
		return nil
	}
}

// WithRemediator enables remediation before admission (when the policy
// enables it too).
func WithRemediator(r Remediator) Option {
	return func(s *Service) error {
		s.remediator = r
		return nil
	}
}

// WithLogger sets the operational logger.
func WithLogger(l logrus.FieldLogger) Option {
	return func(s *Service) error {
		if l == nil {
			return fmt.Errorf("%w: nil logger", ErrConfig)
		}
		s.logger = l
		return nil
	}
}

// WithClock sets the clock (tests).
func WithClock(now func() time.Time) Option {
	return func(s *Service) error {
		s.now = now
		return nil
	}
}

// WithDecisionObserver is called after every Admit, e.g. to count metrics.
func WithDecisionObserver(f func(source string, d policy.Decision, took time.Duration)) Option {
	return func(s *Service) error {
		s.onDecision = f
		return nil
	}
}

// WithMetrics records decisions, kernel compliance, remediation and audit
// health in m, and serves them on addr ("" serves nothing; the address must
// be loopback unless the caller checked otherwise).
func WithMetrics(m *metrics.Metrics, addr string) Option {
	return func(s *Service) error {
		if m == nil {
			return fmt.Errorf("%w: nil metrics", ErrConfig)
		}
		if addr != "" {
			if err := metrics.CheckAddr(addr); err != nil {
				return fmt.Errorf("%w: %v", ErrConfig, err)
			}
		}
		s.metrics, s.metricsAddr = m, addr
		return nil
	}
}

// New validates the options. Nothing is opened until Start.
func New(opts ...Option) (*Service, error) {
	s := &Service{
		policyPath:   policy.DefaultDir,
		pollInterval: 2 * time.Second,
		startupRead:  DefaultStartupRead,
		socketPath:   DefaultSocket,
		statusPath:   DefaultStatusFile,
		auditSocket:  audit.DefaultSocket,
		logger:       logrus.StandardLogger(),
		now:          time.Now,
		stopped:      make(chan struct{}),
	}
	for _, o := range opts {
		if err := o(s); err != nil {
			return nil, err
		}
	}
	if s.socketPath != "" && s.socketPath == s.auditSocket {
		return nil, fmt.Errorf("%w: decision and audit sockets are the same path", ErrConfig)
	}
	return s, nil
}

// Start loads the policy (a policy that does not load is an error here:
// there is no last good one yet), opens the audit log, takes in its spool,
// listens on the sockets, and starts the watcher. It returns once the
// sockets accept connections. Before it serves it reads the kernel once
// (bounded by WithStartupRead), so the first decisions after a boot do not
// see an unread kernel; requests themselves never wait on a read. Stop it
// by cancelling ctx or calling Close.
func (s *Service) Start(ctx context.Context) error {
	pol, fp, err := s.loadPolicy()
	if err != nil {
		return fmt.Errorf("loading policy: %w", err)
	}
	s.setPolicy(pol, fp)
	s.started = s.now()
	s.startupKernelRead(ctx)

	cfg := s.auditConfig(pol)
	lg, err := audit.Open(cfg)
	if err != nil {
		return fmt.Errorf("opening audit log: %w", err)
	}
	s.auditLog = lg
	if st, err := lg.IngestSpool(ctx); err != nil {
		s.logger.WithError(err).Error("audit spool not taken in at start")
	} else {
		s.logger.WithField("spool", fmt.Sprintf("%+v", st)).Debug("audit spool taken in")
	}

	ctx, cancel := context.WithCancel(ctx)
	s.cancel = cancel
	if s.auditSocket != "" {
		srv, err := audit.NewServer(lg, audit.WithSocket(s.auditSocket))
		if err != nil {
			cancel()
			_ = lg.Close()
			return fmt.Errorf("audit socket: %w", err)
		}
		s.auditSrv = srv
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := srv.Serve(ctx); err != nil {
				s.setErr(err)
				s.logger.WithError(err).Error("audit socket stopped")
			}
		}()
	}
	if s.socketPath != "" {
		ln, err := listenUnix(s.socketPath)
		if err != nil {
			cancel()
			s.wg.Wait()
			_ = lg.Close()
			return fmt.Errorf("decision socket: %w", err)
		}
		s.ln = ln
		var st syscall.Stat_t
		if err := syscall.Stat(s.socketPath, &st); err == nil {
			s.sockDev, s.sockIno = st.Dev, st.Ino
		}
		s.accepting.Store(true)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.accepting.Store(false)
			s.serve(ctx)
		}()
	}
	if s.metrics != nil {
		s.metrics.WatchAudit(lg.Health)
		s.updateKernelMetrics()
		if s.metricsAddr != "" {
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				if err := metrics.Serve(ctx, s.metricsAddr, s.metrics, s.HealthHandler()); err != nil {
					s.setErr(err)
					s.logger.WithError(err).Error("metrics endpoint stopped")
				}
			}()
		}
	}
	if s.healthAddr != "" {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := metrics.ServeHandler(ctx, s.healthAddr, s.HealthHandler()); err != nil {
				s.setErr(err)
				s.logger.WithError(err).Error("health endpoint stopped")
			}
		}()
	}
	s.watchBeat.Store(s.now().UnixNano())
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.watch(ctx)
	}()
	s.writeStatus()
	go func() {
		<-ctx.Done()
		s.shutdown()
	}()
	s.logger.WithFields(logrus.Fields{
		"policy": pol.Name(), "digest": pol.Digest(), "socket": s.socketPath,
		"audit_log": cfg.Path, "audit_socket": s.auditSocket,
	}).Info("patchgate service started")
	return nil
}

// startupKernelRead reads the kernel once, synchronously, unless the
// monitor already has a state. This is start-up, not the request path.
func (s *Service) startupKernelRead(ctx context.Context) {
	if s.kernel == nil || s.startupRead <= 0 || s.kernel.Snapshot() != nil {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, s.startupRead)
	defer cancel()
	begin := time.Now()
	k := s.kernel.Refresh(rctx)
	took := time.Since(begin).Round(time.Millisecond)
	switch {
	case rctx.Err() != nil || k == nil:
		s.logger.WithFields(logrus.Fields{"timeout_ms": logfields.Ms(s.startupRead), "took_ms": logfields.Ms(took)}).
			Error("the first kernel read did not finish within the start-up timeout: decisions see the parts it could not read as unknown until the next read")
	case len(k.Unknown) > 0:
		s.logger.WithFields(logrus.Fields{"took_ms": logfields.Ms(took), "unknown": len(k.Unknown)}).Warn("first kernel read done, with unknown parts")
	default:
		s.logger.WithField("took_ms", logfields.Ms(took)).Info("first kernel read done")
	}
}

// Done is closed when the service has shut down.
func (s *Service) Done() <-chan struct{} { return s.stopped }

// Err returns the first error a background part stopped with.
func (s *Service) Err() error {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return s.runErr
}

func (s *Service) setErr(err error) {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	if s.runErr == nil {
		s.runErr = err
	}
}

// Close stops the service and waits until it has: the sockets are closed
// and removed, requests in flight are answered, the audit spool is taken in
// a last time and the log is closed.
func (s *Service) Close() error {
	if s.cancel != nil {
		s.cancel()
		<-s.stopped
	}
	return s.Err()
}

func (s *Service) shutdown() {
	if s.ln != nil {
		_ = s.ln.Close() // unlinks the socket
	}
	s.wg.Wait()
	s.conns.Wait()
	if s.auditLog != nil {
		if err := s.auditLog.Close(); err != nil {
			s.logger.WithError(err).Error("closing audit log")
		}
	}
	if s.statusPath != "" {
		if err := os.Remove(s.statusPath); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.logger.WithError(err).Warn("removing status file")
		}
	}
	s.logger.Info("patchgate service stopped")
	close(s.stopped)
}

// Policy returns the policy in force (never nil once started).
func (s *Service) Policy() *policy.Policy { return s.pol.Load() }

// Kernel returns the latest kernel state snapshot without I/O. Without a
// monitor the state is unknown.
func (s *Service) Kernel() *policy.KernelState {
	if s.kernel != nil {
		if k := s.kernel.Snapshot(); k != nil {
			return k
		}
	}
	return &policy.KernelState{Unknown: []policy.UnknownPart{{Part: "all", Reason: "kernel state not read yet"}}}
}

// AuditLog returns the audit log the service owns (nil before Start).
func (s *Service) AuditLog() *audit.Log { return s.auditLog }

// Remediator returns the remediator given with WithRemediator, or nil.
func (s *Service) Remediator() Remediator { return s.remediator }

// Decide evaluates w against the current policy and kernel snapshot: pure,
// no audit, no remediation.
func (s *Service) Decide(w *policy.Workload) policy.Decision {
	return policy.Evaluate(s.Policy(), w, s.Kernel(), s.now())
}

// Result is the outcome of Admit.
type Result struct {
	Decision    policy.Decision
	Kernel      *policy.KernelState
	Remediation *audit.Remediation
	// Audited is set when the record was written, or when the policy does
	// not ask for one for this decision.
	Audited  bool
	AuditErr error
}

// AdmitOptions carry what the front end knows about the request.
type AdmitOptions struct {
	// Source is the front end: audit.SourceHook or audit.SourceNRI.
	Source string
	// AuditID is the record's UUID ("" for a new one).
	AuditID string
	// AfterNRI: the hook the NRI plugin injected is asking; see
	// policy.AfterNRI. No remediation either: NRI started it.
	AfterNRI bool
	// Final: the caller is the last judge (the OCI hook asking over the
	// decision socket), so a rule still deferred was judged by nobody and
	// follows spec.hook.onError (policy.MarkUnjudged). NRIJudged are the
	// fields the NRI plugin judged before the hook ran.
	Final     bool
	NRIJudged policy.Field
	// RememberJudged: the caller is the NRI validator, judging the
	// container as it will run, and patchgate's OCI hook follows. Unless
	// the container is refused, the service remembers w.Seen under the
	// container's ID, and the hook's question for that ID is answered on
	// the rest only (see answer).
	RememberJudged bool
	// Mode and Unseen go into the decision and its record: the NRI plugin's
	// protocol mode and what that mode cannot see (policy.Decision).
	Mode   string
	Unseen []string
	// AuditDeniedOnly: write the record only for a refusal. The NRI plugin
	// in CreateContainer mode sets it when its OCI hook follows: the hook
	// judges the final spec in full and records a flagged container once.
	AuditDeniedOnly bool
}

// Admit is the whole decision for one container: evaluate; when the kernel
// is behind and the policy enables remediation, start it and wait at most
// remediation.admitWait (less if ctx's deadline is sooner), then evaluate again on the fresh state; write the
// audit record; and deny when the record cannot be written and the policy
// says audit.failClosed.
func (s *Service) Admit(ctx context.Context, w *policy.Workload, o AdmitOptions) Result {
	start := s.now()
	pol := s.Policy()
	k := s.Kernel()
	d := policy.Evaluate(pol, w, k, s.now())
	d.Mode, d.Unseen = o.Mode, o.Unseen
	if o.Final {
		policy.MarkUnjudged(&d, o.NRIJudged, pol.Spec.Hook.OnError)
	}
	record := true
	if o.AfterNRI {
		record = policy.AfterNRI(&d)
	}
	var rem *audit.Remediation
	if d.KernelBehind && !o.AfterNRI && pol.Spec.Remediation.Enabled && s.remediator != nil {
		wait := pol.Spec.Remediation.AdmitWait.D()
		if dl, ok := ctx.Deadline(); ok {
			// The caller's deadline bounds the wait; with none left the
			// remediation is still started, not waited for.
			wait = max(min(wait, time.Until(dl)), 0)
		}
		status, reason := s.remediator.Remediate(ctx, wait)
		rem = &audit.Remediation{Started: true, Outcome: status, Reason: reason}
		if s.metrics != nil {
			// The run itself is counted when it finishes (the
			// remediator's outcome callback): many admissions can
			// wait on one run.
			s.metrics.ObserveRemediationWait(status)
		}
		if status == "patched" {
			// The remediator refreshed the monitor after patching.
			k = s.Kernel()
			d = policy.Evaluate(pol, w, k, s.now())
			d.Mode, d.Unseen = o.Mode, o.Unseen
			if o.Final {
				policy.MarkUnjudged(&d, o.NRIJudged, pol.Spec.Hook.OnError)
			}
		}
	}
	if o.AuditDeniedOnly && d.Verdict != policy.Deny {
		record = false
	}
	res := Result{Decision: d, Kernel: k, Remediation: rem, Audited: true}
	recordID := "" // the UUID of the record written, if any
	if record && audit.ShouldRecord(&d, pol.Spec.Audit.RecordAllowed) {
		rec := audit.NewRecord(o.Source, w, &d, k, rem)
		if o.AuditID != "" {
			rec.UUID = o.AuditID
		}
		// A caller that resends a request after losing the answer gets the
		// same answer and no second record.
		if o.AuditID == "" || s.recent.add(o.AuditID) {
			if err := s.auditLog.Write(ctx, rec); err != nil {
				res.Audited, res.AuditErr = false, err
				s.recent.remove(o.AuditID)
			} else {
				recordID = rec.UUID
			}
		}
	}
	if pol.Spec.Audit.FailClosed && (res.AuditErr != nil || !s.auditLog.Health().OK) && d.Verdict != policy.Deny {
		why := res.AuditErr
		if why == nil {
			why = s.auditLog.Health().Err()
		}
		audit.FailClosed(&res.Decision, why)
	}
	if o.RememberJudged && res.Decision.Verdict != policy.Deny {
		s.judged.remember(w.Container.ID, w.Seen, recordID, s.now())
	}
	took := s.now().Sub(start)
	if s.metrics != nil {
		s.metrics.ObserveDecision(o.Source, &res.Decision, took)
	}
	if s.onDecision != nil {
		s.onDecision(o.Source, res.Decision, took)
	}
	return res
}

// auditConfig maps spec.audit onto audit.Config unless WithAudit overrode it.
func (s *Service) auditConfig(pol *policy.Policy) audit.Config {
	if s.auditCfg != nil {
		return *s.auditCfg
	}
	a := pol.Spec.Audit
	return audit.Config{
		Path:          a.Path,
		MaxSizeBytes:  int64(a.MaxSizeMB) << 20,
		MaxBackups:    a.MaxBackups,
		RecordAllowed: a.RecordAllowed,
		Sync:          a.Sync,
		FailClosed:    a.FailClosed,
		Logger:        s.logger,
	}
}

// HookInjection is the NRI plugin's report on injecting the OCI hook.
type HookInjection struct {
	// Status is "injected", "refused" (the runtime's validator rejects OCI
	// hook adjustments) or "disabled".
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
}

// SetHookInjection records the hook injection status for the status file
// (`patchgate check` shows it).
func (s *Service) SetHookInjection(h HookInjection) {
	s.hookInj.Store(&h)
	if s.metrics != nil {
		s.metrics.SetHookInjectionRefused(h.Status == "refused")
	}
	s.writeStatus()
}

// RuntimeConnection is the NRI plugin's connection to the container runtime,
// as the status file, `patchgate check` and the patchgate_runtime_connected
// metric show it. A node where it is not "connected" is not enforcing
// through NRI: only an OCI hook (injected earlier, or in the runtime's base
// spec) judges containers there.
type RuntimeConnection struct {
	// State is "connecting" (never registered yet), "connected",
	// "disconnected" (was connected; reconnecting) or "refused" (the runtime
	// closed the connection while registering the plugin).
	State string `json:"state"`
	// Mode is "validator" (NRI >= v0.10: decided in
	// ValidateContainerAdjustment), "CreateContainer" (NRI v0.8: decided in
	// CreateContainer) or "hook-only" (not connected).
	Mode string `json:"mode"`
	// Plugin is the name the plugin registered as, "NN-name".
	Plugin string `json:"plugin,omitempty"`
	// Runtime, RuntimeVersion and NRIVersion are what the runtime reported
	// at Configure (NRIVersion inferred from the runtime's version when the
	// runtime does not say it).
	Runtime        string `json:"runtime,omitempty"`
	RuntimeVersion string `json:"runtimeVersion,omitempty"`
	NRIVersion     string `json:"nriVersion,omitempty"`
	// Unseen lists what the mode cannot see.
	Unseen []string `json:"unseen,omitempty"`
	// BaseSpecMissing lists the runtime handlers whose containers arrived
	// without patchgate's hook in the runtime's base spec: while patchgate
	// is down nothing judges them on a runtime without the NRI validator.
	BaseSpecMissing []string `json:"baseSpecMissing,omitempty"`
	// Reason is why it is not connected, or what the runtime said.
	Reason string    `json:"reason,omitempty"`
	Since  time.Time `json:"since,omitzero"`
}

// SetRuntime records the NRI plugin's connection state for the status file
// and the patchgate_runtime_connected metric.
func (s *Service) SetRuntime(r RuntimeConnection) {
	s.runtime.Store(&r)
	if s.metrics != nil {
		s.metrics.SetRuntimeConnected(r.Mode, r.State == "connected")
		s.metrics.SetBaseSpecMissing(len(r.BaseSpecMissing))
	}
	s.writeStatus()
}

func trimErr(err error) string {
	if err == nil {
		return ""
	}
	return strings.TrimSpace(err.Error())
}

// updateKernelMetrics publishes the kernel snapshot and whether it complies
// with the policy's kernel rules.
func (s *Service) updateKernelMetrics() {
	if s.metrics == nil {
		return
	}
	k := s.Kernel()
	_, behind := policy.EvaluateKernel(s.Policy(), k, s.now())
	s.metrics.SetKernelState(k, !behind)
}

// recentIDs remembers the last recentLimit audit IDs the service wrote.
type recentIDs struct {
	mu   sync.Mutex
	set  map[string]bool
	ring []string
	next int
}

const recentLimit = 4096

// add records id and reports whether it was new.
func (r *recentIDs) add(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.set == nil {
		r.set = make(map[string]bool, recentLimit)
		r.ring = make([]string, recentLimit)
	}
	if r.set[id] {
		return false
	}
	if old := r.ring[r.next]; old != "" {
		delete(r.set, old)
	}
	r.ring[r.next] = id
	r.next = (r.next + 1) % recentLimit
	r.set[id] = true
	return true
}

// remove forgets id (its record was not written after all).
func (r *recentIDs) remove(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.set, id)
}

// Default paths under /run/patchgate.
const (
	DefaultRunDir     = "/run/patchgate"
	DefaultSocket     = decision.DefaultSocket
	DefaultStatusFile = "/run/patchgate/status.json"
)
