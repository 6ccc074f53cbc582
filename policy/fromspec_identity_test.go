package policy

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// FromSpec takes the identity only from its caller, never from the spec's
// annotations (REVIEW AF1, F1): which keys a runtime wrote itself depends
// on the runtime, and only the front end knows it. `podman run --annotation
// io.kubernetes.cri.sandbox-namespace=...`, or a CRI-O pod annotation of
// that name, must not name a pod.
func TestFromSpecNeverReadsIdentityAnnotations(t *testing.T) {
	spec := &specs.Spec{
		Process: &specs.Process{},
		Linux:   &specs.Linux{},
		Annotations: map[string]string{
			AnnotationSandboxNamespace: "kube-system", AnnotationSandboxName: "agent",
			AnnotationContainerName: "c", AnnotationImageName: "img",
			"io.kubernetes.pod.namespace": "kube-system", "io.kubernetes.pod.name": "agent",
			"io.kubernetes.pod.uid": "u", "io.kubernetes.container.name": "c",
		},
	}
	sandbox := &specs.Spec{Linux: &specs.Linux{}, Annotations: map[string]string{"a": "b"}}
	w, err := FromSpec(spec, sandbox, FromSpecOptions{Container: ContainerIdentity{ID: "id"}})
	if err != nil {
		t.Fatal(err)
	}
	if w.Pod.Namespace != "" || w.Pod.Name != "" || w.Container.Name != "" || w.Container.Image != "" || w.Pod.Annotations != nil || w.Container.ID != "id" {
		t.Fatalf("annotations used: pod %+v container %+v", w.Pod, w.Container)
	}
	w, err = FromSpec(spec, sandbox, FromSpecOptions{
		PodAnnotationsFromSandbox: true,
		Pod:                       PodIdentity{Namespace: "shop", Name: "cart-0"},
		Container:                 ContainerIdentity{Name: "cart"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if w.Pod.Namespace != "shop" || w.Pod.Name != "cart-0" || w.Pod.UID != "" || w.Container.Name != "cart" || w.Container.Image != "" || w.Pod.Annotations["a"] != "b" {
		t.Fatalf("pod %+v container %+v", w.Pod, w.Container)
	}
}
