// Package plugin is patchgate's NRI plugin: it converts what the runtime sends
// (api.PodSandbox, api.Container and other plugins' adjustments) into
// policy.Workload, asks the policy engine, and acts on the decision.
//
// What NRI shows, and what it does not (checked on containerd 2.4.2, see
// ../../shared/fixtures/nri and DESIGN.md):
//   - user: uid/gid (containerd >= 2.3). Root shows only {"additionalGids":[0]}
//     because protojson leaves zero values out.
//   - namespaces: the container's list points net/ipc/uts (and a shared pid)
//     at the pause process, even for host-namespace pods; only the pod
//     sandbox's list shows which namespaces are missing (shared with the host).
//   - mounts, devices, the device cgroup, the seccomp filter (seccompPolicy is
//     the spec's linux.seccomp), the container's own sysctls.
//   - NOT capabilities, privileged, noNewPrivileges, AppArmor, masked or
//     readonly paths, procMount, and not the pod's sysctls (LinuxPodSandbox has
//     no sysctl field in NRI v0.12.5). Those rules are deferred to the OCI hook
//     that the plugin injects.
package plugin

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/containerd/nri/pkg/api"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/patchgate/patchgate/hook"
	"github.com/patchgate/patchgate/policy"
)

// ErrInvalid is returned when the runtime sent something patchgate cannot
// judge (no container, no pod). The caller must deny, never allow.
var ErrInvalid = errors.New("invalid NRI input")

// CRI annotation keys containerd sets on pods, read only when the runtime
// is containerd (the container's keys are read by hook.IdentityFrom).
const (
	annSandboxNamespace = "io.kubernetes.cri.sandbox-namespace"
	annSandboxName      = "io.kubernetes.cri.sandbox-name"
	annSandboxUID       = "io.kubernetes.cri.sandbox-uid"
	annSandboxImageName = "io.kubernetes.cri.podsandbox.image-name"
)

// podFields is what the pod-level view (RunPodSandbox) can see.
const podFields = policy.FieldHostNamespaces

// containerFields is what a container's NRI view can always see. FieldUser
// is added when the runtime sends the user and no user namespace hides the
// mapping; FieldHostNamespaces when the pod's namespaces are known.
const containerFields = policy.FieldMounts | policy.FieldDevices | policy.FieldSeccomp

// judgedNamespaces are the namespace types whose absence from the pod sandbox
// means the pod shares them with the host. NRI/OCI names: "network", not "net".
var judgedNamespaces = []string{"pid", "ipc", "uts", "network"}

// PodWorkload converts a pod sandbox for the pod-level checks made in
// RunPodSandbox: host namespaces. Everything else is judged per container.
// identityFrom is the connected runtime as the hook's --identity-from
// (hook.IdentityFromContainerd, hook.IdentityFromCRIO or
// hook.IdentityFromNone): only that runtime's own keys are read.
func PodWorkload(pod *api.PodSandbox, identityFrom string) (*policy.Workload, error) {
	if pod == nil {
		return nil, fmt.Errorf("%w: no pod sandbox", ErrInvalid)
	}
	w := &policy.Workload{
		Source: "nri",
		Pod:    podIdentity(pod, identityFrom),
		Container: policy.ContainerIdentity{
			ID:   pod.GetId(),
			Name: "POD",
		},
	}
	if identityFrom == hook.IdentityFromContainerd {
		// containerd writes the sandbox image into the sandbox's
		// annotations itself. CRI-O's NRI pod annotations are the pod's
		// own, which its author may fill with this key (CRI-O never writes
		// it), and NRI sends no image for a pod: there the pod has no
		// image, and an image-scoped exemption does not match it.
		w.Container.Image = pod.GetAnnotations()[annSandboxImageName]
	}
	if host, ok := podHostNamespaces(pod); ok {
		w.Seen |= podFields
		w.HostNamespaces = host
	}
	return w, nil
}

// ContainerWorkload converts a container, as given (pristine, or with the
// adjustments already applied by ApplyAdjustment), and its pod. identityFrom
// is the connected runtime, as for PodWorkload.
func ContainerWorkload(pod *api.PodSandbox, ctr *api.Container, identityFrom string) (*policy.Workload, error) {
	if ctr == nil {
		return nil, fmt.Errorf("%w: no container", ErrInvalid)
	}
	if pod == nil {
		return nil, fmt.Errorf("%w: no pod sandbox for container %q", ErrInvalid, ctr.GetName())
	}
	w := &policy.Workload{
		Source:      "nri",
		Seen:        containerFields,
		Pod:         podIdentity(pod, identityFrom),
		Container:   containerIdentity(ctr, identityFrom),
		Annotations: ctr.GetAnnotations(),
	}

	lin := ctr.GetLinux()
	userNS := false
	for _, ns := range lin.GetNamespaces() {
		if ns.GetType() == "user" {
			userNS = true
		}
	}
	if u := ctr.GetUser(); u != nil {
		w.User = policy.User{UID: u.GetUid(), GID: u.GetGid(), UserNamespace: userNS}
		// NRI shows that a user namespace exists but not its ID mappings:
		// uid 0 may or may not be root on the host. Leave it to the hook,
		// which reads linux.uidMappings from the full spec.
		if !userNS {
			w.Seen |= policy.FieldUser
		}
	}

	if host, ok := podHostNamespaces(pod); ok {
		w.Seen |= policy.FieldHostNamespaces
		w.HostNamespaces = mergeSorted(host, containerHostNamespaces(lin.GetNamespaces()))
		for _, ns := range lin.GetNamespaces() {
			if ns.GetType() == "mount" && ns.GetPath() != "" {
				w.MountNamespacePath = ns.GetPath()
			}
		}
	}

	if n := len(ctr.GetMounts()); n > 0 {
		w.Mounts = make([]policy.Mount, 0, n)
	}
	for _, m := range ctr.GetMounts() {
		if runtimeMount(pod.GetId(), m) {
			continue
		}
		pm := policy.Mount{
			Destination: m.GetDestination(),
			Source:      m.GetSource(),
			Type:        m.GetType(),
			Options:     m.GetOptions(),
		}
		if policy.MountNeedsHost(&pm) {
			// A bind source (or overlay directory) is judged by the host
			// path its symlinks lead to; the plugin does not resolve
			// them, the hook does. Leave the mounts to the hook rather
			// than judge the name (a link to /etc inside an allowed
			// directory).
			w.Seen &^= policy.FieldMounts
		}
		w.Mounts = append(w.Mounts, pm)
	}
	if n := len(lin.GetDevices()); n > 0 {
		w.Devices = make([]policy.Device, 0, n)
	}
	for _, d := range lin.GetDevices() {
		w.Devices = append(w.Devices, policy.Device{
			Path:  d.GetPath(),
			Type:  d.GetType(),
			Major: d.GetMajor(),
			Minor: d.GetMinor(),
		})
	}
	w.DevicesAllowAll, w.DeviceCgroup = policy.DeviceCgroupAllowed(deviceCgroupRules(lin.GetResources().GetDevices()))
	// seccompPolicy is the spec's linux.seccomp (containerd copies it from
	// the generated spec); seccompProfile is only what the CRI client asked
	// for. No filter in the spec means unconfined.
	w.SeccompUnconfined = seccompUnconfined(lin.GetSeccompPolicy())
	w.Seccomp = seccompSummary(lin.GetSeccompPolicy())
	if len(ctr.GetCDIDevices()) > 0 {
		// CDI devices are resolved into devices and mounts only when the
		// runtime generates the spec; NRI shows just their names. The hook
		// judges the devices and mounts they bring.
		w.Seen &^= policy.FieldDevices | policy.FieldMounts
	}
	if s := lin.GetSysctl(); len(s) > 0 {
		// The container's own sysctls are visible, the pod's are not, so the
		// sysctls rule stays deferred to the hook; keep them for the record.
		w.Sysctls = s
	}
	return w, nil
}

func podIdentity(pod *api.PodSandbox, identityFrom string) policy.PodIdentity {
	id := policy.PodIdentity{
		Namespace:   pod.GetNamespace(),
		Name:        pod.GetName(),
		UID:         pod.GetUid(),
		SandboxID:   pod.GetId(),
		Labels:      pod.GetLabels(),
		Annotations: pod.GetAnnotations(),
	}
	if identityFrom != hook.IdentityFromContainerd {
		// Only containerd writes these keys; elsewhere they are the pod
		// author's.
		return id
	}
	ann := pod.GetAnnotations()
	if id.Namespace == "" {
		id.Namespace = ann[annSandboxNamespace]
	}
	if id.Name == "" {
		id.Name = ann[annSandboxName]
	}
	if id.UID == "" {
		id.UID = ann[annSandboxUID]
	}
	return id
}

// containerIdentity names the container and its image. NRI's own fields
// are the runtime's: the name from the kubelet's container metadata, the
// image where the runtime sends it. The annotations are the spec's, into
// which both runtimes may copy the pod's: they are read per runtime by
// hook.IdentityFrom, which takes only the keys that runtime writes after
// them, and only when the runtime that wrote them is the one connected.
func containerIdentity(ctr *api.Container, identityFrom string) policy.ContainerIdentity {
	id := policy.ContainerIdentity{ID: ctr.GetId(), Name: ctr.GetName()}
	ident := hook.IdentityFrom(ctr.GetId(), ctr.GetAnnotations())
	switch identityFrom {
	case hook.IdentityFromContainerd:
		if ident.Runtime == hook.RuntimeContainerd {
			if ident.Container.Name != "" {
				id.Name = ident.Container.Name
			}
			id.Image = ident.Container.Image
		}
	case hook.IdentityFromCRIO:
		// CRI-O never writes containerd's io.kubernetes.cri.* keys, so
		// there they can only be the pod's. Its own image key is written
		// after the pod's annotations on an application container;
		// anything else gives no image from the annotations (NRI's own
		// image field, which the runtime fills, still counts).
		if ident.Runtime == hook.RuntimeCRIO && !ident.Sandbox {
			id.Image = ident.Container.Image
		}
	}
	if id.Image == "" {
		id.Image = ctr.GetImage().GetName()
	}
	return id
}

// podHostNamespaces lists the judged namespace types missing from the pod
// sandbox's namespaces. ok is false when the runtime sent no namespaces at
// all: then nothing can be told (every real sandbox has at least a mount
// namespace).
func podHostNamespaces(pod *api.PodSandbox) (host []string, ok bool) {
	nss := pod.GetLinux().GetNamespaces()
	if len(nss) == 0 {
		return nil, false
	}
	for _, t := range judgedNamespaces {
		if !slices.ContainsFunc(nss, func(n *api.LinuxNamespace) bool { return n.GetType() == t }) {
			host = append(host, t)
		}
	}
	return host, true
}

// containerHostNamespaces lists judged namespace types missing from the
// container's own list: an adjustment that removes a namespace puts the
// container into the host's.
func containerHostNamespaces(nss []*api.LinuxNamespace) []string {
	var host []string
	for _, t := range judgedNamespaces {
		if !slices.ContainsFunc(nss, func(n *api.LinuxNamespace) bool { return n.GetType() == t }) {
			host = append(host, t)
		}
	}
	// The mount namespace: containerd always creates one; none (the host's)
	// is forbidden whatever the policy lists (policy.withMountNS). One
	// joined by path (an NRI plugin's AddOrReplaceNamespace) is judged from
	// Workload.MountNamespacePath (ContainerWorkload).
	if !slices.ContainsFunc(nss, func(n *api.LinuxNamespace) bool { return n.GetType() == "mount" }) {
		host = append(host, "mount")
	}
	return host
}

// runtimeMounts are the files containerd's CRI bind-mounts from the pod's own
// directory into every container.
var runtimeMounts = map[string]string{
	"/etc/hostname":    "hostname",
	"/etc/hosts":       "hosts",
	"/etc/resolv.conf": "resolv.conf",
	"/dev/shm":         "shm",
}

// runtimeMount reports whether m is one of the runtime's own bind mounts
// (sourced from <state or root>/io.containerd.grpc.v1.cri/sandboxes/<pod>/),
// which is not a user host-path mount.
func runtimeMount(podID string, m *api.Mount) bool {
	file, ok := runtimeMounts[m.GetDestination()]
	if !ok || podID == "" || strings.Contains(podID, "/") {
		return false
	}
	return strings.HasSuffix(m.GetSource(), "/io.containerd.grpc.v1.cri/sandboxes/"+podID+"/"+file)
}

// deviceCgroupRules converts NRI's device cgroup rules to the OCI form
// that policy.DeviceCgroupAllowed applies in order, as runc will: an absent
// major or minor stays absent (any).
func deviceCgroupRules(rules []*api.LinuxDeviceCgroup) []specs.LinuxDeviceCgroup {
	if len(rules) == 0 {
		return nil
	}
	out := make([]specs.LinuxDeviceCgroup, 0, len(rules))
	for _, r := range rules {
		if r == nil {
			continue
		}
		o := specs.LinuxDeviceCgroup{Allow: r.GetAllow(), Type: r.GetType(), Access: r.GetAccess()}
		if m := r.GetMajor(); m != nil {
			v := m.GetValue()
			o.Major = &v
		}
		if m := r.GetMinor(); m != nil {
			v := m.GetValue()
			o.Minor = &v
		}
		out = append(out, o)
	}
	return out
}

// seccompUnconfined reports whether the spec's seccomp filter confines
// nothing: no filter, or one that allows every syscall by default with no
// syscall rules.
func seccompUnconfined(s *api.LinuxSeccomp) bool {
	if s == nil {
		return true
	}
	return s.GetDefaultAction() == "SCMP_ACT_ALLOW" && len(s.GetSyscalls()) == 0
}

// seccompSummary reduces NRI's seccompPolicy the way policy.FromSpec
// reduces the spec's linux.seccomp.
func seccompSummary(s *api.LinuxSeccomp) policy.SeccompSummary {
	if s == nil {
		return policy.SeccompSummary{}
	}
	rules := make([]policy.SeccompSyscall, len(s.GetSyscalls()))
	for i, r := range s.GetSyscalls() {
		rules[i] = policy.SeccompSyscall{Names: r.GetNames(), Action: r.GetAction()}
		for _, a := range r.GetArgs() {
			rules[i].Args = append(rules[i].Args, policy.SeccompArg{Index: uint(a.GetIndex()), Value: a.GetValue(), ValueTwo: a.GetValueTwo(), Op: a.GetOp()})
		}
	}
	return policy.SummarizeSeccomp(s.GetDefaultAction(), rules)
}

func mergeSorted(a, b []string) []string {
	out := append(slices.Clone(a), b...)
	sort.Strings(out)
	return slices.Compact(out)
}
