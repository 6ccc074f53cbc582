package policy

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Identity annotations count only when the caller trusts them (REVIEW
// AF1): `podman run --annotation io.kubernetes.cri.sandbox-namespace=...`
// must not name a pod.
func TestFromSpecIdentityAnnotationsNeedTrust(t *testing.T) {
	spec := &specs.Spec{
		Process: &specs.Process{},
		Linux:   &specs.Linux{},
		Annotations: map[string]string{
			AnnotationSandboxNamespace: "kube-system", AnnotationSandboxName: "agent",
			AnnotationContainerName: "c", AnnotationImageName: "img",
			annotationPodNamespace: "kube-system",
		},
	}
	sandbox := &specs.Spec{Linux: &specs.Linux{}, Annotations: map[string]string{"a": "b"}}
	w, err := FromSpec(spec, sandbox, FromSpecOptions{Container: ContainerIdentity{ID: "id"}})
	if err != nil {
		t.Fatal(err)
	}
	if w.Pod.Namespace != "" || w.Pod.Name != "" || w.Container.Name != "" || w.Container.Image != "" || w.Pod.Annotations != nil || w.Container.ID != "id" {
		t.Fatalf("untrusted annotations used: pod %+v container %+v", w.Pod, w.Container)
	}
	w, err = FromSpec(spec, sandbox, FromSpecOptions{TrustAnnotations: true})
	if err != nil {
		t.Fatal(err)
	}
	if w.Pod.Namespace != "kube-system" || w.Pod.Name != "agent" || w.Container.Name != "c" || w.Container.Image != "img" || w.Pod.Annotations["a"] != "b" {
		t.Fatalf("trusted annotations not used: pod %+v container %+v", w.Pod, w.Container)
	}
}
