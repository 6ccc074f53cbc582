package livepatch

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/patchgate/patchgate/internal/logfields"
	"github.com/patchgate/patchgate/policy"
)

// Remediation outcomes.
const (
	// StatusPatched: the update ran and the refreshed state is no longer
	// behind: admit.
	StatusPatched = "patched"
	// StatusRunning: the update is still running after the caller's wait.
	StatusRunning = "running"
	// StatusFailed: the update failed, timed out, left the kernel behind, or
	// is held back by the rate limit. Reason says which.
	StatusFailed = "failed"
	// StatusNotNeeded: the kernel is not behind; nothing was run.
	StatusNotNeeded = "notNeeded"
)

// ErrNoRemediation: no command is known for the provider and the policy
// names none.
var ErrNoRemediation = errors.New("no remediation command")

// Outcome is the result of Ensure.
type Outcome struct {
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
	// Commands are the argvs of the run the outcome belongs to.
	Commands   [][]string `json:"commands,omitempty"`
	StartedAt  time.Time  `json:"startedAt,omitzero"`
	FinishedAt time.Time  `json:"finishedAt,omitzero"`
	// Output is the last command's output, trimmed, at most 4 KiB.
	Output string `json:"output,omitempty"`
	// Log is the file the commands' output went to, when the remediator
	// keeps one (WithRunLog), as patchgate's process sees it.
	Log string `json:"log,omitempty"`
	// Interrupted names the signal (SIGINT, SIGTERM) that interrupted Apply.
	Interrupted string `json:"interrupted,omitempty"`
	// PID is the process (and process group) id of the command Apply left
	// running in the background when it was interrupted.
	PID int `json:"pid,omitempty"`
}

// BehindFunc says whether a state is behind (policy.EvaluateKernel's second
// result, for the node's policy).
type BehindFunc func(*policy.KernelState) bool

// Refresher refreshes the kernel state after an update (*Monitor is one).
type Refresher interface {
	Refresh(ctx context.Context) *policy.KernelState
	Snapshot() *policy.KernelState
}

// Remediator starts a live-patch update when the kernel is behind: one run
// at a time per node (concurrent callers share it), a timeout per run, a
// refresh of the state right after, the outcome recorded, and a rate limit
// so that a failing update does not re-run for every container.
type Remediator struct {
	env      *Env
	provider string
	command  []string
	modules  []string
	timeout  time.Duration
	backoff  time.Duration
	behind   BehindFunc
	state    Refresher
	now      func() time.Time
	log      logrus.FieldLogger
	onDone   func(Outcome)
	progress func(Event)
	runLog   string

	mu       sync.Mutex
	inflight *remediationRun
	last     *Outcome
	failedAt time.Time
}

type remediationRun struct {
	done    chan struct{}
	outcome Outcome

	cmds      [][]string
	startedAt time.Time

	mu      sync.Mutex
	argv    []string // the command running now
	pid     int      // its process (and process group) id, 0 between commands
	waiting bool     // the commands succeeded: re-reading the state, waiting for the kernel
	stopSig string   // set by Apply's stop: no further command starts
	// stopWith is the signal a stopped run's command gets, also one that
	// starts after the stop.
	stopWith syscall.Signal
	logPath  string
}

// current returns the command running now (nil when none), its pid,
// whether the run already waits for the kernel's transition, and its log.
func (run *remediationRun) current() (argv []string, pid int, waiting bool, log string) {
	run.mu.Lock()
	defer run.mu.Unlock()
	return run.argv, run.pid, run.waiting, run.logPath
}

func (run *remediationRun) stopped() string {
	run.mu.Lock()
	defer run.mu.Unlock()
	return run.stopSig
}

// RemediatorOption configures a Remediator.
type RemediatorOption func(*Remediator) error

// WithCommand sets the update argv (spec.remediation.command); it replaces
// the provider's default. argv[0] is a tool name looked up like any tool, or
// an absolute host path.
func WithCommand(argv []string) RemediatorOption {
	return func(r *Remediator) error {
		if len(argv) > 0 && strings.TrimSpace(argv[0]) == "" {
			return fmt.Errorf("%w: remediation command with an empty program", ErrOption)
		}
		r.command = append([]string(nil), argv...)
		return nil
	}
}

// WithModules names the kpatch modules to load (spec.kernel.requiredPatches).
func WithModules(names []string) RemediatorOption {
	return func(r *Remediator) error { r.modules = append([]string(nil), names...); return nil }
}

// WithRemediationTimeout bounds one run (spec.remediation.timeout, default 10m).
func WithRemediationTimeout(d time.Duration) RemediatorOption {
	return func(r *Remediator) error {
		if d <= 0 {
			return fmt.Errorf("%w: remediation timeout %v", ErrOption, d)
		}
		r.timeout = d
		return nil
	}
}

// WithBackoff sets how long after a failed run no new run starts (default 5m).
func WithBackoff(d time.Duration) RemediatorOption {
	return func(r *Remediator) error {
		if d < 0 {
			return fmt.Errorf("%w: backoff %v", ErrOption, d)
		}
		r.backoff = d
		return nil
	}
}

// WithBehind sets the judge of "behind" (required).
func WithBehind(f BehindFunc) RemediatorOption {
	return func(r *Remediator) error { r.behind = f; return nil }
}

// WithPolicy takes "behind" and the kpatch modules from the node policy:
// behind is policy.EvaluateKernel's verdict at the time of the check, the
// modules are spec.kernel.requiredPatches. It is what the node service
// wants; WithBehind and WithModules override the parts.
func WithPolicy(p *policy.Policy) RemediatorOption {
	return func(r *Remediator) error {
		if p == nil {
			return fmt.Errorf("%w: nil policy", ErrOption)
		}
		if r.modules == nil {
			r.modules = append([]string(nil), p.Spec.Kernel.RequiredPatches...)
		}
		if r.behind == nil {
			r.behind = func(k *policy.KernelState) bool {
				_, behind := policy.EvaluateKernel(p, k, r.now())
				return behind
			}
		}
		return nil
	}
}

// WithRemediationClock sets the clock (tests).
func WithRemediationClock(now func() time.Time) RemediatorOption {
	return func(r *Remediator) error { r.now = now; return nil }
}

// WithRemediationLogger sets the operational logger.
func WithRemediationLogger(l logrus.FieldLogger) RemediatorOption {
	return func(r *Remediator) error { r.log = l; return nil }
}

// WithProgress calls f with every step of a run as it happens: a command
// started, each line of its output, its exit, the wait for the kernel's
// transition, the outcome (patchgate check --apply prints them). f is
// called from the run's goroutine and must not block for long.
func WithProgress(f func(Event)) RemediatorOption {
	return func(r *Remediator) error { r.progress = f; return nil }
}

// WithRunLog sends the commands' stdout and stderr to a new file in dir, a
// directory on the host (under the host root), instead of pipes, and
// follows that file for the output lines: a command that Apply leaves
// running in the background when it is interrupted keeps writing there,
// where a pipe without its reader would kill it with SIGPIPE. When dir
// cannot be used the file goes to the temporary directory.
func WithRunLog(dir string) RemediatorOption {
	return func(r *Remediator) error {
		if dir != "" && !filepath.IsAbs(dir) {
			return fmt.Errorf("%w: run log directory %q is not an absolute host path", ErrOption, dir)
		}
		r.runLog = dir
		return nil
	}
}

// WithOnOutcome calls f with the outcome of every finished run (audit,
// metrics). It must not block.
func WithOnOutcome(f func(Outcome)) RemediatorOption {
	return func(r *Remediator) error { r.onDone = f; return nil }
}

// NewRemediator returns a Remediator that runs tools like reader does and
// refreshes state through state.
func NewRemediator(reader *Reader, state Refresher, opts ...RemediatorOption) (*Remediator, error) {
	if reader == nil || state == nil {
		return nil, fmt.Errorf("%w: remediator needs a reader and a state refresher", ErrOption)
	}
	r := &Remediator{
		env: reader.Env(), provider: reader.Provider(), state: state,
		timeout: 10 * time.Minute, backoff: 5 * time.Minute, now: time.Now, log: logrus.StandardLogger(),
	}
	for _, o := range opts {
		if err := o(r); err != nil {
			return nil, err
		}
	}
	if r.behind == nil {
		return nil, fmt.Errorf("%w: remediator needs WithPolicy or WithBehind to tell whether the kernel is behind", ErrOption)
	}
	if r.provider == ProviderAuto {
		// auto: the first installed tool decides the default command.
		r.provider = ""
		for _, p := range reader.ActiveProviders() {
			r.provider = p.Name()
			break
		}
	}
	return r, nil
}

// Commands returns the argvs a run would execute for state k.
func (r *Remediator) Commands(k *policy.KernelState) ([][]string, error) {
	if len(r.command) > 0 {
		return [][]string{r.command}, nil
	}
	switch r.provider {
	case ProviderKernelCare:
		return [][]string{{"kcarectl", "--update"}}, nil
	case ProviderCanonical:
		return [][]string{{"canonical-livepatch", "refresh"}}, nil
	case ProviderKsplice:
		return [][]string{{"uptrack-upgrade", "-y"}}, nil
	case ProviderKpatch:
		var cmds [][]string
		for _, m := range r.modules {
			if !patchInForce(k, m) {
				cmds = append(cmds, []string{"kpatch", "load", m})
			}
		}
		if len(cmds) == 0 {
			return nil, fmt.Errorf("%w: provider kpatch loads the modules in spec.kernel.requiredPatches, and none is missing; set spec.remediation.command", ErrNoRemediation)
		}
		return cmds, nil
	}
	p := r.provider
	if p == "" {
		p = "sysfs (no provider tool installed)"
	}
	return nil, fmt.Errorf("%w: provider %s has no update command; set spec.remediation.command", ErrNoRemediation, p)
}

func patchInForce(k *policy.KernelState, name string) bool {
	if k == nil {
		return false
	}
	for _, p := range k.Patches {
		if p.Name == name && p.InForce() {
			return true
		}
	}
	return false
}

// Running reports whether a run is in flight.
func (r *Remediator) Running() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.inflight != nil
}

// Last returns the outcome of the last finished run, if any.
func (r *Remediator) Last() (Outcome, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last == nil {
		return Outcome{}, false
	}
	return *r.last, true
}

// Ensure makes sure an update is running or done when the kernel is behind,
// and waits up to wait for it: "patched" (admit), "running" (still going
// after wait), "failed" (with the reason), or "notNeeded". The run itself is
// not bound to ctx: it goes on, bounded by its own timeout, when the caller
// gives up, and later callers share it.
func (r *Remediator) Ensure(ctx context.Context, wait time.Duration) Outcome {
	run, o := r.begin()
	if run == nil {
		return o
	}
	var timer <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timer = t.C
	}
	select {
	case <-run.done:
		return run.outcome
	default:
	}
	if wait <= 0 {
		return Outcome{Status: StatusRunning, Reason: "kernel live patch in progress"}
	}
	select {
	case <-run.done:
		return run.outcome
	case <-timer:
	case <-ctx.Done():
	}
	return Outcome{Status: StatusRunning, Reason: "kernel live patch in progress"}
}

// begin joins the run in flight or starts one. Without a run to wait for it
// returns nil and the outcome: not needed, rate limited, no command.
func (r *Remediator) begin() (*remediationRun, Outcome) {
	snap := r.state.Snapshot()
	r.mu.Lock()
	defer r.mu.Unlock()
	if run := r.inflight; run != nil {
		return run, Outcome{}
	}
	if snap != nil && !r.behind(snap) {
		return nil, Outcome{Status: StatusNotNeeded}
	}
	if r.last != nil && r.last.Status == StatusFailed && r.backoff > 0 {
		if next := r.failedAt.Add(r.backoff); r.now().Before(next) {
			o := *r.last
			o.Reason = fmt.Sprintf("rate limited: the last update failed at %s (%s); next attempt after %s",
				o.FinishedAt.UTC().Format(time.RFC3339), o.Reason, next.UTC().Format(time.RFC3339))
			return nil, o
		}
	}
	cmds, err := r.Commands(snap)
	if err != nil {
		return nil, Outcome{Status: StatusFailed, Reason: err.Error()}
	}
	run := &remediationRun{done: make(chan struct{}), cmds: cmds, startedAt: r.now()}
	r.inflight = run
	go r.execute(run, cmds)
	return run, Outcome{}
}

func (r *Remediator) emit(e Event) {
	if r.progress != nil {
		r.progress(e)
	}
}

func (r *Remediator) execute(run *remediationRun, cmds [][]string) {
	o := Outcome{Commands: cmds, StartedAt: run.startedAt}
	began := time.Now()
	log := r.log.WithField("commands", fmt.Sprint(cmds))
	log.Info("starting live-patch remediation")
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	defer cancel()
	logFile := r.openRunLog(run, log)
	if logFile != nil {
		defer func() {
			if err := logFile.Close(); err != nil {
				log.WithError(err).Warn("closing the remediation output log")
			}
		}()
		o.Log = run.logPath
	}
	var failed error
	for _, argv := range cmds {
		if sig := run.stopped(); sig != "" {
			failed = fmt.Errorf("stopped on %s before %s ran", sig, strings.Join(argv, " "))
			break
		}
		res, err := r.runOne(ctx, run, argv, logFile, log)
		o.Output = trimOutput(res)
		if err == nil && res.ExitCode != 0 {
			err = failure(argv[0], argv[1:], res)
		}
		if sig := run.stopped(); sig != "" && err != nil {
			err = fmt.Errorf("stopped on %s: %w", sig, err)
		}
		if err != nil {
			failed = err
			break
		}
	}
	if failed == nil {
		run.mu.Lock()
		run.waiting = true
		run.mu.Unlock()
	}
	// Refresh straight away, whatever happened: a partial update counts.
	k := r.state.Refresh(context.Background())
	// A live patch that was just loaded is enabled but in transition until
	// every task has switched to it (about a second on a real kernel, which
	// retries once a second): wait for the transition within the run's
	// timeout, not only for the command to return.
	if failed == nil && run.stopped() == "" && r.behind(k) && inTransition(k) && ctx.Err() == nil {
		deadline, _ := ctx.Deadline()
		r.emit(Event{Kind: EventWaiting, Waiting: r.transitionTargets(k), Duration: time.Until(deadline).Round(time.Second)})
		waitStart := time.Now()
		for r.behind(k) && inTransition(k) && ctx.Err() == nil {
			select {
			case <-ctx.Done():
			case <-time.After(transitionPoll):
				k = r.state.Refresh(context.Background())
			}
		}
		r.emit(Event{Kind: EventWaited, Duration: time.Since(waitStart), Waiting: r.transitionTargets(k)})
	}
	o.FinishedAt = r.now()
	switch {
	case failed != nil:
		o.Status, o.Reason = StatusFailed, failed.Error()
	case r.behind(k) && inTransition(k):
		o.Status, o.Reason = StatusFailed, fmt.Sprintf("the update finished but a live patch was still in transition after %v", r.timeout)
	case r.behind(k):
		o.Status, o.Reason = StatusFailed, "the update finished but the kernel is still behind the policy"
	default:
		o.Status = StatusPatched
	}
	log.WithFields(logrus.Fields{"status": o.Status, "reason": o.Reason, "duration_ms": logfields.Ms(o.FinishedAt.Sub(o.StartedAt))}).Info("live-patch remediation finished")
	r.emit(Event{Kind: EventDone, Outcome: &o, Duration: time.Since(began)})

	r.mu.Lock()
	run.outcome = o
	r.last = &o
	if o.Status == StatusFailed {
		r.failedAt = o.FinishedAt
	}
	r.inflight = nil
	r.mu.Unlock()
	// Record the outcome before anyone waiting is answered.
	if r.onDone != nil {
		r.onDone(o)
	}
	close(run.done)
}

// transitionPoll is how often a finished update re-reads the state while a
// live patch is still in transition.
const transitionPoll = 200 * time.Millisecond

// inTransition reports whether any live patch is being applied or removed.
func inTransition(k *policy.KernelState) bool {
	if k == nil {
		return false
	}
	for _, p := range k.Patches {
		if p.Transition {
			return true
		}
	}
	return false
}

func trimOutput(res ToolResult) string {
	s := strings.TrimSpace(string(res.Stdout) + "\n" + string(res.Stderr))
	if len(s) > 4096 {
		s = s[len(s)-4096:]
	}
	return s
}
