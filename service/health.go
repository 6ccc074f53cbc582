package service

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"syscall"
	"time"

	"github.com/patchgate/patchgate/health"
	"github.com/patchgate/patchgate/policy"
)

// The probes (docs/operations.md, "Probes"). Liveness says whether this
// process should be restarted: its loops are stuck or a part of it has
// stopped. It never depends on the runtime, so a containerd restart does not
// restart patchgate. Readiness says whether the node is enforcing through
// this process: connected to the runtime (NRI front end), the decision
// socket listening, a policy in force and a kernel state younger than the
// policy's spec.kernel.maxStateAge.

// Check names, as the probes and `patchgate check` show them.
const (
	CheckService        = "service"
	CheckPolicyWatcher  = "policy-watcher"
	CheckKernelMonitor  = "kernel-monitor"
	CheckRuntime        = "runtime"
	CheckDecisionSocket = "decision-socket"
	CheckPolicy         = "policy"
	CheckKernelState    = "kernel-state"
)

// Probe paths on the metrics listener (and on WithHealthAddr's).
const (
	LivenessPath  = "/healthz"
	ReadinessPath = "/readyz"
)

// minWatcherSilence is the least time the policy watcher may go without a
// round before liveness fails (3 poll intervals when that is more).
const minWatcherSilence = 30 * time.Second

// monitorReadAllowance is how long one kernel read may take on top of the
// monitor's interval before liveness calls the monitor stuck: provider
// tools have a timeout of 30 s each, and a read runs a few of them.
const monitorReadAllowance = 5 * time.Minute

// monitorProgress is what liveness reads from a kernel monitor that
// reports it (*livepatch.Monitor does).
type monitorProgress interface {
	LastRead() time.Time
	Interval() time.Duration
}

// WithRuntimeConnection says an NRI front end reports the runtime
// connection through SetRuntime: the service is not ready until it says
// "connected". Without it (patchgate serve) readiness has no runtime check.
func WithRuntimeConnection() Option {
	return func(s *Service) error {
		s.runtimeExpected = true
		return nil
	}
}

// WithHealthAddr serves the probes alone (no metrics) on addr too, for
// kubelet when the metrics listener is loopback only. The probes show
// check names and states only, so any address is accepted.
func WithHealthAddr(addr string) Option {
	return func(s *Service) error {
		s.healthAddr = addr
		return nil
	}
}

// HealthHandler serves LivenessPath and ReadinessPath (and /<path>/<check>).
func (s *Service) HealthHandler() http.Handler {
	mux := http.NewServeMux()
	live := health.Handler(LivenessPath, s.LivenessChecks)
	ready := health.Handler(ReadinessPath, s.ReadinessChecks)
	mux.Handle(LivenessPath, live)
	mux.Handle(LivenessPath+"/", live)
	mux.Handle(ReadinessPath, ready)
	mux.Handle(ReadinessPath+"/", ready)
	return mux
}

// Liveness and Readiness evaluate the probes' checks now.
func (s *Service) Liveness() health.Result  { return health.Evaluate(s.LivenessChecks()) }
func (s *Service) Readiness() health.Result { return health.Evaluate(s.ReadinessChecks()) }

// LivenessChecks are the liveness probe's checks.
func (s *Service) LivenessChecks() []health.Check {
	checks := []health.Check{
		{Name: CheckService, Run: s.checkService},
		{Name: CheckPolicyWatcher, Run: s.checkWatcher},
	}
	if _, ok := s.kernel.(monitorProgress); ok {
		checks = append(checks, health.Check{Name: CheckKernelMonitor, Run: s.checkMonitor})
	}
	return checks
}

// ReadinessChecks are the readiness probe's checks.
func (s *Service) ReadinessChecks() []health.Check {
	var checks []health.Check
	if s.runtimeExpected {
		checks = append(checks, health.Check{Name: CheckRuntime, Run: s.checkRuntime})
	}
	if s.socketPath != "" {
		checks = append(checks, health.Check{Name: CheckDecisionSocket, Run: s.checkSocket})
	}
	return append(checks,
		health.Check{Name: CheckPolicy, Run: s.checkPolicyInForce},
		health.Check{Name: CheckKernelState, Run: s.checkKernelFresh})
}

func (s *Service) checkService() (string, error) {
	select {
	case <-s.stopped:
		return "", errors.New("the service has stopped")
	default:
	}
	if s.started.IsZero() {
		return "", errors.New("the service has not started")
	}
	if s.Err() != nil {
		// The error's text is in the log; the probe names no paths.
		return "", errors.New("a part of the service (decision socket, audit socket or metrics endpoint) stopped with an error; see the log")
	}
	return "", nil
}

func (s *Service) checkWatcher() (string, error) {
	at := s.watchBeat.Load()
	if at == 0 {
		return "", errors.New("the policy watcher has not started")
	}
	limit := max(3*s.pollInterval, minWatcherSilence)
	if age := s.now().Sub(time.Unix(0, at)); age > limit {
		return "", fmt.Errorf("the policy watcher's last round was %s ago, more than %s (3 poll intervals, at least %s)",
			round(age), limit, minWatcherSilence)
	}
	return "", nil
}

func (s *Service) checkMonitor() (string, error) {
	m := s.kernel.(monitorProgress)
	last := m.LastRead()
	if last.IsZero() {
		// Start reads once before serving; a monitor never read is one
		// whose first read has not finished (or started) yet.
		since := s.now().Sub(s.started)
		if limit := m.Interval() + monitorReadAllowance; since > limit {
			return "", fmt.Errorf("no kernel read has finished in the %s since the service started (interval %s plus %s for a read)",
				round(since), m.Interval(), monitorReadAllowance)
		}
		return "first kernel read in progress", nil
	}
	limit := m.Interval() + monitorReadAllowance
	if age := s.now().Sub(last); age > limit {
		return "", fmt.Errorf("the kernel monitor's last read finished %s ago, more than its interval %s plus %s for a read: reads are stuck or the monitor stopped",
			round(age), m.Interval(), monitorReadAllowance)
	}
	return "", nil
}

func (s *Service) checkRuntime() (string, error) {
	r := s.runtime.Load()
	if r == nil {
		return "", errors.New("not registered with the container runtime yet")
	}
	if r.State != "connected" {
		return "", fmt.Errorf("runtime connection is %s, not connected: NRI does not judge containers on this node", r.State)
	}
	return "connected as " + r.Plugin + ", mode " + r.Mode, nil
}

func (s *Service) checkSocket() (string, error) {
	if !s.accepting.Load() {
		return "", errors.New("the decision socket is not accepting connections")
	}
	var st syscall.Stat_t
	if err := syscall.Stat(s.socketPath, &st); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", errors.New("the decision socket's file was removed: hooks cannot reach the service")
		}
		return "", errors.New("the decision socket's file cannot be read")
	}
	if st.Dev != s.sockDev || st.Ino != s.sockIno {
		return "", errors.New("the decision socket's path now names another file: hooks cannot reach the service")
	}
	return "", nil
}

func (s *Service) checkPolicyInForce() (string, error) {
	p := s.pol.Load()
	if p == nil {
		return "", errors.New("no policy loaded yet")
	}
	if st := s.polStatus.Load(); st != nil && st.Error != "" {
		// The last good policy is enforced: ready, and the note says so
		// (the error itself is in the log and `patchgate check`).
		return fmt.Sprintf("%s (%s) in force; the reload since %s fails, last good policy kept",
			p.Name(), p.Digest(), st.ErrorAt.UTC().Format(time.RFC3339)), nil
	}
	return p.Name() + " (" + p.Digest() + ")", nil
}

func (s *Service) checkKernelFresh() (string, error) {
	var k *policy.KernelState
	if s.kernel != nil {
		k = s.kernel.Snapshot()
	}
	if k == nil || k.ObservedAt.IsZero() {
		return "", errors.New("the kernel state has not been read yet")
	}
	limit := time.Duration(0)
	if p := s.pol.Load(); p != nil {
		limit = p.Spec.Kernel.MaxStateAge.D()
	}
	age := s.now().Sub(k.ObservedAt)
	if limit > 0 && age > limit {
		return "", fmt.Errorf("the kernel state is %s old, more than spec.kernel.maxStateAge %s", round(age), limit)
	}
	return fmt.Sprintf("read %s ago", round(max(age, 0))), nil
}

func round(d time.Duration) time.Duration {
	if d > time.Minute {
		return d.Round(time.Second)
	}
	return d.Round(time.Millisecond)
}
