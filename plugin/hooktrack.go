package plugin

import (
	"sync"
	"time"

	"github.com/patchgate/patchgate/policy"
	"github.com/patchgate/patchgate/service"
)

// Hook injection states (service.HookInjection.Status).
const (
	hookUnknown  = "unknown"
	hookInjected = "injected"
	hookRefused  = "refused"
	hookDisabled = "disabled"
)

// hookTracker notices when the runtime refuses the OCI hook patchgate
// injects. containerd's default validator with reject_oci_hook_adjustment
// fails every container whose adjustment adds a hook, after patchgate's own
// validator has admitted it; patchgate never sees that error. What it does
// see: containers it admitted with its hook never reach PostCreateContainer.
// After refusedAfter such containers in a row, and none created, the
// injection counts as refused and patchgate says so in its log, in metrics
// and in the status file that `patchgate check` reads.
type hookTracker struct {
	p *Plugin

	mu       sync.Mutex
	pending  map[string]time.Time // admitted with the hook, not yet created
	lost     int                  // admitted with the hook, never created, since the last success
	state    string
	lastLoud time.Time
	grace    time.Duration
}

const (
	// defaultHookGrace is how long after admission a container must show
	// up in PostCreateContainer: the runtime's request timeout plus margin.
	defaultHookGrace = 5 * time.Second
	refusedAfter     = 3
)

func newHookTracker(p *Plugin) *hookTracker {
	return &hookTracker{p: p, pending: map[string]time.Time{}, state: hookUnknown, grace: defaultHookGrace}
}

// reset forgets what was learned: called on every new connection, since the
// runtime's configuration may have changed.
func (t *hookTracker) reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	clear(t.pending)
	t.lost = 0
	if t.state == hookRefused {
		t.state = hookUnknown
	}
}

// inject reports whether to inject the hook into the next container: always,
// unless the runtime refuses it and the policy's hook.onError says allow (run
// with the NRI checks only, loudly). With onError deny patchgate keeps
// injecting, and the runtime keeps refusing containers: the safe side.
func (t *hookTracker) inject() bool {
	t.mu.Lock()
	refused := t.state == hookRefused
	t.mu.Unlock()
	if !refused {
		return true
	}
	n, err := t.p.nodeOrErr()
	if err != nil {
		return true
	}
	return n.Policy().Spec.Hook.OnError != policy.OnErrorAllow
}

func (t *hookTracker) admitted(id string) {
	if id == "" {
		return
	}
	t.mu.Lock()
	t.pending[id] = t.p.now()
	t.mu.Unlock()
	t.sweep()
}

func (t *hookTracker) created(id string) {
	t.mu.Lock()
	delete(t.pending, id)
	t.lost = 0
	changed := t.state != hookInjected
	t.state = hookInjected
	t.mu.Unlock()
	if changed {
		t.p.log.Info("the runtime accepts patchgate's OCI hook: capabilities, privileged, noNewPrivileges, AppArmor and masked paths are judged by the hook")
		t.publish(service.HookInjection{Status: hookInjected})
	}
}

// sweep counts the containers that never showed up and decides.
func (t *hookTracker) sweep() {
	now := t.p.now()
	t.mu.Lock()
	for id, at := range t.pending {
		if now.Sub(at) > t.grace {
			delete(t.pending, id)
			t.lost++
		}
	}
	refusedNow := t.lost >= refusedAfter && t.state != hookInjected
	loud := refusedNow && (t.state != hookRefused || now.Sub(t.lastLoud) > 30*time.Second)
	if refusedNow {
		t.state = hookRefused
	}
	if loud {
		t.lastLoud = now
	}
	lost := t.lost
	t.mu.Unlock()
	if !loud {
		return
	}
	reason := "containers admitted by patchgate with its OCI hook are not created: the runtime refuses the hook " +
		"(containerd: [plugins.\"io.containerd.nri.v1.nri\".default_validator] reject_oci_hook_adjustment = true). " +
		"capabilities, privileged, noNewPrivileges, AppArmor and masked paths cannot be judged"
	// Status file and metric first: whoever reacts to the log line finds them already updated.
	t.publish(service.HookInjection{Status: hookRefused, Reason: reason})
	t.p.log.WithFields(map[string]any{"lost_containers": lost}).Error("HOOK INJECTION REFUSED: " + reason)
}

func (t *hookTracker) publish(h service.HookInjection) {
	if t.p.metrics != nil {
		t.p.metrics.SetHookInjectionRefused(h.Status == hookRefused)
	}
	if n, err := t.p.nodeOrErr(); err == nil {
		n.SetHookInjection(h)
	}
}
