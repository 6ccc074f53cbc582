// Package policy holds patchgate's node policy, the inputs it judges (Workload
// and KernelState), the rules, and Evaluate. Everything in this package is pure:
// no I/O, no clock, no logger. Front ends (plugin/, hook/, cmd/) build the
// inputs and act on the Decision.
package policy

import "time"

// Verdict is the outcome of Evaluate.
type Verdict string

const (
	// Allow admits the container with nothing to report.
	Allow Verdict = "allow"
	// Warn admits the container but flags it (annotation, warning, audit).
	Warn Verdict = "warn"
	// Deny blocks the container.
	Deny Verdict = "deny"
)

// Action is what a rule does when it is violated.
type Action string

const (
	// ActionEnforce blocks the container.
	ActionEnforce Action = "enforce"
	// ActionWarn admits and flags the container.
	ActionWarn Action = "warn"
	// ActionAudit admits the container and writes an audit record only.
	ActionAudit Action = "audit"
	// ActionOff disables the rule.
	ActionOff Action = "off"
)

// Field names one group of workload input that a front end may or may not be
// able to see. A rule whose input was not seen is reported as deferred, never
// as a pass.
type Field uint32

const (
	FieldUser Field = 1 << iota
	FieldCapabilities
	FieldPrivileged // masked paths, readonly paths and the sysfs mount together
	FieldNoNewPrivileges
	FieldHostNamespaces
	FieldMounts
	FieldDevices
	FieldSeccomp
	FieldAppArmor
	FieldSysctls
	FieldProcMount
)

// FieldsAll is every field: what a front end holding a full OCI spec (and the
// sandbox spec) sees.
const FieldsAll = FieldUser | FieldCapabilities | FieldPrivileged | FieldNoNewPrivileges |
	FieldHostNamespaces | FieldMounts | FieldDevices | FieldSeccomp | FieldAppArmor |
	FieldSysctls | FieldProcMount

// Has reports whether every field in want is in f.
func (f Field) Has(want Field) bool { return f&want == want }

// Workload is one container as patchgate judges it. It is patchgate's own type,
// built by a front end from an OCI spec, an NRI container, or flags.
type Workload struct {
	// Source names the front end: "nri", "hook" or "eval".
	Source string `json:"source"`
	// Seen lists the input fields that the front end could see.
	Seen Field `json:"-"`

	Pod       PodIdentity       `json:"pod"`
	Container ContainerIdentity `json:"container"`
	// Annotations are the container's annotations (pod annotations are in Pod).
	Annotations map[string]string `json:"annotations,omitempty"`

	User User `json:"user"`
	// Capabilities are the process capabilities in every set.
	Capabilities Capabilities `json:"capabilities"`
	// NoNewPrivileges is process.noNewPrivileges.
	NoNewPrivileges bool `json:"noNewPrivileges"`
	// MaskedPaths and ReadonlyPaths are linux.maskedPaths/readonlyPaths.
	MaskedPaths   []string `json:"maskedPaths,omitempty"`
	ReadonlyPaths []string `json:"readonlyPaths,omitempty"`
	// HostNamespaces lists the namespace types ("pid", "ipc", "network",
	// "uts", "user", "cgroup", "mount") that the container shares with the
	// host. The front end works this out (sandbox spec, or inode comparison
	// with the host's /proc/1/ns), because that needs I/O.
	HostNamespaces []string `json:"hostNamespaces,omitempty"`
	// MountNamespacePath is the path of a mount namespace the container
	// joins instead of getting its own (linux.namespaces type mount with a
	// path). runc then builds the container's root in that namespace and
	// pivots its root there, whoever else lives in it: the hostNamespaces
	// rule refuses it whatever its list says.
	MountNamespacePath string `json:"mountNamespacePath,omitempty"`
	// UnknownNamespaces lists the namespace types whose host-ness the front
	// end could not tell (a namespace path it was not allowed or able to
	// resolve). FieldHostNamespaces is then unseen: the hostNamespaces rule
	// still reports the proven HostNamespaces and is deferred for these.
	UnknownNamespaces []string `json:"unknownNamespaces,omitempty"`
	Mounts            []Mount  `json:"mounts,omitempty"`
	Devices           []Device `json:"devices,omitempty"`
	// DevicesAllowAll is set when the device cgroup ends up allowing every
	// device: linux.resources.devices applied in order, the way runc
	// applies it, leaves it in allow-all mode (DeviceCgroupAllowed).
	DevicesAllowAll bool `json:"devicesAllowAll,omitempty"`
	// DeviceCgroup is what linux.resources.devices leaves allowed in a
	// device cgroup that denies by default (DeviceCgroupAllowed); empty
	// when DevicesAllowAll is set. The runtime's own default rules, which
	// runc appends to every container's list, are not in it.
	DeviceCgroup []DeviceRule `json:"deviceCgroup,omitempty"`
	// SeccompUnconfined is set when no seccomp filter applies
	// (linux.seccomp absent, or a filter whose default action allows and
	// that has no syscall rules).
	SeccompUnconfined bool `json:"seccompUnconfined"`
	// Seccomp is linux.seccomp reduced to what the seccomp rule judges
	// (SummarizeSeccomp). Its zero value blocks nothing.
	Seccomp SeccompSummary `json:"seccomp"`
	// AppArmorProfile is process.apparmorProfile ("" means none/unconfined).
	AppArmorProfile string `json:"apparmorProfile,omitempty"`
	// HostAppArmor is set when the front end saw that the host enforces
	// AppArmor (FromSpecOptions.HostAppArmor). There an empty
	// process.apparmorProfile is what containerd's CRI writes for an
	// explicit Unconfined (its RuntimeDefault and unset write
	// "cri-containerd.apparmor.d"), and a container without a profile runs
	// unconfined: the apparmor rule judges it so.
	HostAppArmor bool `json:"hostAppArmor,omitempty"`
	// AppArmorMode is the mode the host has loaded the named profile in
	// (FromSpecOptions.AppArmorMode): "enforce", "kill", "complain",
	// "unconfined", ..., AppArmorModeNotLoaded or AppArmorModeUnreadable;
	// for a stack, its weakest component's. Empty when the front end did
	// not look (no AppArmor on the host, no profile named, or no view of
	// the host): the profile is then judged by its name only.
	AppArmorMode string `json:"apparmorMode,omitempty"`
	// Sysctls are linux.sysctl of the container and its sandbox.
	Sysctls map[string]string `json:"sysctls,omitempty"`
}

// PodIdentity identifies the pod a container belongs to.
type PodIdentity struct {
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name,omitempty"`
	UID       string `json:"uid,omitempty"`
	// SandboxID is the runtime's id of the pod sandbox (containerd's CRI
	// io.kubernetes.cri.sandbox-id, NRI's pod id): the runtime's own
	// files for /etc/hosts, /dev/shm, ... lie in that sandbox's directory,
	// and another sandbox's are another pod's. Empty when the front end
	// does not know it.
	SandboxID   string            `json:"sandboxId,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// ContainerIdentity identifies the container.
type ContainerIdentity struct {
	ID    string `json:"id,omitempty"`
	Name  string `json:"name,omitempty"`
	Image string `json:"image,omitempty"`
}

// User is the container process's user.
type User struct {
	UID uint32 `json:"uid"`
	GID uint32 `json:"gid"`
	// UIDMappings are the user namespace's uid mappings; empty when the
	// container has no user namespace or the mappings were not visible.
	UIDMappings []IDMapping `json:"uidMappings,omitempty"`
	// GIDMappings are the user namespace's gid mappings, likewise.
	GIDMappings []IDMapping `json:"gidMappings,omitempty"`
	// UserNamespace is set when the container runs in its own user namespace.
	UserNamespace bool `json:"userNamespace,omitempty"`
}

// IDMapping maps container IDs to host IDs, as in linux.uidMappings.
type IDMapping struct {
	ContainerID uint32 `json:"containerID"`
	HostID      uint32 `json:"hostID"`
	Size        uint32 `json:"size"`
}

// Capabilities are capability names in the OCI form ("CAP_SYS_ADMIN").
type Capabilities struct {
	Bounding    []string `json:"bounding,omitempty"`
	Effective   []string `json:"effective,omitempty"`
	Permitted   []string `json:"permitted,omitempty"`
	Inheritable []string `json:"inheritable,omitempty"`
	Ambient     []string `json:"ambient,omitempty"`
}

// Mount is one OCI mount.
type Mount struct {
	Destination string   `json:"destination"`
	Source      string   `json:"source,omitempty"`
	Type        string   `json:"type,omitempty"`
	Options     []string `json:"options,omitempty"`
	// Resolved is the host path a bind mount's source names once every
	// symlink is followed (FromSpecOptions.ResolvePath), when the front end
	// resolved it; empty otherwise. For an overlay the front end rewrites
	// the directories in Options instead.
	Resolved string `json:"resolved,omitempty"`
	// ResolveError says why the source (or an overlay directory) could not
	// be resolved: a symlink loop, a component that is not a directory, an
	// I/O error. Such a mount cannot be judged and is a violation.
	ResolveError string `json:"resolveError,omitempty"`
	// Origins are, when the bind source is a mount point on the host (a
	// kubelet subPath bind under <kubeletDir>/pods/<uid>/volume-subpaths/,
	// a volume), the other host paths that show the same content
	// (FromSpecOptions.MountOrigins): the mounts of the same filesystem
	// that contain it, the one with the shortest filesystem root first.
	// OriginsTied says how many at the front share that shortest root.
	// Empty for a source that is no mount point, or a whole filesystem seen
	// nowhere else (a tmpfs volume).
	Origins     []string `json:"origins,omitempty"`
	OriginsTied int      `json:"originsTied,omitempty"`
	// Backing is, for a bind source under the pod's own kubelet directory
	// (<kubeletDir>/pods/<uid>/), the host mount it lies in
	// (FromSpecOptions.PodMountBacking); nil when the front end did not
	// look (no mount table).
	Backing *MountBacking `json:"backing,omitempty"`
}

// MountBacking is the host mount that a path lies in (the deepest mount
// point that is the path or a parent of it), as the host's mount table
// shows it.
type MountBacking struct {
	// KubeletDir is the kubelet directory it was judged against (the path
	// before /pods/<uid>/).
	KubeletDir string `json:"kubeletDir"`
	// MountPoint, FSType, Source and Root are the mount's (mountinfo: mount
	// point, filesystem type, mount source, root inside the filesystem).
	MountPoint string `json:"mountPoint"`
	FSType     string `json:"fsType"`
	Source     string `json:"source,omitempty"`
	Root       string `json:"root"`
	// KubeletFS: the same filesystem as the mount KubeletDir lies in.
	KubeletFS bool `json:"kubeletFS,omitempty"`
	// Origins and OriginsTied: the other host paths that show the mount
	// (as Mount.Origins), when MountPoint lies below KubeletDir.
	Origins     []string `json:"origins,omitempty"`
	OriginsTied int      `json:"originsTied,omitempty"`
}

// Device is one OCI linux device.
type Device struct {
	Path  string `json:"path"`
	Type  string `json:"type,omitempty"`
	Major int64  `json:"major"`
	Minor int64  `json:"minor"`
}

// DeviceRule is one device cgroup exception: a device type, numbers and
// the access allowed.
type DeviceRule struct {
	// Type is "c" (char) or "b" (block).
	Type string `json:"type"`
	// Major and Minor are the device numbers; -1 means any.
	Major int64 `json:"major"`
	Minor int64 `json:"minor"`
	// Access is a subset of "rwm", in that order.
	Access string `json:"access"`
}

// KernelState is the host kernel's live-patch state as the providers report
// it. It is the JSON that `patchgate check -o json` prints under "kernel" and
// that `patchgate eval --kernel-state` reads.
type KernelState struct {
	// Release is the running kernel release (uname -r).
	Release string `json:"release"`
	// EffectiveVersion is the version the kernel is patched up to, where a
	// provider states one (KernelCare, Ksplice); otherwise empty.
	EffectiveVersion string `json:"effectiveVersion,omitempty"`
	// Distro is the version ordering to compare with: "dpkg" or "rpm"
	// (empty: guessed from the release string).
	Distro  string  `json:"distro,omitempty"`
	Patches []Patch `json:"patches"`
	// FixedCVEs are CVE IDs, upper case, sorted, that a provider says are fixed.
	FixedCVEs []string `json:"fixedCVEs"`
	// UpdatesPending is nil when no provider can tell.
	UpdatesPending *bool `json:"updatesPending"`
	// LivepatchTainted is the taint bit 15 (K) of /proc/sys/kernel/tainted.
	LivepatchTainted bool `json:"livepatchTainted,omitempty"`
	// Providers lists the providers that were read successfully.
	Providers []string `json:"providers,omitempty"`
	// Unknown lists the parts of the state that could not be read and why.
	// A part that failed is unknown, never empty.
	Unknown []UnknownPart `json:"unknown,omitempty"`
	// Conflicts lists disagreements between sources, in words.
	Conflicts  []string  `json:"conflicts,omitempty"`
	ObservedAt time.Time `json:"observedAt"`
}

// Patch is one live patch.
type Patch struct {
	Name string `json:"name"`
	// Enabled is the patch's enabled flag.
	Enabled bool `json:"enabled"`
	// Transition is set while the patch is still being applied or removed.
	Transition bool   `json:"transition"`
	Provider   string `json:"provider"`
}

// InForce reports whether the patch is enabled and fully transitioned.
func (p Patch) InForce() bool { return p.Enabled && !p.Transition }

// UnknownPart says which part of the kernel state could not be read.
type UnknownPart struct {
	// Part is one of "patches", "cves", "version", "updates", or "all".
	Part     string `json:"part"`
	Provider string `json:"provider,omitempty"`
	Reason   string `json:"reason"`
}

// Violation is one rule's finding.
type Violation struct {
	Rule   string `json:"rule"`
	Action Action `json:"action"`
	// Reason is short and stable ("privileged", "host namespaces"), used as
	// the audit and metric key.
	Reason string `json:"reason"`
	// Detail names the container and the OCI field.
	Detail string `json:"detail"`
	// NormalAction is the rule's action while the kernel is not behind
	// (spec.rules.<rule>.action). It is set only when the rule's
	// whenKernelBehind made Action stricter: the kernel is the reason for
	// this violation's weight, and messages say so (Explain).
	NormalAction Action `json:"normalAction,omitempty"`
	// ImpliedBy names the rule whose violation implies this one: a
	// privileged container has every capability, every host device and no
	// masked paths, so those rules fail with it. Messages for people
	// collapse such a violation into the implying one; its Detail keeps
	// the full finding for the audit record.
	ImpliedBy string `json:"impliedBy,omitempty"`
}

// PolicyRef identifies the policy a decision was made under.
type PolicyRef struct {
	Name   string `json:"name"`
	Digest string `json:"digest"`
}

// Decision is the result of Evaluate.
type Decision struct {
	Verdict Verdict `json:"decision"`
	// Violations are sorted by rule.
	Violations []Violation `json:"violations"`
	// Deferred lists the rules whose input the front end could not see.
	Deferred []string `json:"deferred,omitempty"`
	// Exemptions lists the names of the exemptions that applied.
	Exemptions []string `json:"exemptions,omitempty"`
	// KernelBehind is set when any kernel rule failed.
	KernelBehind bool      `json:"kernelBehind"`
	Policy       PolicyRef `json:"policy"`
	// Mode is how the front end that decided saw the container, when it
	// matters for what was judged: "CreateContainer" for the NRI plugin on a
	// runtime without the validation event (NRI < v0.10), which judges the
	// container before plugins ordered after it adjust it.
	Mode string `json:"mode,omitempty"`
	// Unseen lists what that mode cannot see (one phrase each).
	Unseen []string `json:"unseen,omitempty"`
}
