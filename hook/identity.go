package hook

import (
	"strings"

	"github.com/patchgate/patchgate/policy"
)

// Runtime names the runtime that created the container, as far as the
// annotations tell.
type Runtime string

const (
	RuntimeContainerd Runtime = "containerd"
	RuntimeCRIO       Runtime = "cri-o"
	RuntimePodman     Runtime = "podman"
	RuntimeUnknown    Runtime = "" // plain runc, or a runtime we do not know
)

// Annotation keys, each from its runtime's source or a recorded run (see
// testdata/README.md).
const (
	// containerd CRI: github.com/containerd/containerd/v2 internal/cri/annotations/annotations.go (v2.4.2).
	annCRIContainerType    = "io.kubernetes.cri.container-type"
	annCRIContainerName    = "io.kubernetes.cri.container-name"
	annCRISandboxID        = "io.kubernetes.cri.sandbox-id"
	annCRISandboxName      = "io.kubernetes.cri.sandbox-name"
	annCRISandboxNamespace = "io.kubernetes.cri.sandbox-namespace"
	annCRISandboxUID       = "io.kubernetes.cri.sandbox-uid"
	annCRIImageName        = "io.kubernetes.cri.image-name"

	// CRI-O: github.com/cri-o/cri-o internal/annotations/annotations.go,
	// and the kubelet's labels (k8s.io/kubernetes
	// pkg/kubelet/kuberuntime/labels.go), which CRI-O also writes into the
	// spec's annotations, one by one and as the JSON io.kubernetes.cri-o.Labels.
	annContainerManager    = "io.container.manager" // "cri-o" or "libpod"
	annCRIOContainerType   = "io.kubernetes.cri-o.ContainerType"
	annCRIOSandboxID       = "io.kubernetes.cri-o.SandboxID"
	annCRIOImageName       = "io.kubernetes.cri-o.ImageName"
	annCRIOImage           = "io.kubernetes.cri-o.Image"
	annKubeletPodName      = "io.kubernetes.pod.name"
	annKubeletPodNamespace = "io.kubernetes.pod.namespace"
	annKubeletPodUID       = "io.kubernetes.pod.uid"
	annKubeletContainer    = "io.kubernetes.container.name"
	// crioInfraName is the container name CRI-O gives every pod's infra
	// container (internal/oci InfraContainerName). No Kubernetes container
	// can have it: container names are DNS labels, lower case.
	crioInfraName = "POD"

	// podman 4.3.1, recorded: io.container.manager=libpod, and
	// io.kubernetes.cri-o.SandboxID holds the pod id for `--pod`.
	managerLibpod = "libpod"
	managerCRIO   = "cri-o"
)

// Identity is who a container is, from its annotations.
type Identity struct {
	Runtime   Runtime
	Pod       policy.PodIdentity
	Container policy.ContainerIdentity
	// Sandbox is set when the container is a pod sandbox (pause or infra
	// container) rather than an application container.
	Sandbox bool
	// SandboxID is the pod sandbox id where the runtime gives one.
	SandboxID string
}

// IdentityFrom reads the pod and container identity from the spec's
// annotations (which the state repeats). id is the container id from the
// state. Unknown runtimes give an identity with only the id.
//
// Per runtime it reads only the keys that runtime writes after whatever a
// pod author can put in the spec, so that the identity is the runtime's
// when the caller trusts that runtime (--identity-from): a pod's
// annotations reach CRI-O's specs, and containerd's with its
// pod_annotations pass-through. io.container.manager is looked at first:
// CRI-O writes it into every application container's spec after the pod's
// annotations, so a pod cannot make its containers look like containerd's.
func IdentityFrom(id string, ann map[string]string) Identity {
	ident := Identity{Container: policy.ContainerIdentity{ID: id}}
	switch {
	case ann[annContainerManager] == managerCRIO && !podmanWrote(ann):
		ident.Runtime = RuntimeCRIO
		crioIdentity(&ident, ann)
	case ann[annContainerManager] == managerCRIO:
		// `podman run --annotation io.container.manager=cri-o` replaces
		// podman's own manager key (recorded with podman 4.3.1,
		// testdata/annotations/podman-claims-crio.json), but not the
		// io.podman.annotations.* keys podman writes for every container:
		// a podman container dressed as CRI-O's, with no identity. Its
		// bundle lies where CRI-O's do (containers-storage), so this is
		// what keeps eval --running and a hooks directory both read from
		// taking its pod identity.
		ident.Runtime = RuntimePodman
	case ann[annContainerManager] == managerLibpod:
		ident.Runtime = RuntimePodman
		ident.SandboxID = ann[annCRIOSandboxID]
		// podman names neither the container nor the pod in the spec; the
		// pod id is the only pod identity it passes.
		ident.Pod.UID = ident.SandboxID
	case ann[annCRIContainerType] != "" || ann[annCRISandboxID] != "":
		// containerd's CRI adds the pod's and the container's annotations
		// that its pod_annotations and container_annotations lists pass
		// first, then its own (github.com/containerd/containerd/v2
		// internal/cri/server/container_create.go buildLinuxSpec L864-873
		// before L927-930, podsandbox/sandbox_run_linux.go L207-212;
		// annotations.DefaultCRIAnnotations): its own keys win.
		ident.Runtime = RuntimeContainerd
		ident.Sandbox = ann[annCRIContainerType] == "sandbox"
		ident.SandboxID = ann[annCRISandboxID]
		ident.Pod.Name = ann[annCRISandboxName]
		ident.Pod.Namespace = ann[annCRISandboxNamespace]
		ident.Pod.UID = ann[annCRISandboxUID]
		ident.Pod.SandboxID = ident.SandboxID
		if !ident.Sandbox {
			// DefaultCRIAnnotations writes the container name and image
			// only into a container's spec; in a sandbox's they could
			// only be a passed-through pod annotation.
			ident.Container.Name = ann[annCRIContainerName]
			ident.Container.Image = ann[annCRIImageName]
		}
	default:
		// Plain runc or another runtime: take the Kubernetes keys if a
		// caller set them, nothing else.
		ident.Pod.Name = ann[annKubeletPodName]
		ident.Pod.Namespace = ann[annKubeletPodNamespace]
		ident.Pod.UID = ann[annKubeletPodUID]
		ident.Container.Name = ann[annKubeletContainer]
	}
	return ident
}

// crioIdentity reads a CRI-O spec's identity (github.com/cri-o/cri-o,
// v1.36, f954a17e). Every pod annotation reaches both of a pod's specs,
// under any name CRI-O does not filter (pkg/config/workloads.go
// FilterDisallowedAnnotations drops only the keys of
// pkg/annotations/v2 AllAllowedAnnotations), so what counts is which keys
// CRI-O writes after them:
//
//   - the infra (pod sandbox) container, server/sandbox_run_linux.go:
//     CRI-O's own io.kubernetes.cri-o.* keys and io.container.manager
//     (setupSandboxAnnotations, L620 and L1033-1055), then the pod's
//     annotations (L684-686), then the pod's labels (L688-690). The labels
//     are the kubelet's: the pod's own with io.kubernetes.pod.name,
//     namespace and uid set after them (kubelet newPodLabels;
//     populateSandboxLabels L839-856 fills them in for other clients), and
//     io.kubernetes.container.name set to "POD" (L1527-1530). So there only
//     those four keys are CRI-O's; the pod can replace ContainerType,
//     SandboxID, ImageName, Image and the io.kubernetes.cri-o.Labels JSON.
//   - an application container, internal/factory/container/container.go
//     SpecAddAnnotations: the sandbox's (pod's) annotations (L203-231),
//     then CRI-O's own keys (L234-291), then the container's annotations
//     and labels, both the kubelet's (L293-299; kubelet
//     newContainerAnnotations and newContainerLabels). There CRI-O's keys
//     and the four kubelet labels are all CRI-O's.
//
// The identity therefore comes from the four kubelet keys, never from the
// labels JSON; the infra container is told by its name "POD", which a pod
// cannot change, and has no image (its image keys are the pod's to set).
func crioIdentity(ident *Identity, ann map[string]string) {
	ident.Pod.Name = ann[annKubeletPodName]
	ident.Pod.Namespace = ann[annKubeletPodNamespace]
	ident.Pod.UID = ann[annKubeletPodUID]
	ident.Container.Name = ann[annKubeletContainer]
	ident.Sandbox = ident.Container.Name == crioInfraName || ann[annCRIOContainerType] == "sandbox"
	if ident.Sandbox {
		return
	}
	ident.SandboxID = ann[annCRIOSandboxID]
	ident.Container.Image = ann[annCRIOImageName]
	if ident.Container.Image == "" {
		ident.Container.Image = ann[annCRIOImage]
	}
}

// podmanWrote reports whether podman wrote the spec: it adds
// io.podman.annotations.* (autoremove, init, privileged, publish-all) to
// every container, and CRI-O writes no io.podman key. Only ever used to take
// trust away.
func podmanWrote(ann map[string]string) bool {
	for k := range ann {
		if strings.HasPrefix(k, "io.podman.") {
			return true
		}
	}
	return false
}
