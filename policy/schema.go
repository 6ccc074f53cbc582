package policy

import (
	"fmt"
	"strings"
	"time"
)

// APIVersion and Kind are the only values a policy file may carry in its
// apiVersion and kind keys.
const (
	APIVersion = "patchgate.dev/v1alpha1"
	Kind       = "NodePolicy"
)

// Policy is a node policy: the merged result of policy.yaml, policy.d drop-ins
// and the node overlay, with every default filled in. Load and Default return
// a Policy that is ready for Evaluate; treat it as read-only afterwards.
type Policy struct {
	// APIVersion must be patchgate.dev/v1alpha1, in every file.
	APIVersion string `json:"apiVersion"`
	// Kind must be NodePolicy, in every file.
	Kind string `json:"kind"`
	// Metadata names the policy.
	Metadata Metadata `json:"metadata"`
	// Spec is the policy itself: actions, kernel requirements, rules,
	// exemptions, audit log and hook.
	Spec Spec `json:"spec"`

	// Sources lists the files the policy was merged from, in merge order.
	// Default() has none.
	Sources []string `json:"-"`

	digest   string
	compiled *compiled
}

// Metadata names the policy.
type Metadata struct {
	// Name is the policy's name, recorded with every decision and audit
	// record.
	Name string `json:"name"`
}

// Spec is the body of a policy.
type Spec struct {
	// DefaultAction is the action of every rule that sets none.
	DefaultAction Action `json:"defaultAction"`
	// Kernel configures the kernel rules and where kernel state comes from.
	Kernel KernelSpec `json:"kernel"`
	// Remediation configures starting a live-patch update when a container
	// arrives while the kernel is behind.
	Remediation RemediationSpec `json:"remediation"`
	// Rules holds one entry per container rule.
	Rules RulesSpec `json:"rules"`
	// Exemptions lift some or all rules for the containers they match;
	// drop-ins append to the list.
	Exemptions []Exemption `json:"exemptions"`
	// Audit configures the audit log.
	Audit AuditSpec `json:"audit"`
	// Hook configures the OCI runtime hook.
	Hook HookSpec `json:"hook"`
}

// KernelSpec configures the kernel rules and where kernel state comes from.
type KernelSpec struct {
	// Provider is auto, sysfs, kpatch, kernelcare, canonical, ksplice or klp.
	Provider string `json:"provider"`
	// Tools maps a provider tool name to the path to run it from.
	Tools map[string]string `json:"tools"`
	// RequiredPatches are live patch names that must be enabled and fully
	// transitioned.
	RequiredPatches []string `json:"requiredPatches"`
	// RequiredCVEs are CVE IDs (upper case) that a provider must report fixed.
	RequiredCVEs []string `json:"requiredCVEs"`
	// MinimumVersion is the lowest acceptable effective kernel version,
	// compared the distro's way. Empty: no minimum.
	MinimumVersion string `json:"minimumVersion"`
	// DenyWhenUpdatesPending fails kernelUpdatesPending while the provider
	// reports live-patch updates pending.
	DenyWhenUpdatesPending bool `json:"denyWhenUpdatesPending"`
	// MaxStateAge is how old kernel state may be before it counts as unknown.
	MaxStateAge Duration `json:"maxStateAge"`
	// OnUnknown is the action of the kernelStateUnknown rule.
	OnUnknown Action `json:"onUnknown"`
	// Action is the action of kernelPatches, kernelCVEs, kernelVersion and
	// kernelUpdatesPending.
	Action Action `json:"action"`
}

// RemediationSpec configures starting a live-patch update before admission.
type RemediationSpec struct {
	// Enabled starts a remediation when a container arrives while the
	// kernel is behind.
	Enabled bool `json:"enabled"`
	// Command is an argv (never run through a shell). Empty: the provider's
	// own update command.
	Command []string `json:"command"`
	// Timeout bounds one remediation run.
	Timeout Duration `json:"timeout"`
	// AdmitWait is how long an admission request waits for a running
	// remediation before deciding on the state it has.
	AdmitWait Duration `json:"admitWait"`
}

// RuleSpec is what every container rule accepts.
type RuleSpec struct {
	// Action is the rule's action; empty means spec.defaultAction.
	Action Action `json:"action"`
	// WhenKernelBehind is the rule's action while any kernel rule fails;
	// empty means the same as Action.
	WhenKernelBehind Action `json:"whenKernelBehind"`
}

// CapabilitiesRule configures the capabilities rule.
type CapabilitiesRule struct {
	RuleSpec
	// Allowed are capability names without the CAP_ prefix.
	Allowed []string `json:"allowed"`
}

// HostNamespacesRule configures the hostNamespaces rule.
type HostNamespacesRule struct {
	RuleSpec
	// Namespaces are the namespace types that must not be the host's.
	Namespaces []string `json:"namespaces"`
}

// HostPathMountsRule configures the hostPathMounts rule.
type HostPathMountsRule struct {
	RuleSpec
	// Allowed are the host paths a bind mount (or an overlay directory) may
	// come from: the path itself or anything below it, read-only only when
	// ReadOnly is set. Empty (the default): no host path at all, as Pod
	// Security baseline. Never overrides the built-in protected paths or
	// Denied.
	Allowed []AllowedHostPath `json:"allowed"`
	// Denied host paths: a mount whose source is one of them, inside one of
	// them, or a parent of one of them violates the rule, even when Allowed
	// lists it.
	Denied []string `json:"denied"`
	// AllowReadOnly is deprecated. It used to admit read-only bind mounts of
	// denied paths; host paths are now allow-listed (Allowed with
	// readOnly). false is accepted and has no effect; true is a load error,
	// so that an old policy never silently admits more or less than it says.
	AllowReadOnly bool `json:"allowReadOnly"`
	// RuntimeDirs are the container runtimes' own state directories; a bind
	// mount from inside one of them of the file the runtime writes for
	// /etc/hosts, /etc/hostname, /etc/resolv.conf, /dev/shm or
	// /run/.containerenv onto that destination is the runtime's, not the
	// user's.
	RuntimeDirs []string `json:"runtimeDirs"`
	// KubeletDir is the kubelet's root directory; mounts from
	// <kubeletDir>/pods/<the pod's uid>/ are the pod's own volumes.
	KubeletDir string `json:"kubeletDir"`
	// KubeletVolumePlugins are the kubelet volume plugin directories
	// (<kubeletDir>/pods/<uid>/volumes/<plugin>/) whose mounts are the
	// pod's own whatever backs them: the pod's memory or directory
	// (emptyDir, configMap, secret, projected, downward API) or storage
	// the cluster admin provisioned (CSI, local volumes). A mount under any
	// other plugin directory (kubernetes.io~iscsi, ~nfs, ~fc, ~rbd,
	// flexvolume, ...) is judged by what backs it.
	KubeletVolumePlugins []string `json:"kubeletVolumePlugins"`
}

// AllowedHostPath is one entry of hostPathMounts.allowed, in the spirit of
// PodSecurityPolicy's allowedHostPaths (pathPrefix, readOnly).
type AllowedHostPath struct {
	// Path is an absolute host path; it allows itself and everything below
	// it (whole path elements: /var/log allows /var/log/app, not
	// /var/logs).
	Path string `json:"path"`
	// ReadOnly admits only read-only mounts of Path.
	ReadOnly bool `json:"readOnly"`
}

// ProcMountRule configures the procMount rule.
type ProcMountRule struct {
	RuleSpec
	// MaskedPaths must each be in linux.maskedPaths (or lie under one).
	MaskedPaths []string `json:"maskedPaths"`
	// ReadonlyPaths must each be in linux.readonlyPaths or
	// linux.maskedPaths (or lie under one).
	ReadonlyPaths []string `json:"readonlyPaths"`
}

// HostDevicesRule configures the hostDevices rule.
type HostDevicesRule struct {
	RuleSpec
	// Allowed are the devices, by type and number ("c 10:229", "b 7:*"), a
	// container may have and its device cgroup may allow besides the
	// runtime's defaults. Paths are refused: a device is judged by number.
	Allowed []string `json:"allowed"`
}

// SysctlsRule configures the sysctls rule.
type SysctlsRule struct {
	RuleSpec
	// Allowed are sysctl names (globs) that may be set.
	Allowed []string `json:"allowed"`
}

// SeccompRule configures the seccomp rule.
type SeccompRule struct {
	RuleSpec
	// MustBlock are system call names that the container's seccomp filter
	// must make fail, for every argument.
	MustBlock []string `json:"mustBlock"`
}

// AppArmorRule configures the apparmor rule.
type AppArmorRule struct {
	RuleSpec
	// RequireProfile makes an absent process.apparmorProfile a violation too.
	// Pod Security admits an unset profile; on a host without AppArmor every
	// container has none.
	RequireProfile bool `json:"requireProfile"`
}

// RulesSpec holds one entry per container rule. Kernel rules are configured
// under spec.kernel.
type RulesSpec struct {
	// RunAsRoot: the container process must not run as uid 0 on the host.
	RunAsRoot RuleSpec `json:"runAsRoot"`
	// Privileged: no privileged container (every capability, no masked or
	// read-only paths, a writable sysfs).
	Privileged RuleSpec `json:"privileged"`
	// Capabilities: only the allowed capabilities, in every set.
	Capabilities CapabilitiesRule `json:"capabilities"`
	// HostNamespaces: none of the listed namespaces shared with the host.
	HostNamespaces HostNamespacesRule `json:"hostNamespaces"`
	// HostPathMounts: host paths only where allowed, never a protected one.
	HostPathMounts HostPathMountsRule `json:"hostPathMounts"`
	// HostDevices: no host device besides the runtime's defaults and the
	// allowed ones.
	HostDevices HostDevicesRule `json:"hostDevices"`
	// PrivilegeEscalation: process.noNewPrivileges must be set.
	PrivilegeEscalation RuleSpec `json:"privilegeEscalation"`
	// Seccomp: a seccomp filter that blocks every call in mustBlock.
	Seccomp SeccompRule `json:"seccomp"`
	// AppArmor: no unconfined AppArmor profile.
	AppArmor AppArmorRule `json:"apparmor"`
	// Sysctls: only the allowed sysctls.
	Sysctls SysctlsRule `json:"sysctls"`
	// ProcMount: the listed /proc and /sys paths masked or read-only.
	ProcMount ProcMountRule `json:"procMount"`
}

// Exemption lifts rules for matching containers. Every matcher that is set must
// match; within one matcher any listed value may match.
type Exemption struct {
	// Name is required and unique; it is recorded in the decision and the
	// audit record when the exemption lifted a violation.
	Name string `json:"name"`
	// Namespaces are pod namespaces; empty matches any.
	Namespaces []string `json:"namespaces"`
	// Images are globs: * matches any run of characters (including /), ?
	// one character.
	Images []string `json:"images"`
	// Containers are container names; empty matches any.
	Containers []string `json:"containers"`
	// PodLabels must each be on the pod with this value; empty matches any.
	PodLabels map[string]string `json:"podLabels"`
	// Annotation, when set, makes the exemption apply only to pods or
	// containers that carry this annotation with the value "true". An
	// exemption with an annotation must list the namespaces that may use it.
	Annotation string `json:"annotation"`
	// Rules are the rule IDs lifted; empty means every rule.
	Rules []string `json:"rules"`
}

// AuditSpec configures the audit log.
type AuditSpec struct {
	// Path is the audit log file (absolute), one JSON object per line.
	Path string `json:"path"`
	// MaxSizeMB rotates the file when it reaches this size.
	MaxSizeMB int `json:"maxSizeMB"`
	// MaxBackups is how many rotated files are kept.
	MaxBackups int `json:"maxBackups"`
	// RecordAllowed also records containers admitted with no violation.
	RecordAllowed bool `json:"recordAllowed"`
	// Sync makes the writer fsync after every record.
	Sync bool `json:"sync"`
	// FailClosed denies a container whose audit record cannot be written.
	FailClosed bool `json:"failClosed"`
}

// HookSpec configures the OCI runtime hook.
type HookSpec struct {
	// OnError is deny or allow: what the hook does when it cannot decide
	// (policy or spec unreadable, decision service unreachable).
	OnError string `json:"onError"`
}

// Hook.OnError values.
const (
	OnErrorDeny  = "deny"
	OnErrorAllow = "allow"
)

// Duration is a time.Duration written as a Go duration string ("10m").
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats the duration as Go does, without zero trailing units
// ("10m", "1h30m", "1.5s").
func (d Duration) String() string {
	s := time.Duration(d).String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(fmt.Sprintf("%q", d.String())), nil
}

// UnmarshalJSON reads a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return fmt.Errorf("duration must be a string such as \"10m\"")
	}
	v, err := time.ParseDuration(string(b[1 : len(b)-1]))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Name returns metadata.name.
func (p *Policy) Name() string { return p.Metadata.Name }

// Digest returns "sha256:<hex>" of the effective policy's canonical JSON.
func (p *Policy) Digest() string {
	if p.digest == "" {
		d, err := digestOf(p)
		if err != nil {
			return ""
		}
		return d
	}
	return p.digest
}

// Ref returns the policy's name and digest.
func (p *Policy) Ref() PolicyRef { return PolicyRef{Name: p.Name(), Digest: p.Digest()} }
