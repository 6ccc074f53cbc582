package specinput

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/patchgate/patchgate/policy"
)

// The fixtures are real crictl output of containerd v2.4.2
// (test/e2e TestCrictlInspectInput wrote them).
const fixtures = "../../examples/tests/specs"

func load(t *testing.T, name string) (*Input, []byte) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(fixtures, name))
	if err != nil {
		t.Fatal(err)
	}
	in, err := Load(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return in, data
}

func TestCrictlInspect(t *testing.T) {
	ctr, _ := load(t, "nonroot.inspect.json")
	pod, _ := load(t, "nonroot.inspectp.json")
	if ctr.Kind != KindContainer || ctr.Name != "nonroot" || ctr.SandboxID != pod.ID || ctr.Pid <= 0 || ctr.State != "CONTAINER_RUNNING" ||
		ctr.Image != "docker.io/library/busybox:1.35.0" || ctr.Spec.Process.User.UID != 1000 {
		t.Errorf("container %+v", ctr)
	}
	if pod.Kind != KindPod || pod.Name != "web" || pod.Namespace != "shop" || pod.UID != "uid-shop-web" || pod.Labels["app"] != "web" ||
		pod.Annotations["example.com/owner"] != "team-a" {
		t.Errorf("pod %+v", pod)
	}
	w, _, err := Workload(ctr, pod, "none", policy.FromSpecOptions{Source: "eval", Pod: policy.PodIdentity{Namespace: "ignored"}})
	if err != nil {
		t.Fatal(err)
	}
	// The pod as containerd hands it to the NRI plugin.
	if w.Pod.Namespace != "shop" || w.Pod.Name != "web" || w.Pod.UID != "uid-shop-web" || w.Pod.Labels["app"] != "web" ||
		w.Pod.Annotations["example.com/owner"] != "team-a" || w.Pod.Annotations[policy.AnnotationContainerType] != "sandbox" ||
		w.Container.ID != ctr.ID || w.Container.Name != "nonroot" || w.Container.Image != "docker.io/library/busybox:1.35.0" ||
		w.Pod.SandboxID != pod.ID {
		t.Errorf("identity %+v %+v", w.Pod, w.Container)
	}
	// The sandbox spec says the pod has its own namespaces.
	if slices.ContainsFunc(w.HostNamespaces, func(ns string) bool { return slices.Contains([]string{"pid", "network", "ipc", "uts"}, ns) }) ||
		len(w.UnknownNamespaces) != 0 || !w.Seen.Has(policy.FieldHostNamespaces) {
		t.Errorf("namespaces: host %v unknown %v", w.HostNamespaces, w.UnknownNamespaces)
	}
	// Without the pod: identity from the spec's CRI annotations, no labels,
	// namespaces joined by path unknown.
	w, _, err = Workload(ctr, nil, "none", policy.FromSpecOptions{Source: "eval"})
	if err != nil {
		t.Fatal(err)
	}
	if w.Pod.Namespace != "shop" || w.Pod.Name != "web" || w.Pod.SandboxID != pod.ID || w.Pod.Labels != nil || len(w.UnknownNamespaces) == 0 {
		t.Errorf("without the pod: %+v unknown %v", w.Pod, w.UnknownNamespaces)
	}
	hp, _ := load(t, "hostpid.inspect.json")
	hpp, _ := load(t, "hostpid.inspectp.json")
	if w, _, err := Workload(hp, hpp, "none", policy.FromSpecOptions{}); err != nil || !slices.Contains(w.HostNamespaces, "pid") || slices.Contains(w.HostNamespaces, "network") {
		t.Errorf("hostPID pod: %v %v", w.HostNamespaces, err)
	}
}

func TestMismatchRefused(t *testing.T) {
	ctr, data := load(t, "root.inspect.json")
	other, _ := load(t, "exporter.inspectp.json")
	own, _ := load(t, "root.inspectp.json")
	for name, c := range map[string]struct{ ctr, pod *Input }{
		"another pod":          {ctr, other},
		"pod as the container": {own, nil},
		"container as the pod": {ctr, ctr},
	} {
		if _, _, err := Workload(c.ctr, c.pod, "none", policy.FromSpecOptions{}); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// A spec whose CRI annotations name another container than the status.
	edited := bytes.Replace(data, []byte(`"io.kubernetes.cri.container-name": "root"`), []byte(`"io.kubernetes.cri.container-name": "other"`), 1)
	if bytes.Equal(edited, data) {
		t.Fatal("fixture lacks the container-name annotation")
	}
	if _, err := Parse(edited); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "differs from status.metadata.name") {
		t.Errorf("edited name: %v", err)
	}
	// Two documents (crictl inspect of two containers).
	if _, err := Parse(append(append([]byte{}, data...), data...)); !errors.Is(err, ErrInvalid) {
		t.Errorf("two documents: %v", err)
	}
}
