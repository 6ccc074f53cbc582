package hook

import (
	"encoding/json"

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

	// CRI-O: github.com/cri-o/cri-o pkg/annotations/internal.go, and
	// server/container_create_linux.go, which also copies every kubelet
	// label (io.kubernetes.pod.*, io.kubernetes.container.name) and
	// annotation into the spec's annotations.
	annContainerManager    = "io.container.manager" // "cri-o" or "libpod"
	annCRIOLabels          = "io.kubernetes.cri-o.Labels"
	annCRIOContainerType   = "io.kubernetes.cri-o.ContainerType"
	annCRIOSandboxID       = "io.kubernetes.cri-o.SandboxID"
	annCRIOImageName       = "io.kubernetes.cri-o.ImageName"
	annCRIOImage           = "io.kubernetes.cri-o.Image"
	annKubeletPodName      = "io.kubernetes.pod.name"
	annKubeletPodNamespace = "io.kubernetes.pod.namespace"
	annKubeletPodUID       = "io.kubernetes.pod.uid"
	annKubeletContainer    = "io.kubernetes.container.name"

	// podman 4.3.1, recorded: io.container.manager=libpod, and
	// io.kubernetes.cri-o.SandboxID holds the pod id for `--pod`.
	managerLibpod = "libpod"
	managerCRIO   = "cri-o"

	// maxLabelsJSON bounds the CRI-O labels annotation we decode.
	maxLabelsJSON = 256 << 10
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
func IdentityFrom(id string, ann map[string]string) Identity {
	ident := Identity{Container: policy.ContainerIdentity{ID: id}}
	switch {
	case ann[annCRIContainerType] != "" || ann[annCRISandboxID] != "":
		ident.Runtime = RuntimeContainerd
		ident.Sandbox = ann[annCRIContainerType] == "sandbox"
		ident.SandboxID = ann[annCRISandboxID]
		ident.Pod.Name = ann[annCRISandboxName]
		ident.Pod.Namespace = ann[annCRISandboxNamespace]
		ident.Pod.UID = ann[annCRISandboxUID]
		ident.Container.Name = ann[annCRIContainerName]
		ident.Container.Image = ann[annCRIImageName]
	case ann[annContainerManager] == managerCRIO:
		ident.Runtime = RuntimeCRIO
		ident.Sandbox = ann[annCRIOContainerType] == "sandbox"
		ident.SandboxID = ann[annCRIOSandboxID]
		labels := crioLabels(ann)
		pick := func(key string) string {
			if v := ann[key]; v != "" {
				return v
			}
			return labels[key]
		}
		ident.Pod.Name = pick(annKubeletPodName)
		ident.Pod.Namespace = pick(annKubeletPodNamespace)
		ident.Pod.UID = pick(annKubeletPodUID)
		ident.Container.Name = pick(annKubeletContainer)
		ident.Container.Image = ann[annCRIOImageName]
		if ident.Container.Image == "" {
			ident.Container.Image = ann[annCRIOImage]
		}
	case ann[annContainerManager] == managerLibpod:
		ident.Runtime = RuntimePodman
		ident.SandboxID = ann[annCRIOSandboxID]
		// podman names neither the container nor the pod in the spec; the
		// pod id is the only pod identity it passes.
		ident.Pod.UID = ident.SandboxID
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

// crioLabels decodes CRI-O's JSON copy of the kubelet labels; a malformed
// or oversized value gives no labels (the plain annotations still count).
func crioLabels(ann map[string]string) map[string]string {
	raw := ann[annCRIOLabels]
	if raw == "" || len(raw) > maxLabelsJSON {
		return nil
	}
	var labels map[string]string
	if err := json.Unmarshal([]byte(raw), &labels); err != nil {
		return nil
	}
	return labels
}
