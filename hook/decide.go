package hook

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/patchgate/patchgate/audit"
	"github.com/patchgate/patchgate/internal/hostpath"
	"github.com/patchgate/patchgate/policy"
	"github.com/patchgate/patchgate/service/decision"
)

// Exit codes of `patchgate hook`: a createRuntime hook that exits non-zero
// makes the runtime refuse the container.
const (
	ExitAdmit = 0
	ExitBlock = 1
)

// How a decision was reached.
const (
	ByService = "service" // the node service answered
	ByLocal   = "local"   // the service was unreachable; decided here
	ByOnError = "onError" // could not decide; spec.hook.onError applied
)

// Config is what `patchgate hook` is given.
type Config struct {
	// PolicyPath and NodeName are used when deciding locally.
	PolicyPath string
	NodeName   string
	// HostRoot is where the host's /proc is found for namespace checks
	// (default "/").
	HostRoot string
	// Service asks the node service; nil decides locally only.
	Service *decision.Client
	// Kernel reads the kernel state for a local decision under pol: the
	// state file the service keeps fresh, else sysfs. It must honour ctx's
	// deadline.
	Kernel func(ctx context.Context, pol *policy.Policy) (*policy.KernelState, error)
	// Audit delivers the audit record of a local decision (socket or
	// spool) with the given UUID. nil: no audit.
	Audit func(ctx context.Context, id string, pol *policy.Policy, w *policy.Workload, d *policy.Decision, k *policy.KernelState) error
	// NewID returns a fresh audit record UUID.
	NewID func() string
	// IdentityFrom is the runtime whose identity annotations are trusted
	// (IdentityFromNone, IdentityFromContainerd, IdentityFromCRIO; "" is
	// none). See BuildWorkload.
	IdentityFrom string
	// Timeout is the whole hook's budget (default 2s).
	Timeout time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Outcome is what the hook does: its exit code and its one stderr line.
type Outcome struct {
	Exit int
	// Message is the single stderr line ("" when a container is admitted
	// with nothing to say).
	Message  string
	By       string
	Decision *policy.Decision
	Workload *policy.Workload
	// Err is why the hook could not decide (By == ByOnError).
	Err error
}

// Run reads the state from stdin, loads the spec, and decides.
func Run(ctx context.Context, cfg Config, stdin io.Reader) Outcome {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.HostRoot == "" {
		cfg.HostRoot = "/"
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()

	st, err := ReadState(stdin)
	if err != nil {
		return cannotDecide(cfg, nil, err)
	}
	w, err := BuildWorkload(st, cfg.HostRoot, cfg.IdentityFrom)
	if err != nil {
		return cannotDecide(cfg, nil, err)
	}
	id := ""
	if cfg.NewID != nil {
		id = cfg.NewID()
	}

	if cfg.Service != nil {
		// The service knows what the NRI validator judged of this container
		// (on the container as it will run, every plugin's adjustments
		// applied) and judges the rest; of a container it does not know,
		// it judges everything.
		resp, err := cfg.Service.Decide(ctx, &decision.DecideRequest{ID: id, Workload: w, ContainerID: st.ID})
		switch {
		case err == nil:
			return ServiceOutcome(resp, w)
		case !errors.Is(err, decision.ErrUnreachable) && ctx.Err() != nil:
			return cannotDecide(cfg, w, fmt.Errorf("node service did not answer in time: %w", err))
		}
		// Unreachable, or the answer was lost: decide here. The audit
		// record keeps the same UUID, so it is written once.
	}

	pol, err := policy.Load(cfg.PolicyPath, cfg.NodeName)
	if err != nil {
		return onError("", w, fmt.Errorf("no policy: %w", err), "")
	}
	var k *policy.KernelState
	if cfg.Kernel != nil {
		k, err = cfg.Kernel(ctx, pol)
		if err != nil || k == nil {
			reason := "no kernel state"
			if err != nil {
				reason = err.Error()
			}
			k = &policy.KernelState{Unknown: []policy.UnknownPart{{Part: "all", Reason: reason}}}
		}
	}
	d := policy.Evaluate(pol, w, k, cfg.Now())
	// Without the service nobody can say what NRI judged: the hook judged
	// everything, and what it could not see follows spec.hook.onError.
	policy.MarkUnjudged(&d, 0, pol.Spec.Hook.OnError)
	if cfg.Audit != nil && audit.ShouldRecord(&d, pol.Spec.Audit.RecordAllowed) {
		if err := cfg.Audit(ctx, id, pol, w, &d, k); err != nil && pol.Spec.Audit.FailClosed && d.Verdict != policy.Deny {
			audit.FailClosed(&d, fmt.Errorf("the audit record could not be delivered: %w", err))
		}
	}
	return outcome(ByLocal, &d, w, pol.Name())
}

// ServiceOutcome is what the hook does with the node service's answer
// about workload w. The node service uses it too, to answer the thin
// hook's bundle request with the same exit code and line.
func ServiceOutcome(resp *decision.DecideResponse, w *policy.Workload) Outcome {
	if resp.Error != "" {
		// The service could not decide this one; its policy's onError
		// applies.
		return onError(resp.OnError, w, fmt.Errorf("node service: %s", resp.Error), "")
	}
	// The hook is the last judge: a rule still deferred was judged by
	// nobody. The service marks it already; this keeps the hook safe
	// whatever the service answered.
	var judged policy.Field
	if resp.AfterNRI {
		judged = resp.NRIJudged
	}
	policy.MarkUnjudged(resp.Decision, judged, resp.OnError)
	return outcome(ByService, resp.Decision, w, resp.Decision.Policy.Name)
}

// BundleJudge is what the node service needs of this package to answer the
// thin hook (service.WithBundleJudge): the same workload building and the
// same answer as `patchgate hook`.
type BundleJudge struct{}

// BuildWorkload is BuildWorkload after checking the hook's --host-root and
// --identity-from as `patchgate hook` does.
func (BundleJudge) BuildWorkload(st *State, hostRoot, identityFrom string) (*policy.Workload, error) {
	switch identityFrom {
	case IdentityFromNone, IdentityFromContainerd, IdentityFromCRIO:
	default:
		return nil, fmt.Errorf("--identity-from %q: want none, containerd or crio", identityFrom)
	}
	if !filepath.IsAbs(hostRoot) {
		return nil, fmt.Errorf("--host-root %q must be an absolute path", hostRoot)
	}
	return BuildWorkload(st, hostRoot, identityFrom)
}

// Outcome is ServiceOutcome's exit code and line.
func (BundleJudge) Outcome(resp *decision.DecideResponse, w *policy.Workload) (int, string) {
	o := ServiceOutcome(resp, w)
	return o.Exit, o.Message
}

// Values of `patchgate hook --identity-from`.
const (
	IdentityFromNone       = "none"
	IdentityFromContainerd = "containerd"
	IdentityFromCRIO       = "crio"
)

// Vouches reports whether --identity-from identityFrom trusts the
// identity that IdentityFrom read for runtime r: only the named runtime's,
// read from the keys that runtime writes after the pod's own.
func Vouches(identityFrom string, r Runtime) bool {
	return (identityFrom == IdentityFromContainerd && r == RuntimeContainerd) ||
		(identityFrom == IdentityFromCRIO && r == RuntimeCRIO)
}

// BuildWorkload loads and judges-ready the container of state st. The pod
// and container identity (namespace, name, image: what exemptions match)
// comes from the spec's annotations only when identityFrom names the
// runtime that wrote them and the annotations are that runtime's: any
// other runtime (podman, runc) lets whoever starts the container set them.
// Otherwise the workload has only the container id.
func BuildWorkload(st *State, hostRoot, identityFrom string) (*policy.Workload, error) {
	// The hook's own view: runc (or crun) runs it in its own mount
	// namespace, where the bundle and the mount sources are what the
	// runtime has just opened; --host-root is only where the kernel's /proc
	// and /sys are read.
	return buildWorkload(st, hostRoot, identityFrom, view{
		fsRoot: "/",
		// The hook's own mount table, read at most once per run, and only
		// when a bind source is a mount root or lies under a pod's kubelet
		// directory.
		mounts: hostpath.NewHostMounts("/", "/proc/self/mountinfo", false, hostpath.MountRootStatx),
	})
}

// BuildWorkloadOnHost is BuildWorkload for a container that runs already,
// judged from outside it (`patchgate eval --running`): st.Bundle is the
// bundle path as the runtime wrote it, on the host whose / is at hostRoot.
// The bundle, its config.json and the sandbox's are read under hostRoot
// with the same checks as the hook's; mount sources are resolved under
// hostRoot and traced with the mount table of the host's pid 1 (the
// runtime's mount namespace), as `patchgate eval --host-root` does.
// The workload keeps st.Bundle (the path runc joined relative mount
// sources to).
func BuildWorkloadOnHost(st *State, hostRoot, identityFrom string) (*policy.Workload, error) {
	if !filepath.IsAbs(hostRoot) {
		return nil, fmt.Errorf("host root %q must be an absolute path", hostRoot)
	}
	return buildWorkload(st, hostRoot, identityFrom, view{
		fsRoot: filepath.Clean(hostRoot),
		mounts: hostpath.NewHostMounts(hostRoot, filepath.Join(hostRoot, "proc/1/mountinfo"), true, nil),
	})
}

// view is where a workload's files are read from: fsRoot is the root the
// bundle path and mount sources are seen under, mounts the mount table
// they are traced in.
type view struct {
	fsRoot string
	mounts *hostpath.HostMounts
}

// under is p (absolute) as seen under the view's root.
func (v view) under(p string) string {
	if v.fsRoot == "/" {
		return p
	}
	return v.fsRoot + p
}

func buildWorkload(st *State, hostRoot, identityFrom string, v view) (*policy.Workload, error) {
	info, err := ClassifyBundle(st.Bundle, st.ID)
	if err != nil {
		return nil, err
	}
	spec, _, err := ReadSpec(v.under(st.Bundle))
	if err != nil {
		return nil, err
	}
	ident := IdentityFrom(st.ID, spec.Annotations)
	// The bundle's place must be that runtime's too, and for containerd
	// CRI's namespace: a task in another (moby, default) was made by `ctr`
	// or another client of containerd, with annotations of its choosing.
	trusted := Vouches(identityFrom, ident.Runtime) &&
		((ident.Runtime == RuntimeContainerd && info.Layout == LayoutContainerd && info.Namespace == NamespaceCRI) ||
			(ident.Runtime == RuntimeCRIO && info.Layout == LayoutContainersStorage))
	if !trusted {
		ident = Identity{Container: policy.ContainerIdentity{ID: st.ID}}
	}
	// On an error the strict side: an empty profile counts as unconfined.
	hostAppArmor, _ := policy.HostAppArmorEnabled(hostRoot)
	var live *policy.LiveIDMappings
	if hasUserNamespace(spec) && st.Pid > 0 {
		// The mappings in force, from the kernel: a namespace joined by
		// path (containerd's pinned pod user namespace) has mappings no
		// spec states. Unreadable: the spec's, or none (judged as root).
		live = liveIDMappings(hostRoot, st.Pid)
	}
	w, err := policy.FromSpec(spec, sandboxSpec(info, st, spec, v), policy.FromSpecOptions{
		Source:       "hook",
		HostAppArmor: hostAppArmor,
		// The named profile's mode, from the kernel's list of loaded
		// profiles (read once, only when a profile is named).
		AppArmorMode:   policy.AppArmorModeResolver(hostRoot),
		LiveIDMappings: live,
		Pod:            ident.Pod,
		Container:      ident.Container,
		HostNamespace:  processNamespaceResolver(hostRoot, st.Pid),
		Bundle:         st.Bundle,
		// Mount sources are resolved in the view's root: for the hook its
		// own root, since runc (or crun) runs the hook in its own mount
		// namespace, where it has just resolved the same sources to mount
		// them. (--host-root is where the kernel's /proc and /sys are read,
		// which tests and a DaemonSet point elsewhere.)
		ResolvePath: hostpath.Resolver(v.fsRoot),
		// A source that is a mount point in that namespace (kubelet's
		// subPath binds under the pod's own directory) is judged by the
		// host paths that show it, from the view's mount table (the hook's
		// own, read at most once per run, and only when statx says a
		// source is a mount root).
		MountOrigins: v.mounts.Origins,
		// A source under the pod's own kubelet directory is judged by the
		// mount that backs it (an inline iSCSI/NFS/RBD volume is a
		// filesystem the host kernel parses), from the same table.
		PodMountBacking: policy.PodMountBackingFunc(v.mounts),
		// The identity is ident's alone (FromSpec reads none from the
		// annotations); the sandbox spec, read for containerd only, holds
		// the pod annotations its pod_annotations list passes.
		PodAnnotationsFromSandbox: trusted,
		PodSysctlsInSandbox:       trusted && ident.Runtime == RuntimeContainerd && !ident.Sandbox,
	})
	if err != nil {
		return nil, err
	}
	if w.Container.ID == "" {
		w.Container.ID = st.ID
	}
	return w, nil
}

// cannotDecide applies spec.hook.onError when the input could not be read.
// The policy is loaded only for its onError key; without one, deny.
func cannotDecide(cfg Config, w *policy.Workload, why error) Outcome {
	mode, name := "", ""
	if pol, err := policy.Load(cfg.PolicyPath, cfg.NodeName); err == nil {
		mode, name = pol.Spec.Hook.OnError, pol.Name()
	}
	return onError(mode, w, why, name)
}

func onError(mode string, w *policy.Workload, why error, policyName string) Outcome {
	o := Outcome{By: ByOnError, Err: why, Workload: w}
	pn := ""
	if policyName != "" {
		pn = fmt.Sprintf(" of policy %q", policyName)
	}
	if mode == policy.OnErrorAllow {
		o.Exit = ExitAdmit
		o.Message = oneLine(fmt.Sprintf("patchgate: warning: admitted %s without a decision because spec.hook.onError%s is allow: %v", who(w), pn, why))
		return o
	}
	o.Exit = ExitBlock
	if mode == "" {
		pn = " (default deny; no policy could be read)"
	} else {
		pn += " is deny"
	}
	o.Message = oneLine(fmt.Sprintf("patchgate: blocked %s: cannot decide: %v; spec.hook.onError%s", who(w), why, pn))
	return o
}

// outcome turns a decision into the exit code and the line for people.
func outcome(by string, d *policy.Decision, w *policy.Workload, policyName string) Outcome {
	o := Outcome{By: by, Decision: d, Workload: w}
	if policyName == "" {
		policyName = d.Policy.Name
	}
	switch d.Verdict {
	case policy.Allow:
		o.Exit = ExitAdmit
	case policy.Warn:
		o.Exit = ExitAdmit
		o.Message = oneLine(fmt.Sprintf("patchgate: warning: %s admitted with warnings by policy %q: %s",
			who(w), policyName, violations(d, w, policy.ActionWarn)))
	default:
		o.Exit = ExitBlock
		o.Message = oneLine(fmt.Sprintf("patchgate: blocked %s by policy %q: %s",
			who(w), policyName, violations(d, w, policy.ActionEnforce)))
	}
	return o
}

// maxMessage bounds the stderr line: runtimes put it into one error
// string. policy.Explain bounds each detail.
const maxMessage = 4000

// violations lists the violations with the given action as
// "rules a, b: " and policy.Explain's line: each finding with its OCI
// field and what to change where the container came from (pod, podman),
// what privileged implies folded into it, and the kernel's part when
// whenKernelBehind made a rule stricter.
func violations(d *policy.Decision, w *policy.Workload, action policy.Action) string {
	var ids []string
	for _, v := range d.Violations {
		if v.Action == action {
			ids = append(ids, v.Rule)
		}
	}
	if len(ids) == 0 {
		return "no violation listed"
	}
	return "rules " + strings.Join(ids, ", ") + ": " + policy.Explain(d, w, action)
}

func who(w *policy.Workload) string {
	if w == nil {
		return "the container"
	}
	name := w.Container.Name
	if name == "" {
		name = w.Container.ID
		if len(name) == 64 && strings.Trim(name, "0123456789abcdef") == "" {
			name = name[:12] // the short form podman and docker print
		}
	}
	s := fmt.Sprintf("container %q", name)
	if w.Pod.Name != "" {
		s += fmt.Sprintf(" (pod %s/%s)", w.Pod.Namespace, w.Pod.Name)
	}
	return s
}

// oneLine keeps the message on one line (runtimes show stderr verbatim)
// and at most maxMessage bytes.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(strings.ReplaceAll(s, "\x00", "")), " ")
	if len(s) > maxMessage {
		s = strings.ToValidUTF8(s[:maxMessage], "") + "…"
	}
	return s
}

// Print writes the outcome's line to w.
func (o Outcome) Print(w io.Writer) {
	if o.Message != "" {
		fmt.Fprintln(w, o.Message)
	}
}

// annotationSandboxID is containerd's CRI annotation naming the pod sandbox
// of a container.
const annotationSandboxID = "io.kubernetes.cri.sandbox-id"

// sandboxSpec is the pod sandbox's spec of a containerd CRI container: the
// sibling bundle named by the io.kubernetes.cri.sandbox-id annotation
// (<state>/io.containerd.runtime.v2.task/<namespace>/<sandbox-id>), read
// with the same care as the container's. Only there are the pod's sysctls
// and host namespaces visible. nil when there is none or it cannot be read:
// the rules that need it then stay deferred or judge the container alone.
func sandboxSpec(info BundleInfo, st *State, spec *specs.Spec, v view) *specs.Spec {
	if info.Layout != LayoutContainerd {
		return nil
	}
	id := spec.Annotations[annotationSandboxID]
	if id == "" || id == st.ID || strings.ContainsAny(id, "/.\x00") {
		return nil
	}
	sb, _, err := ReadSpec(v.under(filepath.Join(filepath.Dir(st.Bundle), id)))
	if err != nil || sb.Linux == nil {
		return nil
	}
	return sb
}

func hasUserNamespace(spec *specs.Spec) bool {
	if spec.Linux == nil {
		return false
	}
	for _, ns := range spec.Linux.Namespaces {
		if ns.Type == specs.UserNamespace {
			return true
		}
	}
	return false
}

// liveIDMappings reads the uid_map and gid_map of the container's process
// under hostRoot; nil when either cannot be read or parsed.
func liveIDMappings(hostRoot string, pid int) *policy.LiveIDMappings {
	dir := filepath.Join(hostRoot, "proc", strconv.Itoa(pid))
	var out policy.LiveIDMappings
	for _, f := range []struct {
		name string
		dst  *[]policy.IDMapping
	}{{"uid_map", &out.UID}, {"gid_map", &out.GID}} {
		data, err := readSmall(filepath.Join(dir, f.name), 64<<10)
		if err != nil {
			return nil
		}
		if *f.dst, err = policy.ParseIDMap(data); err != nil {
			return nil
		}
	}
	return &out
}

// readSmall reads at most limit bytes of a /proc file; a longer one is an
// error.
func readSmall(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: longer than %d bytes", path, limit)
	}
	return data, nil
}

// processNamespaceResolver judges a namespace the spec joins by path by the
// namespace the container's process is in now (/proc/<pid>/ns/<type>, under
// hostRoot): at createRuntime runc has joined them already, and the path in
// the spec may since point elsewhere (a symlink swapped after runc opened
// it). When the process's namespace cannot be read (no pid, a fixture tree)
// the spec's path is judged, as before.
func processNamespaceResolver(hostRoot string, pid int) func(typ, path string) (bool, error) {
	byPath := policy.HostNamespaceResolver(hostRoot)
	if pid <= 0 {
		return byPath
	}
	proc := "/proc/" + strconv.Itoa(pid) + "/ns/"
	return func(typ, path string) (bool, error) {
		own := proc + policy.ProcNamespaceName(typ)
		if _, err := os.Stat(filepath.Join(hostRoot, own)); err == nil {
			return byPath(typ, own)
		}
		return byPath(typ, path)
	}
}
