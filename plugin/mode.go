package plugin

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/containerd/nri/pkg/api"
	"github.com/sirupsen/logrus"

	"github.com/patchgate/patchgate/policy"
	"github.com/patchgate/patchgate/service"
)

// Mode is how the plugin decides on the runtime it is connected to.
type Mode string

const (
	// ModeValidator decides in ValidateContainerAdjustment, on the container
	// with every plugin's adjustments (NRI >= v0.10: containerd >= 2.2). A
	// validator's refusal fails the create even where other plugin errors
	// fail open, and required_plugins refuses containers while patchgate is
	// not connected.
	ModeValidator Mode = "validator"
	// ModeCreate decides in CreateContainer (NRI v0.8: containerd 1.7, 2.0,
	// 2.1), where the validation event does not exist: an error there still
	// fails the create, but the plugin sees the container before the
	// adjustments of plugins ordered after it and before CDI devices are
	// resolved. patchgate's OCI hook judges the final spec.
	ModeCreate Mode = "CreateContainer"
	// ModeHookOnly is not connected to the runtime's NRI: only an OCI hook
	// (in the runtime's base spec, or injected before) judges containers.
	ModeHookOnly Mode = "hook-only"
)

// createModeUnseen is what CreateContainer mode cannot see; it goes into
// every decision and audit record made in that mode.
var createModeUnseen = []string{
	"adjustments by NRI plugins ordered after patchgate",
	"CDI devices resolved after NRI",
}

// createModeIdx is the index patchgate registers with in CreateContainer
// mode unless one was set explicitly: the last plugin sees the others'
// adjustments, so only what containerd does after NRI is left to the hook.
const createModeIdx = "99"

// validatorSince is the first NRI version with ValidateContainerAdjustment.
var validatorSince = [3]int{0, 10, 0}

// events are the NRI events patchgate handles in each mode.
var (
	createEvents    = eventMask(api.Event_RUN_POD_SANDBOX, api.Event_CREATE_CONTAINER, api.Event_POST_CREATE_CONTAINER)
	validatorEvents = createEvents | eventMask(api.Event_VALIDATE_CONTAINER_ADJUSTMENT)
)

func eventMask(es ...api.Event) api.EventMask {
	var m api.EventMask
	for _, e := range es {
		m |= 1 << (e - 1)
	}
	return m
}

// parseNRIVersion reads "vMAJOR.MINOR.PATCH" with an optional suffix
// ("-rc.1", "+dirty"); ok is false for anything else ("unknown", "").
func parseNRIVersion(v string) (ver [3]int, ok bool) {
	s, found := strings.CutPrefix(v, "v")
	if !found {
		return ver, false
	}
	if i := strings.IndexAny(s, "-+"); i >= 0 {
		s = s[:i]
	}
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return ver, false
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || p == "" || (len(p) > 1 && p[0] == '0') {
			return ver, false
		}
		ver[i] = n
	}
	return ver, true
}

func versionLess(a, b [3]int) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

// modeFor picks the mode for the runtime's NRI version (as the runtime
// reported it, or as NRI's stub inferred it from the runtime's version).
// known is false when the version cannot be read: the validator is tried,
// and a refused registration falls back to CreateContainer (Run).
func modeFor(nriVersion string) (m Mode, known bool) {
	v, ok := parseNRIVersion(nriVersion)
	if !ok {
		return ModeValidator, false
	}
	if versionLess(v, validatorSince) {
		return ModeCreate, true
	}
	return ModeValidator, true
}

// conn is one connection's progress, for the status the plugin publishes.
type conn struct {
	mode       Mode
	known      bool // the runtime's NRI version was known
	configured bool // Configure answered
	synced     bool // Synchronize arrived: the runtime registered the plugin
	reindex    bool // Configure refused to re-register at createModeIdx
	runtime    string
	version    string
	nriVersion string
}

// currentMode is the mode of the current connection (ModeHookOnly when none).
func (p *Plugin) currentMode() Mode {
	if c := p.conn.Load(); c != nil && c.configured {
		return c.mode
	}
	return ModeHookOnly
}

// publishRuntime tells the node service (status file, metric) where the
// connection stands.
func (p *Plugin) publishRuntime(state string, c *conn, reason string) {
	r := service.RuntimeConnection{State: state, Mode: string(ModeHookOnly), Reason: reason, Since: p.now()}
	if c != nil {
		r.Runtime, r.RuntimeVersion, r.NRIVersion = c.runtime, c.version, c.nriVersion
		if state == "connected" {
			r.Mode = string(c.mode)
			r.Plugin = p.regName()
			if c.mode == ModeCreate {
				r.Unseen = createModeUnseen
			}
		}
	}
	r.BaseSpecMissing = p.baseSpecMissing()
	p.lastState.Store(&r)
	if b := p.node.Load(); b != nil {
		b.SetRuntime(r)
	}
	if p.metrics != nil {
		p.metrics.SetRuntimeConnected(r.Mode, state == "connected")
	}
}

// regName is the name the plugin registers as: "NN-name".
func (p *Plugin) regName() string {
	p.idxMu.Lock()
	defer p.idxMu.Unlock()
	return p.idx + "-" + p.name
}

// afterServe judges how a connection ended and says so: a connection the
// runtime closed during registration is a refusal (ERROR: nothing is
// enforced through NRI), one that was registered is a disconnect.
func (p *Plugin) afterServe(c *conn, err error) {
	why := "connection closed"
	if err != nil {
		why = err.Error()
	}
	switch {
	case c == nil || !c.configured:
		p.publishRuntime("connecting", c, why)
	case c.reindex:
		// Not a refusal: Configure asked to re-register at createModeIdx.
		p.publishRuntime("connecting", c, "re-registering as "+p.regName())
	case !c.synced:
		reason := fmt.Sprintf("the runtime (%s %s, NRI %s) closed the connection after Configure, before Synchronize: it refused the plugin; its log says why",
			c.runtime, c.version, c.nriVersion)
		if c.mode == ModeValidator && !c.known {
			// An unknown version that refuses the validation event is an
			// NRI v0.8 runtime: decide in CreateContainer from now on.
			p.noValidator.Store(true)
			reason = fmt.Sprintf("the runtime (%s %s, NRI version %q) refused the plugin after Configure, probably because it does not know the %s event; retrying in %s mode",
				c.runtime, c.version, c.nriVersion, "ValidateContainerAdjustment", ModeCreate)
		}
		p.log.WithFields(logrus.Fields{"runtime": c.runtime, "version": c.version, "nri_version": c.nriVersion, "plugin": p.regName()}).
			Error("the container runtime REFUSED the patchgate plugin: containers on this node are not judged through NRI (only by an OCI hook, if one is in the runtime's base spec): " + reason)
		p.publishRuntime("refused", c, reason)
	default:
		p.publishRuntime("disconnected", c, why)
	}
}

// configureMode picks the mode at Configure and returns the events to
// subscribe to. It returns an error (closing this connection, Run dials
// again at once) when the plugin should register at createModeIdx first.
func (p *Plugin) configureMode(c *conn) (api.EventMask, error) {
	c.mode, c.known = modeFor(c.nriVersion)
	if !c.known && p.noValidator.Load() {
		c.mode = ModeCreate
	}
	fields := logrus.Fields{"runtime": c.runtime, "version": c.version, "nri_version": c.nriVersion, "mode": c.mode, "plugin": p.regName()}
	if c.mode == ModeCreate {
		p.idxMu.Lock()
		move := !p.idxSet && p.idx != createModeIdx
		if move {
			p.idx = createModeIdx
		}
		p.idxMu.Unlock()
		if move {
			c.reindex = true
			p.log.WithFields(fields).Info("the runtime has no NRI validation event: re-registering as " + p.regName() +
				" so that patchgate sees the other plugins' adjustments in CreateContainer")
			return 0, fmt.Errorf("patchgate: re-registering as %s for %s mode", p.regName(), ModeCreate)
		}
		p.log.WithFields(fields).Warn("the runtime has no NRI validation event (NRI < v0.10): deciding in CreateContainer; " +
			"not seen there: " + strings.Join(createModeUnseen, ", ") + " (patchgate's OCI hook judges the final spec)")
		return createEvents, nil
	}
	p.log.WithFields(fields).Info("deciding in ValidateContainerAdjustment")
	return validatorEvents, nil
}

// seccompSince is the first containerd release that copies the spec's
// seccomp filter into NRI's container (LinuxContainer.seccomp_policy):
// before it, containerd 2.2 sends only the profile type the CRI client asked
// for and NRI v0.8 (1.7 to 2.1) has no such field.
var seccompSince = [3]int{2, 3, 0}

// sendsSeccomp reports whether the runtime (as named and versioned at
// Configure) sends the seccomp filter in NRI's container. Unknown runtimes
// and versions do not: the hook judges seccomp on the final spec there.
func sendsSeccomp(runtime, version string) bool {
	if runtime != "containerd" {
		return false
	}
	v, ok := parseNRIVersion(version)
	return ok && !versionLess(v, seccompSince)
}

// containerWorkload is ContainerWorkload for the connected runtime: where
// the runtime does not send the seccomp filter, a container without one in
// NRI's view is not unconfined but unseen, and the hook judges it.
func (p *Plugin) containerWorkload(pod *api.PodSandbox, ctr *api.Container) (*policy.Workload, error) {
	w, err := ContainerWorkload(pod, ctr, p.runtimeIdentitySource())
	if err != nil {
		return nil, err
	}
	if ctr.GetLinux().GetSeccompPolicy() == nil && !p.seccompVisible.Load() {
		w.Seen &^= policy.FieldSeccomp
	}
	return w, nil
}

// noteBaseSpec records whether a container of pod's runtime handler arrived
// with patchgate's hook already in its spec (the runtime's base spec). A
// handler without it is a hole while patchgate is down: on a runtime
// without the validator (no required_plugins) its containers then start
// unjudged. It is said once per handler, and kept in the status.
func (p *Plugin) noteBaseSpec(pod *api.PodSandbox, has bool) {
	handler := pod.GetRuntimeHandler()
	if handler == "" {
		handler = "(default)"
	}
	p.baseMu.Lock()
	if p.baseSpec == nil {
		p.baseSpec = map[string]bool{}
	}
	had, known := p.baseSpec[handler]
	if known && (had || !has) {
		p.baseMu.Unlock()
		return
	}
	p.baseSpec[handler] = has
	p.baseMu.Unlock()
	if has {
		p.republish()
		return
	}
	log := p.log.WithFields(logrus.Fields{"runtime_handler": handler})
	if p.currentMode() == ModeCreate {
		log.Error("runtime handler " + handler + " has no patchgate hook in its base_runtime_spec: its containers start UNJUDGED whenever patchgate is down " +
			"(no NRI validator on this runtime); add base_runtime_spec to every runtime handler (docs/containerd.md)")
	} else {
		log.Warn("runtime handler " + handler + " has no patchgate hook in its base_runtime_spec: while patchgate is down only the default validator's required_plugins refuses its containers (docs/containerd.md)")
	}
	p.republish()
}

// baseSpecMissing lists the runtime handlers seen without patchgate's hook
// in their base spec, sorted.
func (p *Plugin) baseSpecMissing() []string {
	p.baseMu.Lock()
	defer p.baseMu.Unlock()
	var out []string
	for h, ok := range p.baseSpec {
		if !ok {
			out = append(out, h)
		}
	}
	slices.Sort(out)
	return out
}

// republish publishes the last state again with the current base spec list.
func (p *Plugin) republish() {
	last := p.lastState.Load()
	if last == nil {
		return
	}
	r := *last
	r.BaseSpecMissing = p.baseSpecMissing()
	p.lastState.Store(&r)
	if b := p.node.Load(); b != nil {
		b.SetRuntime(r)
	}
}
