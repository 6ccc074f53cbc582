// Package specinput reads the container descriptions that patchgate judges
// offline (`patchgate eval`, `patchgate test`) and turns them into a
// policy.Workload the way the node's front ends would:
//
//   - an OCI runtime spec (a bundle's config.json);
//   - `crictl inspect` output of a container under containerd's CRI
//     (`{"status":{...},"info":{"sandboxID":...,"pid":...,"runtimeSpec":{...},"config":{...}}}`):
//     info.runtimeSpec is the spec the container runs with, after every NRI
//     plugin's adjustments, and status names the container;
//   - `crictl inspectp` output of its pod sandbox: status gives the pod's
//     namespace, name, UID, labels and annotations (what the NRI plugin gets
//     as the pod), info.runtimeSpec the sandbox's spec (which namespaces the
//     pod shares with the host).
//
// Load tells them apart by their shape; Workload combines a container and,
// optionally, its pod. Every input is untrusted: a key given twice, trailing
// data, a document that is none of the three, or a container and a pod that
// do not belong together is an error, never a workload with less in it.
package specinput

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/patchgate/patchgate/hook"
	"github.com/patchgate/patchgate/policy"
)

// ErrInvalid: input that is not an OCI spec nor crictl inspect output that
// can be judged. Every error Load and Workload return wraps it.
var ErrInvalid = errors.New("invalid container input")

// MaxSize bounds one input document.
const MaxSize = 16 << 20

// Kind says what an input was.
type Kind string

const (
	// KindSpec is an OCI runtime spec (config.json).
	KindSpec Kind = "oci-spec"
	// KindContainer is `crictl inspect` output of one container.
	KindContainer Kind = "crictl-inspect"
	// KindPod is `crictl inspectp` output of one pod sandbox.
	KindPod Kind = "crictl-inspectp"
)

// Input is one decoded document.
type Input struct {
	Kind Kind
	// Spec is the OCI runtime spec: the document itself, or crictl's
	// info.runtimeSpec. Never nil.
	Spec *specs.Spec
	// The rest is set only for crictl output.
	//
	// ID is status.id: the container's or the sandbox's.
	ID string
	// SandboxID is a container's info.sandboxID (its pod's ID).
	SandboxID string
	// Pid is info.pid (0 when the task does not run).
	Pid int
	// State is status.state (CONTAINER_RUNNING, SANDBOX_READY, ...).
	State string
	// Name is status.metadata.name: the container's or the pod's name.
	Name string
	// Namespace and UID are a pod's status.metadata namespace and uid.
	Namespace string
	UID       string
	// Image is a container's status.image.image.
	Image string
	// Labels and Annotations are status.labels and status.annotations: the
	// CRI config's (for a pod, the Kubernetes pod's labels and annotations).
	Labels      map[string]string
	Annotations map[string]string
}

// Load reads one document from r (at most MaxSize bytes) and decodes it.
func Load(r io.Reader) (*Input, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrInvalid, MaxSize)
	}
	return Parse(data)
}

// crictlDoc is the part of `crictl inspect` and `crictl inspectp` output
// read here. status is the CRI ContainerStatus or PodSandboxStatus as crictl
// prints it (protobuf JSON names); info is the runtime's verbose info,
// containerd's under "info".
type crictlDoc struct {
	Status *struct {
		ID       string `json:"id"`
		State    string `json:"state"`
		Metadata *struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
			UID       string `json:"uid"`
		} `json:"metadata"`
		Image *struct {
			Image string `json:"image"`
		} `json:"image"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	} `json:"status"`
	Info *struct {
		SandboxID   *string         `json:"sandboxID"`
		Pid         int             `json:"pid"`
		RuntimeSpec json.RawMessage `json:"runtimeSpec"`
	} `json:"info"`
}

// Parse decodes one document: crictl output when its top level has both
// "status" and "info", otherwise an OCI runtime spec.
func Parse(data []byte) (*Input, error) {
	if err := policy.CheckStrictJSON(data); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if top == nil {
		return nil, fmt.Errorf("%w: not a JSON object", ErrInvalid)
	}
	_, hasStatus := top["status"]
	_, hasInfo := top["info"]
	if !hasStatus && !hasInfo {
		spec, err := policy.ParseSpec(data)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		if err := judgeable(spec); err != nil {
			return nil, err
		}
		return &Input{Kind: KindSpec, Spec: spec}, nil
	}
	return parseCrictl(data)
}

// judgeable refuses a spec that is not a Linux container's: something that
// merely decodes (`{}`, another tool's JSON) is not a container to judge.
func judgeable(s *specs.Spec) error {
	if s.Process == nil {
		return fmt.Errorf("%w: not an OCI runtime spec of a container: process is missing", ErrInvalid)
	}
	if s.Linux == nil {
		return fmt.Errorf("%w: not an OCI runtime spec of a Linux container: linux is missing", ErrInvalid)
	}
	return nil
}

func parseCrictl(data []byte) (*Input, error) {
	var doc crictlDoc
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%w: crictl inspect output: %v", ErrInvalid, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		// `crictl inspect a b` prints one document per container.
		return nil, fmt.Errorf("%w: trailing data after the JSON object (one container per document: crictl inspect ID)", ErrInvalid)
	}
	switch {
	case doc.Status == nil:
		return nil, fmt.Errorf("%w: crictl inspect output without status", ErrInvalid)
	case doc.Info == nil:
		return nil, fmt.Errorf("%w: crictl inspect output without info (the runtime's verbose info; crictl inspect -o json shows it)", ErrInvalid)
	case len(doc.Info.RuntimeSpec) == 0 || string(doc.Info.RuntimeSpec) == "null":
		return nil, fmt.Errorf("%w: crictl inspect output without info.runtimeSpec (containerd's; other runtimes: judge the bundle's config.json)", ErrInvalid)
	case doc.Status.ID == "":
		return nil, fmt.Errorf("%w: crictl inspect output without status.id", ErrInvalid)
	case doc.Status.Metadata == nil || doc.Status.Metadata.Name == "":
		return nil, fmt.Errorf("%w: crictl inspect output without status.metadata.name", ErrInvalid)
	case doc.Info.Pid < 0:
		return nil, fmt.Errorf("%w: info.pid %d is negative", ErrInvalid, doc.Info.Pid)
	}
	spec, err := policy.ParseSpec(doc.Info.RuntimeSpec)
	if err != nil {
		return nil, fmt.Errorf("%w: info.runtimeSpec: %v", ErrInvalid, err)
	}
	if err := judgeable(spec); err != nil {
		return nil, fmt.Errorf("info.runtimeSpec: %w", err)
	}
	in := &Input{
		Spec:        spec,
		ID:          doc.Status.ID,
		Pid:         doc.Info.Pid,
		State:       doc.Status.State,
		Name:        doc.Status.Metadata.Name,
		Labels:      doc.Status.Labels,
		Annotations: doc.Status.Annotations,
	}
	// A container has a sandbox; a pod sandbox has a namespace and UID in
	// its metadata and no sandbox of its own.
	switch {
	case doc.Info.SandboxID != nil:
		if *doc.Info.SandboxID == "" {
			return nil, fmt.Errorf("%w: crictl inspect output with an empty info.sandboxID", ErrInvalid)
		}
		if doc.Status.Metadata.Namespace != "" || doc.Status.Metadata.UID != "" {
			return nil, fmt.Errorf("%w: crictl output with both a sandboxID (a container) and a pod's metadata namespace/uid", ErrInvalid)
		}
		in.Kind, in.SandboxID = KindContainer, *doc.Info.SandboxID
		if doc.Status.Image != nil {
			in.Image = doc.Status.Image.Image
		}
		if err := checkContainerAnnotations(in); err != nil {
			return nil, err
		}
	case doc.Status.Metadata.Namespace != "" || doc.Status.Metadata.UID != "":
		in.Kind = KindPod
		in.Namespace, in.UID = doc.Status.Metadata.Namespace, doc.Status.Metadata.UID
		if err := checkPodAnnotations(in); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%w: crictl output that is neither a container's (info.sandboxID) nor a pod's (status.metadata.namespace)", ErrInvalid)
	}
	return in, nil
}

// checkContainerAnnotations refuses a container whose spec's CRI annotations
// (what the hook and eval take the identity from) say another container or
// pod than crictl's status does: one of them was edited, and which one
// the runtime would act on cannot be told.
func checkContainerAnnotations(in *Input) error {
	ann := in.Spec.Annotations
	for _, c := range []struct{ key, want, what string }{
		{policy.AnnotationContainerName, in.Name, "status.metadata.name"},
		{annotationSandboxID, in.SandboxID, "info.sandboxID"},
	} {
		if v, ok := ann[c.key]; ok && v != c.want {
			return fmt.Errorf("%w: info.runtimeSpec annotation %s=%q differs from %s %q", ErrInvalid, c.key, v, c.what, c.want)
		}
	}
	if t, ok := ann[policy.AnnotationContainerType]; ok && t != "container" {
		return fmt.Errorf("%w: info.runtimeSpec annotation %s=%q: not a container", ErrInvalid, policy.AnnotationContainerType, t)
	}
	return nil
}

// checkPodAnnotations: the same for a pod sandbox's spec.
func checkPodAnnotations(in *Input) error {
	ann := in.Spec.Annotations
	for _, c := range []struct{ key, want, what string }{
		{policy.AnnotationSandboxName, in.Name, "status.metadata.name"},
		{policy.AnnotationSandboxNamespace, in.Namespace, "status.metadata.namespace"},
		{policy.AnnotationSandboxUID, in.UID, "status.metadata.uid"},
		{annotationSandboxID, in.ID, "status.id"},
	} {
		if v, ok := ann[c.key]; ok && v != c.want {
			return fmt.Errorf("%w: info.runtimeSpec annotation %s=%q differs from %s %q", ErrInvalid, c.key, v, c.what, c.want)
		}
	}
	if t, ok := ann[policy.AnnotationContainerType]; ok && t != "sandbox" {
		return fmt.Errorf("%w: info.runtimeSpec annotation %s=%q: not a pod sandbox", ErrInvalid, policy.AnnotationContainerType, t)
	}
	return nil
}

// annotationSandboxID is the CRI annotation containerd sets on both specs.
const annotationSandboxID = "io.kubernetes.cri.sandbox-id"

// Workload builds the workload of container ctr (an OCI spec or crictl
// inspect output) with, when given, its pod (a sandbox spec or crictl
// inspectp output), the way the node's front ends see that container, and
// says where its identity came from:
//
//   - the spec is judged by policy.FromSpec with opts (the caller says how
//     much of the host it may look at);
//   - a plain spec's annotations name the pod and the container only when
//     identityFrom names the runtime that wrote them (hook.IdentityFrom
//     and --identity-from, as the hook reads them: none, containerd or
//     crio); otherwise only opts.Pod and opts.Container do;
//   - from crictl output, the container's ID, name and image, and the pod's
//     namespace, name, UID, labels and annotations are those containerd
//     gives the NRI plugin (its PodSandbox is the sandbox's CRI config);
//     without the pod's, a container's spec names its pod when it is
//     containerd's (its own io.kubernetes.cri.sandbox-id is crictl's
//     info.sandboxID) or identityFrom's runtime's;
//   - opts.Pod and opts.Container fill only what the input does not say.
//
// A crictl pod that is not ctr's sandbox, or a pod given as a container, is
// an error.
func Workload(ctr, pod *Input, identityFrom string, opts policy.FromSpecOptions) (*policy.Workload, string, error) {
	if ctr == nil || ctr.Spec == nil {
		return nil, "", fmt.Errorf("%w: no container", ErrInvalid)
	}
	if ctr.Kind == KindPod {
		return nil, "", fmt.Errorf("%w: crictl inspectp output (a pod sandbox %q) given as the container: give the container's crictl inspect output, and the pod's as the sandbox", ErrInvalid, ctr.Name)
	}
	switch identityFrom {
	case hook.IdentityFromNone, hook.IdentityFromContainerd, hook.IdentityFromCRIO:
	default:
		return nil, "", fmt.Errorf("--identity-from %q: want none, containerd or crio", identityFrom)
	}
	var sandbox *specs.Spec
	if pod != nil {
		if pod.Kind == KindContainer {
			return nil, "", fmt.Errorf("%w: crictl inspect output of a container (%q) given as the pod sandbox: give the pod's crictl inspectp output", ErrInvalid, pod.Name)
		}
		if pod.Kind == KindPod && ctr.Kind == KindContainer && pod.ID != ctr.SandboxID {
			return nil, "", fmt.Errorf("%w: the pod sandbox %s is not container %q's (its info.sandboxID is %s)", ErrInvalid, pod.ID, ctr.Name, ctr.SandboxID)
		}
		if pod.Kind == KindPod && ctr.Kind == KindSpec {
			if id := ctr.Spec.Annotations[annotationSandboxID]; id != pod.ID {
				return nil, "", fmt.Errorf("%w: the pod sandbox %s is not the container's (its annotation %s is %q)", ErrInvalid, pod.ID, annotationSandboxID, id)
			}
		}
		sandbox = pod.Spec
	}
	o := opts
	// What the spec's annotations say, read as the hook reads them, and
	// whether the runtime that wrote them vouches for them here.
	ident := hook.IdentityFrom(ctr.ID, ctr.Spec.Annotations)
	vouched := hook.Vouches(identityFrom, ident.Runtime)
	src := "flags (--identity-from " + identityFrom + ": the spec's annotations name nobody)"
	if vouched {
		src = runtimeName(string(ident.Runtime)) + "'s annotations (--identity-from " + identityFrom + ")"
	} else if identityFrom != hook.IdentityFromNone {
		src = "flags (the spec's annotations are not " + runtimeName(identityFrom) + "'s)"
	}
	if ctr.Kind == KindContainer {
		// The CRI status, not the caller's guesses, names the container.
		o.Container.ID = ctr.ID
		o.Container.Name = ctr.Name
		if ctr.Image != "" {
			o.Container.Image = ctr.Image
		}
		// containerd's own sandbox-id, equal to crictl's info.sandboxID
		// (parseCrictl checked): the spec is containerd's, whose keys
		// win over any pod annotation passed through (hook.IdentityFrom).
		// A CRI-O spec says io.container.manager=cri-o and is never taken
		// for containerd's.
		if ident.Runtime == hook.RuntimeContainerd && ident.SandboxID == ctr.SandboxID {
			vouched = true
			src = "crictl inspect: its status and containerd's annotations"
		} else if !vouched {
			src = "crictl inspect's status; the pod from flags (the spec's annotations name nobody)"
		}
	}
	if vouched {
		fill(&o.Pod.Namespace, ident.Pod.Namespace)
		fill(&o.Pod.Name, ident.Pod.Name)
		fill(&o.Pod.UID, ident.Pod.UID)
		fill(&o.Pod.SandboxID, ident.Pod.SandboxID)
		if ctr.Kind != KindContainer {
			fill(&o.Container.Name, ident.Container.Name)
			fill(&o.Container.Image, ident.Container.Image)
		}
		o.PodAnnotationsFromSandbox = true
		o.PodSysctlsInSandbox = ident.Runtime == hook.RuntimeContainerd && !ident.Sandbox
	}
	if pod != nil && pod.Kind == KindPod {
		// The container's spec names its pod too; both must agree.
		ann := ctr.Spec.Annotations
		for _, c := range []struct{ key, want string }{
			{policy.AnnotationSandboxNamespace, pod.Namespace},
			{policy.AnnotationSandboxName, pod.Name},
			{policy.AnnotationSandboxUID, pod.UID},
		} {
			if v, ok := ann[c.key]; ok && v != c.want {
				return nil, "", fmt.Errorf("%w: the container's annotation %s=%q differs from its pod sandbox's %q", ErrInvalid, c.key, v, c.want)
			}
		}
		// What containerd 2.x hands the NRI plugin as the pod: the CRI
		// config's namespace, name, UID and labels, and its annotations
		// with the sandbox spec's over them.
		podAnn := make(map[string]string, len(pod.Annotations)+len(pod.Spec.Annotations))
		for k, v := range pod.Annotations {
			podAnn[k] = v
		}
		for k, v := range pod.Spec.Annotations {
			podAnn[k] = v
		}
		o.Pod = policy.PodIdentity{
			Namespace:   pod.Namespace,
			Name:        pod.Name,
			UID:         pod.UID,
			SandboxID:   pod.ID,
			Labels:      pod.Labels,
			Annotations: podAnn,
		}
		o.PodAnnotationsFromSandbox = true
		src = "crictl inspectp's status (the pod)"
		if ctr.Kind == KindContainer {
			src += " and crictl inspect's (the container)"
		} else if vouched {
			src += " and " + runtimeName(string(ident.Runtime)) + "'s annotations (the container)"
		}
	}
	w, err := policy.FromSpec(ctr.Spec, sandbox, o)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return w, src, nil
}

// fill sets *dst to v when v says something.
func fill(dst *string, v string) {
	if v != "" {
		*dst = v
	}
}

// runtimeName is how the identity's source names a runtime (a
// hook.Runtime or an --identity-from value).
func runtimeName(r string) string {
	switch r {
	case string(hook.RuntimeCRIO), hook.IdentityFromCRIO:
		return "CRI-O"
	}
	return r
}
