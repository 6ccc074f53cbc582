package psa

// The CRI messages kubelet sends, in the JSON form crictl reads (`crictl runp`, `crictl
// create`): k8s.io/cri-api pkg/apis/runtime/v1 api.proto, whose Go types carry these
// snake_case json tags. Only the fields a security check can see are modelled; enum values
// are the proto numbers.

// NamespaceMode values (runtime.v1.NamespaceMode).
const (
	NamespacePod       = 0
	NamespaceContainer = 1
	NamespaceNode      = 2
)

// SecurityProfile types (runtime.v1.SecurityProfile.ProfileType).
const (
	ProfileRuntimeDefault = 0
	ProfileUnconfined     = 1
	ProfileLocalhost      = 2
)

// MountPropagation values (runtime.v1.MountPropagation).
const (
	PropagationPrivate         = 0
	PropagationHostToContainer = 1
	PropagationBidirectional   = 2
)

type PodSandboxConfig struct {
	Metadata     PodSandboxMetadata     `json:"metadata"`
	Hostname     string                 `json:"hostname,omitempty"`
	PortMappings []PortMapping          `json:"port_mappings,omitempty"`
	Labels       map[string]string      `json:"labels,omitempty"`
	Annotations  map[string]string      `json:"annotations,omitempty"`
	Linux        *LinuxPodSandboxConfig `json:"linux,omitempty"`
}

type PodSandboxMetadata struct {
	Name      string `json:"name"`
	UID       string `json:"uid"`
	Namespace string `json:"namespace"`
	Attempt   uint32 `json:"attempt"`
}

type PortMapping struct {
	Protocol      int    `json:"protocol"`
	ContainerPort int32  `json:"container_port"`
	HostPort      int32  `json:"host_port,omitempty"`
	HostIP        string `json:"host_ip,omitempty"`
}

type LinuxPodSandboxConfig struct {
	CgroupParent    string                       `json:"cgroup_parent,omitempty"`
	SecurityContext *LinuxSandboxSecurityContext `json:"security_context,omitempty"`
	Sysctls         map[string]string            `json:"sysctls,omitempty"`
}

type LinuxSandboxSecurityContext struct {
	NamespaceOptions   *NamespaceOption `json:"namespace_options,omitempty"`
	SelinuxOptions     *SELinuxOption   `json:"selinux_options,omitempty"`
	RunAsUser          *Int64Value      `json:"run_as_user,omitempty"`
	RunAsGroup         *Int64Value      `json:"run_as_group,omitempty"`
	SupplementalGroups []int64          `json:"supplemental_groups,omitempty"`
	Privileged         bool             `json:"privileged,omitempty"`
	Seccomp            *SecurityProfile `json:"seccomp,omitempty"`
}

type NamespaceOption struct {
	Network       int            `json:"network"`
	Pid           int            `json:"pid"`
	Ipc           int            `json:"ipc"`
	UsernsOptions *UserNamespace `json:"userns_options,omitempty"`
}

type UserNamespace struct {
	Mode int         `json:"mode"`
	Uids []IDMapping `json:"uids,omitempty"`
	Gids []IDMapping `json:"gids,omitempty"`
}

type IDMapping struct {
	HostID      uint32 `json:"host_id"`
	ContainerID uint32 `json:"container_id"`
	Length      uint32 `json:"length"`
}

type Int64Value struct {
	Value int64 `json:"value"`
}

type SELinuxOption struct {
	User  string `json:"user,omitempty"`
	Role  string `json:"role,omitempty"`
	Type  string `json:"type,omitempty"`
	Level string `json:"level,omitempty"`
}

type SecurityProfile struct {
	ProfileType  int    `json:"profile_type"`
	LocalhostRef string `json:"localhost_ref,omitempty"`
}

type ContainerConfig struct {
	Metadata ContainerMetadata     `json:"metadata"`
	Image    ImageSpec             `json:"image"`
	Mounts   []Mount               `json:"mounts,omitempty"`
	Linux    *LinuxContainerConfig `json:"linux,omitempty"`
}

type ContainerMetadata struct {
	Name    string `json:"name"`
	Attempt uint32 `json:"attempt"`
}

type ImageSpec struct {
	Image string `json:"image"`
}

type Mount struct {
	ContainerPath     string `json:"container_path"`
	HostPath          string `json:"host_path"`
	Readonly          bool   `json:"readonly,omitempty"`
	SelinuxRelabel    bool   `json:"selinux_relabel,omitempty"`
	Propagation       int    `json:"propagation,omitempty"`
	RecursiveReadOnly bool   `json:"recursive_read_only,omitempty"`
}

type LinuxContainerConfig struct {
	SecurityContext *LinuxContainerSecurityContext `json:"security_context,omitempty"`
}

type LinuxContainerSecurityContext struct {
	Capabilities       *Capability      `json:"capabilities,omitempty"`
	Privileged         bool             `json:"privileged,omitempty"`
	NamespaceOptions   *NamespaceOption `json:"namespace_options,omitempty"`
	SelinuxOptions     *SELinuxOption   `json:"selinux_options,omitempty"`
	RunAsUser          *Int64Value      `json:"run_as_user,omitempty"`
	RunAsGroup         *Int64Value      `json:"run_as_group,omitempty"`
	RunAsUsername      string           `json:"run_as_username,omitempty"`
	ReadonlyRootfs     bool             `json:"readonly_rootfs,omitempty"`
	SupplementalGroups []int64          `json:"supplemental_groups,omitempty"`
	NoNewPrivs         bool             `json:"no_new_privs,omitempty"`
	MaskedPaths        []string         `json:"masked_paths,omitempty"`
	ReadonlyPaths      []string         `json:"readonly_paths,omitempty"`
	Seccomp            *SecurityProfile `json:"seccomp,omitempty"`
	Apparmor           *SecurityProfile `json:"apparmor,omitempty"`
	ApparmorProfile    string           `json:"apparmor_profile,omitempty"`
}

type Capability struct {
	AddCapabilities  []string `json:"add_capabilities,omitempty"`
	DropCapabilities []string `json:"drop_capabilities,omitempty"`
}
