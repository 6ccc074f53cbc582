package psa

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Kubelet is the part of a kubelet's configuration that decides the security fields of the
// CRI requests. The converter follows kubelet v1.34's pkg/kubelet/kuberuntime
// (kuberuntime_sandbox.go generatePodSandboxConfig and generatePodSandboxLinuxConfig,
// security_context.go determineEffectiveSecurityContext, kuberuntime_container_linux.go
// generateLinuxContainerConfig, helpers.go getSeccompProfile and getAppArmorProfile,
// security_context_others.go verifyRunAsNonRoot), pkg/securitycontext/util.go and
// pkg/kubelet/util/util.go NamespacesForPod; it is written from reading them, not copied.
type Kubelet struct {
	// RootDir is kubelet's --root-dir (/var/lib/kubelet): the pods' own files (etc-hosts, the
	// termination log) are under <RootDir>/pods/<pod uid>/.
	RootDir string
	// SeccompProfileRoot is where Localhost seccomp profiles live (<RootDir>/seccomp).
	SeccompProfileRoot string
	// SeccompDefault is the KubeletConfiguration field seccompDefault: a container that names
	// no seccomp profile gets RuntimeDefault instead of Unconfined.
	SeccompDefault bool
	// AppArmorEnabled says the host kernel has AppArmor; without it kubelet refuses a pod that
	// asks for an AppArmor profile other than unconfined.
	AppArmorEnabled bool
	// UsernsHostID is the first host id of the 65536 ids kubelet's user namespace manager
	// gives a pod with hostUsers: false (a multiple of 65536, never 0).
	UsernsHostID uint32
	// HostPathDir, when set, is where hostPath volumes point instead of the host's root: a
	// volume of /a is mounted from <HostPathDir>/a. Only for policies that judge every host
	// path alike.
	HostPathDir string
	// CgroupParent is every pod's cgroup parent.
	CgroupParent string
	// Image is the image reference kubelet sends for every container; ImageUser is that
	// image's configured user (the OCI config's User, "uid[:gid]" or a name).
	Image     string
	ImageUser string
	// MaskedPaths are the default masked paths (DefaultMaskedPaths on this host).
	MaskedPaths []string
}

// Pod is what kubelet does with one Pod: the CRI pod sandbox config, the container configs in
// the order kubelet creates them (init containers first), and the reasons kubelet itself
// would refuse the pod or a container before the runtime is asked.
type Pod struct {
	Sandbox    PodSandboxConfig
	Containers []Container
	// Refusals are kubelet's admission refusals for the whole pod (PodOSNotSupported,
	// SysctlForbidden, AppArmor), prefixed with the admit handler's name.
	Refusals []string
	// HostFiles are the files kubelet creates on the host before it creates the containers
	// (etc-hosts, each container's termination log); the mounts point at them.
	HostFiles []string
	// HostPaths are the directories hostPath volumes point at (created with
	// type DirectoryOrCreate semantics by the test).
	HostPaths []string
	// SubPathBinds are the bind mounts kubelet makes for volumeMounts with a subPath before
	// it creates the container: the CRI mount's host path is To, a bind of From.
	SubPathBinds []Bind
}

// Bind is one bind mount kubelet makes on the host.
type Bind struct{ From, To string }

// Container is one container's CRI config and kubelet's own refusal, if any.
type Container struct {
	Name    string
	Init    bool
	Config  ContainerConfig
	Refusal string // verifyRunAsNonRoot's error, "" when kubelet would create it
}

// DefaultMaskedPaths is kubelet v1.34's default masked path list (pkg/securitycontext/util.go
// defaultMaskedPaths, kept in sync with moby's oci/defaults.go): the fixed list plus the
// thermal_throttle directory of every possible CPU that has one on this host.
func DefaultMaskedPaths(sysRoot string) []string {
	paths := []string{
		"/proc/asound",
		"/proc/acpi",
		"/proc/interrupts",
		"/proc/kcore",
		"/proc/keys",
		"/proc/latency_stats",
		"/proc/timer_list",
		"/proc/timer_stats",
		"/proc/sched_debug",
		"/proc/scsi",
		"/sys/firmware",
		"/sys/devices/virtual/powercap",
	}
	for _, cpu := range possibleCPUs(sysRoot) {
		p := fmt.Sprintf("/sys/devices/system/cpu/cpu%d/thermal_throttle", cpu)
		if _, err := os.Stat(filepath.Join(sysRoot, p)); err == nil {
			paths = append(paths, p)
		}
	}
	return paths
}

// possibleCPUs parses <sysRoot>/sys/devices/system/cpu/possible ("0-3,5").
func possibleCPUs(sysRoot string) []int {
	data, err := os.ReadFile(filepath.Join(sysRoot, "/sys/devices/system/cpu/possible"))
	if err != nil {
		return nil
	}
	var cpus []int
	for _, r := range strings.Split(strings.TrimSpace(string(data)), ",") {
		lo, hi, isRange := strings.Cut(r, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil
			}
		}
		for c := a; c <= b; c++ {
			cpus = append(cpus, c)
		}
	}
	return cpus
}

// defaultReadonlyPaths is kubelet's defaultReadonlyPaths (pkg/securitycontext/util.go).
var defaultReadonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}

// safeSysctls is kubelet v1.34's safe sysctl list (pkg/kubelet/sysctl/safe_sysctls.go); each
// needs a kernel newer than any this test runs on (4.15 at most), so none is dropped.
var safeSysctls = []string{
	"kernel.shm_rmid_forced",
	"net.ipv4.ip_local_port_range",
	"net.ipv4.tcp_syncookies",
	"net.ipv4.ping_group_range",
	"net.ipv4.ip_unprivileged_port_start",
	"net.ipv4.ip_local_reserved_ports",
	"net.ipv4.tcp_keepalive_time",
	"net.ipv4.tcp_fin_timeout",
	"net.ipv4.tcp_keepalive_intvl",
	"net.ipv4.tcp_keepalive_probes",
	"net.ipv4.tcp_rmem",
	"net.ipv4.tcp_wmem",
}

// Convert turns a Pod (as the API server stores it) into what kubelet sends. uid is the pod's
// UID and namespace the namespace it runs in (the fixtures have neither).
func (k *Kubelet) Convert(in *corev1.Pod, namespace, uid string) (*Pod, error) {
	pod := in.DeepCopy()
	pod.Namespace, pod.UID = namespace, types.UID(uid)
	// API server defaulting (pkg/apis/core/v1 SetDefaults_PodSpec): spec.securityContext is
	// never nil on a stored pod, and kubelet only sets namespace options when it is not.
	if pod.Spec.SecurityContext == nil {
		pod.Spec.SecurityContext = &corev1.PodSecurityContext{}
	}
	out := &Pod{}
	out.Refusals = k.admit(pod)

	ns, err := k.namespaces(pod)
	if err != nil {
		return nil, err
	}
	psc := pod.Spec.SecurityContext
	sandbox := PodSandboxConfig{
		Metadata:    PodSandboxMetadata{Name: pod.Name, UID: uid, Namespace: namespace},
		Labels:      map[string]string{"io.kubernetes.pod.name": pod.Name, "io.kubernetes.pod.namespace": namespace, "io.kubernetes.pod.uid": uid},
		Annotations: copyMap(pod.Annotations),
	}
	if !pod.Spec.HostNetwork {
		sandbox.Hostname = pod.Name
	}
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.HostPort != 0 || pod.Spec.HostNetwork {
				hp := p.HostPort
				if pod.Spec.HostNetwork && hp == 0 {
					hp = p.ContainerPort // API defaulting for host-network pods
				}
				sandbox.PortMappings = append(sandbox.PortMappings, PortMapping{ContainerPort: p.ContainerPort, HostPort: hp, HostIP: p.HostIP})
			}
		}
	}
	lsc := &LinuxSandboxSecurityContext{
		NamespaceOptions: ns,
		Privileged:       hasPrivilegedContainer(pod),
		// kubelet always runs the sandbox (pause) with the runtime's default seccomp profile.
		Seccomp: &SecurityProfile{ProfileType: ProfileRuntimeDefault},
	}
	if psc.RunAsUser != nil {
		lsc.RunAsUser = &Int64Value{*psc.RunAsUser}
	}
	if psc.RunAsGroup != nil {
		lsc.RunAsGroup = &Int64Value{*psc.RunAsGroup}
	}
	lsc.SupplementalGroups = podSupplementalGroups(psc)
	if o := psc.SELinuxOptions; o != nil {
		lsc.SelinuxOptions = &SELinuxOption{User: o.User, Role: o.Role, Type: o.Type, Level: o.Level}
	}
	sandbox.Linux = &LinuxPodSandboxConfig{CgroupParent: k.CgroupParent, SecurityContext: lsc}
	if len(psc.Sysctls) > 0 {
		sandbox.Linux.Sysctls = map[string]string{}
		for _, s := range psc.Sysctls {
			sandbox.Linux.Sysctls[s.Name] = s.Value
		}
	}
	out.Sandbox = sandbox

	podDir := path.Join(k.RootDir, "pods", uid)
	// kubelet writes the pod's /etc/hosts (a copy of the node's for a host-network pod) and
	// mounts it into every container that mounts nothing else there (kubelet_pods.go
	// shouldMountHostsFile, makeMounts, makeHostsMount).
	etcHosts := path.Join(podDir, "etc-hosts")
	out.HostFiles = append(out.HostFiles, etcHosts)
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Spec.Volumes {
		volumes[v.Name] = v
	}
	add := func(c *corev1.Container, init bool) error {
		cc, hostFiles, hostPaths, binds, err := k.container(pod, c, ns, etcHosts, podDir, volumes)
		if err != nil {
			return err
		}
		out.SubPathBinds = append(out.SubPathBinds, binds...)
		out.HostFiles = append(out.HostFiles, hostFiles...)
		out.HostPaths = append(out.HostPaths, hostPaths...)
		out.Containers = append(out.Containers, Container{Name: c.Name, Init: init, Config: *cc, Refusal: k.verifyRunAsNonRoot(pod, c)})
		return nil
	}
	for i := range pod.Spec.InitContainers {
		if err := add(&pod.Spec.InitContainers[i], true); err != nil {
			return nil, err
		}
	}
	for i := range pod.Spec.Containers {
		if err := add(&pod.Spec.Containers[i], false); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// container is generateContainerConfig's security part for one container.
func (k *Kubelet) container(pod *corev1.Pod, c *corev1.Container, ns *NamespaceOption, etcHosts, podDir string, volumes map[string]corev1.Volume) (*ContainerConfig, []string, []string, []Bind, error) {
	eff := effectiveSecurityContext(pod, c)
	sc := &LinuxContainerSecurityContext{
		NamespaceOptions: ns,
		MaskedPaths:      k.MaskedPaths,
		ReadonlyPaths:    defaultReadonlyPaths,
	}
	if eff.ProcMount != nil && *eff.ProcMount == corev1.UnmaskedProcMount {
		// kubelet sends empty lists; over protobuf an empty list is an absent one, and
		// containerd then masks nothing (internal/cri/server/container_create.go).
		sc.MaskedPaths, sc.ReadonlyPaths = nil, nil
	}
	if caps := eff.Capabilities; caps != nil {
		// Verbatim: kubelet neither adds nor strips a CAP_ prefix, nor changes case.
		sc.Capabilities = &Capability{}
		for _, a := range caps.Add {
			sc.Capabilities.AddCapabilities = append(sc.Capabilities.AddCapabilities, string(a))
		}
		for _, d := range caps.Drop {
			sc.Capabilities.DropCapabilities = append(sc.Capabilities.DropCapabilities, string(d))
		}
	}
	if eff.Privileged != nil {
		sc.Privileged = *eff.Privileged
	}
	if eff.ReadOnlyRootFilesystem != nil {
		sc.ReadonlyRootfs = *eff.ReadOnlyRootFilesystem
	}
	if o := eff.SELinuxOptions; o != nil {
		sc.SelinuxOptions = &SELinuxOption{User: o.User, Role: o.Role, Type: o.Type, Level: o.Level}
	}
	if eff.RunAsGroup != nil {
		sc.RunAsGroup = &Int64Value{*eff.RunAsGroup}
	}
	if eff.RunAsUser != nil {
		sc.RunAsUser = &Int64Value{*eff.RunAsUser}
	} else if uid, name := k.imageUser(); uid != nil {
		// Without runAsUser kubelet sends the image's numeric user, or its name.
		sc.RunAsUser = &Int64Value{*uid}
	} else {
		sc.RunAsUsername = name
	}
	seccomp, err := k.seccompProfile(pod.Spec.SecurityContext, c.SecurityContext)
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("container %q: %w", c.Name, err)
	}
	sc.Seccomp = seccomp
	sc.Apparmor, sc.ApparmorProfile, err = appArmorProfile(pod, c)
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("container %q: %w", c.Name, err)
	}
	sc.SupplementalGroups = podSupplementalGroups(pod.Spec.SecurityContext)
	// allowPrivilegeEscalation: false is the only way to no_new_privs (AddNoNewPrivileges).
	sc.NoNewPrivs = eff.AllowPrivilegeEscalation != nil && !*eff.AllowPrivilegeEscalation

	cc := &ContainerConfig{
		Metadata: ContainerMetadata{Name: c.Name},
		Image:    ImageSpec{Image: k.Image},
		Linux:    &LinuxContainerConfig{SecurityContext: sc},
	}
	var hostFiles, hostPaths []string
	var binds []Bind
	for i, vm := range c.VolumeMounts {
		v, ok := volumes[vm.Name]
		if !ok {
			return nil, nil, nil, nil, fmt.Errorf("container %q mounts volume %q, which the pod does not have", c.Name, vm.Name)
		}
		if v.HostPath == nil {
			// Other volume types are set up by kubelet under the pod directory (emptyDir,
			// configMap, ...) or by a volume plugin; the fixtures mount none.
			return nil, nil, nil, nil, fmt.Errorf("container %q mounts volume %q, which is not a hostPath volume (not modelled)", c.Name, vm.Name)
		}
		src := path.Clean(v.HostPath.Path)
		if k.HostPathDir != "" {
			src = path.Join(k.HostPathDir, src)
		}
		hostPaths = append(hostPaths, src)
		if vm.SubPath != "" {
			// kubelet bind-mounts the subpath into the pod's own directory and hands the
			// runtime that (pkg/volume/util/subpath/subpath_linux.go doBindSubPath,
			// getSubpathBindTarget: <pod dir>/volume-subpaths/<volume>/<container>/<index>).
			to := path.Join(podDir, "volume-subpaths", vm.Name, c.Name, strconv.Itoa(i))
			binds = append(binds, Bind{From: path.Join(src, path.Clean("/"+vm.SubPath)), To: to})
			src = to
		}
		m := Mount{ContainerPath: vm.MountPath, HostPath: src, Readonly: vm.ReadOnly}
		if vm.RecursiveReadOnly != nil && *vm.RecursiveReadOnly != corev1.RecursiveReadOnlyDisabled && vm.ReadOnly {
			m.RecursiveReadOnly = true
		}
		if vm.MountPropagation != nil {
			switch *vm.MountPropagation {
			case corev1.MountPropagationHostToContainer:
				m.Propagation = PropagationHostToContainer
			case corev1.MountPropagationBidirectional:
				m.Propagation = PropagationBidirectional
			}
		}
		cc.Mounts = append(cc.Mounts, m)
	}
	mountsHosts := true
	for _, vm := range c.VolumeMounts {
		mountsHosts = mountsHosts && vm.MountPath != "/etc/hosts"
	}
	if mountsHosts {
		cc.Mounts = append(cc.Mounts, Mount{ContainerPath: "/etc/hosts", HostPath: etcHosts, SelinuxRelabel: true})
	}
	// The termination message file: <pod dir>/containers/<name>/<id>, mounted read-write at
	// terminationMessagePath (default /dev/termination-log).
	tm := c.TerminationMessagePath
	if tm == "" {
		tm = corev1.TerminationMessagePathDefault
	}
	logFile := path.Join(podDir, "containers", c.Name, "psa0")
	hostFiles = append(hostFiles, logFile)
	cc.Mounts = append(cc.Mounts, Mount{ContainerPath: tm, HostPath: logFile, SelinuxRelabel: true})
	return cc, hostFiles, hostPaths, binds, nil
}

// namespaces is NamespacesForPod: host namespaces, the pid mode and the user namespace.
func (k *Kubelet) namespaces(pod *corev1.Pod) (*NamespaceOption, error) {
	ns := &NamespaceOption{Network: NamespacePod, Ipc: NamespacePod, Pid: NamespaceContainer}
	if pod.Spec.HostNetwork {
		ns.Network = NamespaceNode
	}
	if pod.Spec.HostIPC {
		ns.Ipc = NamespaceNode
	}
	switch {
	case pod.Spec.HostPID:
		ns.Pid = NamespaceNode
	case pod.Spec.ShareProcessNamespace != nil && *pod.Spec.ShareProcessNamespace:
		ns.Pid = NamespacePod
	}
	if pod.Spec.HostUsers != nil && !*pod.Spec.HostUsers {
		// pkg/kubelet/userns: 65536 ids from a range that starts at a multiple of 65536.
		if k.UsernsHostID == 0 || k.UsernsHostID%65536 != 0 {
			return nil, fmt.Errorf("kubelet: user namespace host id %d is not a positive multiple of 65536", k.UsernsHostID)
		}
		if pod.Spec.HostNetwork || pod.Spec.HostIPC || pod.Spec.HostPID {
			// API validation refuses hostUsers: false with a host namespace.
			return nil, fmt.Errorf("kubelet: hostUsers: false with a host namespace is invalid")
		}
		m := []IDMapping{{HostID: k.UsernsHostID, ContainerID: 0, Length: 65536}}
		ns.UsernsOptions = &UserNamespace{Mode: NamespacePod, Uids: m, Gids: m}
	} else {
		ns.UsernsOptions = &UserNamespace{Mode: NamespaceNode}
	}
	return ns, nil
}

// effectiveSecurityContext is DetermineEffectiveSecurityContext: the pod's user, group,
// runAsNonRoot and SELinux options, overridden field by field by the container's.
func effectiveSecurityContext(pod *corev1.Pod, c *corev1.Container) *corev1.SecurityContext {
	eff := &corev1.SecurityContext{}
	if psc := pod.Spec.SecurityContext; psc != nil {
		eff.SELinuxOptions = psc.SELinuxOptions
		eff.WindowsOptions = psc.WindowsOptions
		eff.RunAsUser = psc.RunAsUser
		eff.RunAsGroup = psc.RunAsGroup
		eff.RunAsNonRoot = psc.RunAsNonRoot
	}
	csc := c.SecurityContext
	if csc == nil {
		return eff
	}
	if csc.SELinuxOptions != nil {
		eff.SELinuxOptions = csc.SELinuxOptions
	}
	if csc.Capabilities != nil {
		eff.Capabilities = csc.Capabilities
	}
	if csc.Privileged != nil {
		eff.Privileged = csc.Privileged
	}
	if csc.RunAsUser != nil {
		eff.RunAsUser = csc.RunAsUser
	}
	if csc.RunAsGroup != nil {
		eff.RunAsGroup = csc.RunAsGroup
	}
	if csc.RunAsNonRoot != nil {
		eff.RunAsNonRoot = csc.RunAsNonRoot
	}
	if csc.ReadOnlyRootFilesystem != nil {
		eff.ReadOnlyRootFilesystem = csc.ReadOnlyRootFilesystem
	}
	if csc.AllowPrivilegeEscalation != nil {
		eff.AllowPrivilegeEscalation = csc.AllowPrivilegeEscalation
	}
	if csc.ProcMount != nil {
		eff.ProcMount = csc.ProcMount
	}
	return eff
}

// hasPrivilegedContainer is HasPrivilegedContainer: any container, init containers too.
func hasPrivilegedContainer(pod *corev1.Pod) bool {
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range cs {
			if c.SecurityContext != nil && c.SecurityContext.Privileged != nil && *c.SecurityContext.Privileged {
				return true
			}
		}
	}
	return false
}

func podSupplementalGroups(psc *corev1.PodSecurityContext) []int64 {
	if psc == nil {
		return nil
	}
	var g []int64
	if psc.FSGroup != nil {
		g = append(g, *psc.FSGroup)
	}
	return append(g, psc.SupplementalGroups...)
}

// seccompProfile is getSeccompProfile: the container's field, else the pod's, else
// RuntimeDefault with seccompDefault and Unconfined without.
func (k *Kubelet) seccompProfile(psc *corev1.PodSecurityContext, csc *corev1.SecurityContext) (*SecurityProfile, error) {
	var p *corev1.SeccompProfile
	switch {
	case csc != nil && csc.SeccompProfile != nil:
		p = csc.SeccompProfile
	case psc != nil && psc.SeccompProfile != nil:
		p = psc.SeccompProfile
	}
	if p == nil {
		if k.SeccompDefault {
			return &SecurityProfile{ProfileType: ProfileRuntimeDefault}, nil
		}
		return &SecurityProfile{ProfileType: ProfileUnconfined}, nil
	}
	switch p.Type {
	case corev1.SeccompProfileTypeRuntimeDefault:
		return &SecurityProfile{ProfileType: ProfileRuntimeDefault}, nil
	case corev1.SeccompProfileTypeLocalhost:
		if p.LocalhostProfile == nil || *p.LocalhostProfile == "" {
			return nil, fmt.Errorf("localhostProfile must be set if seccompProfile type is Localhost")
		}
		return &SecurityProfile{ProfileType: ProfileLocalhost, LocalhostRef: filepath.Join(k.SeccompProfileRoot, *p.LocalhostProfile)}, nil
	}
	return &SecurityProfile{ProfileType: ProfileUnconfined}, nil
}

// appArmorAnnotationPrefix is v1.DeprecatedAppArmorBetaContainerAnnotationKeyPrefix.
const appArmorAnnotationPrefix = "container.apparmor.security.beta.kubernetes.io/"

// appArmorProfileOf is apparmor.GetProfile: the container's field, else the deprecated
// per-container annotation, else the pod's field; nil when none is set.
func appArmorProfileOf(pod *corev1.Pod, c *corev1.Container) (*corev1.AppArmorProfile, error) {
	if c.SecurityContext != nil && c.SecurityContext.AppArmorProfile != nil {
		return c.SecurityContext.AppArmorProfile, nil
	}
	if v, ok := pod.Annotations[appArmorAnnotationPrefix+c.Name]; ok {
		switch {
		case v == corev1.DeprecatedAppArmorBetaProfileRuntimeDefault:
			return &corev1.AppArmorProfile{Type: corev1.AppArmorProfileTypeRuntimeDefault}, nil
		case v == corev1.DeprecatedAppArmorBetaProfileNameUnconfined:
			return &corev1.AppArmorProfile{Type: corev1.AppArmorProfileTypeUnconfined}, nil
		case strings.HasPrefix(v, corev1.DeprecatedAppArmorBetaProfileNamePrefix):
			name := strings.TrimPrefix(v, corev1.DeprecatedAppArmorBetaProfileNamePrefix)
			return &corev1.AppArmorProfile{Type: corev1.AppArmorProfileTypeLocalhost, LocalhostProfile: &name}, nil
		default:
			return nil, fmt.Errorf("invalid AppArmor annotation %q", v)
		}
	}
	if pod.Spec.SecurityContext != nil && pod.Spec.SecurityContext.AppArmorProfile != nil {
		return pod.Spec.SecurityContext.AppArmorProfile, nil
	}
	return nil, nil
}

// appArmorProfile is getAppArmorProfile: the CRI profile and the deprecated string form.
func appArmorProfile(pod *corev1.Pod, c *corev1.Container) (*SecurityProfile, string, error) {
	p, err := appArmorProfileOf(pod, c)
	if err != nil || p == nil {
		return nil, "", err
	}
	switch p.Type {
	case corev1.AppArmorProfileTypeRuntimeDefault:
		return &SecurityProfile{ProfileType: ProfileRuntimeDefault}, corev1.DeprecatedAppArmorBetaProfileRuntimeDefault, nil
	case corev1.AppArmorProfileTypeUnconfined:
		return &SecurityProfile{ProfileType: ProfileUnconfined}, corev1.DeprecatedAppArmorBetaProfileNameUnconfined, nil
	case corev1.AppArmorProfileTypeLocalhost:
		if p.LocalhostProfile == nil {
			return nil, "", fmt.Errorf("missing localhost apparmor profile name")
		}
		return &SecurityProfile{ProfileType: ProfileLocalhost, LocalhostRef: *p.LocalhostProfile}, corev1.DeprecatedAppArmorBetaProfileNamePrefix + *p.LocalhostProfile, nil
	}
	return nil, "", fmt.Errorf("unknown apparmor profile type %q", p.Type)
}

// admit is kubelet's pod admission on a Linux node, for the handlers a security field can
// trip: the OS check (lifecycle/predicate.go, PodOSNotSupported), the sysctl allowlist
// (kubelet/sysctl/allowlist.go, SysctlForbidden) and AppArmor (security/apparmor/validate.go).
func (k *Kubelet) admit(pod *corev1.Pod) []string {
	var refusals []string
	if pod.Spec.OS != nil && pod.Spec.OS.Name != corev1.Linux {
		refusals = append(refusals, fmt.Sprintf("PodOSNotSupported: the pod's OS %q is not the node's (linux)", pod.Spec.OS.Name))
	}
	for _, s := range pod.Spec.SecurityContext.Sysctls {
		name := strings.ReplaceAll(s.Name, "/", ".")
		safe := false
		for _, n := range safeSysctls {
			safe = safe || n == name
		}
		switch {
		case !safe:
			refusals = append(refusals, fmt.Sprintf("SysctlForbidden: %q is not allowlisted", s.Name))
		case strings.HasPrefix(name, "net.") && pod.Spec.HostNetwork:
			refusals = append(refusals, fmt.Sprintf("SysctlForbidden: %q cannot be set with hostNetwork", s.Name))
		case strings.HasPrefix(name, "kernel.shm") && pod.Spec.HostIPC:
			refusals = append(refusals, fmt.Sprintf("SysctlForbidden: %q cannot be set with hostIPC", s.Name))
		}
	}
	if !k.AppArmorEnabled && appArmorRequired(pod) {
		refusals = append(refusals, "AppArmor: Cannot enforce AppArmor: AppArmor is not enabled on the host")
	}
	return refusals
}

// appArmorRequired is the apparmor validator's isRequired: some container asks for a profile
// other than unconfined.
func appArmorRequired(pod *corev1.Pod) bool {
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range cs {
			p, err := appArmorProfileOf(pod, &cs[i])
			if err != nil || (p != nil && p.Type != corev1.AppArmorProfileTypeUnconfined) {
				return true
			}
		}
	}
	return false
}

// verifyRunAsNonRoot is kubelet's check before it creates a container with runAsNonRoot.
func (k *Kubelet) verifyRunAsNonRoot(pod *corev1.Pod, c *corev1.Container) string {
	eff := effectiveSecurityContext(pod, c)
	if eff.RunAsNonRoot == nil || !*eff.RunAsNonRoot {
		return ""
	}
	if eff.RunAsUser != nil {
		if *eff.RunAsUser == 0 {
			return fmt.Sprintf("container's runAsUser breaks non-root policy (container: %s)", c.Name)
		}
		return ""
	}
	uid, name := k.imageUser()
	switch {
	case uid == nil && name != "":
		return fmt.Sprintf("container has runAsNonRoot and image has non-numeric user (%s), cannot verify user is non-root (container: %s)", name, c.Name)
	case uid != nil && *uid == 0:
		return fmt.Sprintf("container has runAsNonRoot and image will run as root (container: %s)", c.Name)
	}
	return ""
}

// imageUser is getImageUser: the uid part of the image's User when numeric, else its name.
func (k *Kubelet) imageUser() (*int64, string) {
	user, _, _ := strings.Cut(k.ImageUser, ":")
	if user == "" {
		zero := int64(0) // no User: the image runs as root
		return &zero, ""
	}
	if uid, err := strconv.ParseInt(user, 10, 64); err == nil {
		return &uid, ""
	}
	return nil, user
}

func copyMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
