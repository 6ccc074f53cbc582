package plugin

import (
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/patchgate/patchgate/hook"
	"github.com/patchgate/patchgate/policy"
)

// crioAnnotations reads the annotations of a spec CRI-O writes for the
// pod shop/cart-0 whose author claimed kube-proxy under every identity key
// (../hook/testdata/crio, see its README). CRI-O's NRI sends a container
// the spec's annotations, and a pod sandbox the pod's own annotations,
// which the infra spec records as io.kubernetes.cri-o.Annotations.
func crioAnnotations(t *testing.T, spec string) map[string]string {
	t.Helper()
	b, err := os.ReadFile("../hook/testdata/crio/" + spec + "/config.json")
	if err != nil {
		t.Fatal(err)
	}
	var s struct{ Annotations map[string]string }
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return s.Annotations
}

// crioExemptionPolicy enforces rule and exempts from it kube-proxy's image
// in the namespace shop: what the forged pod claims to be.
func crioExemptionPolicy(t *testing.T, rule string) *policy.Policy {
	t.Helper()
	p, err := policy.LoadBytes("exempt.yaml", []byte(`apiVersion: patchgate.dev/v1alpha1
kind: NodePolicy
metadata: {name: exempt}
spec:
  defaultAction: off
  kernel: {action: off, onUnknown: off}
  rules:
    `+rule+`: {action: enforce}
  exemptions:
    - name: kube-proxy
      namespaces: [shop]
      images: ["registry.k8s.io/kube-proxy:*"]
      rules: [`+rule+`]
`))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCRIOContainerIdentity: on CRI-O the container's image comes from
// io.kubernetes.cri-o.ImageName, which CRI-O writes after the pod's
// annotations, and its name from NRI; containerd's io.kubernetes.cri.*
// keys there are the pod author's (REVIEW F2), and claiming kube-proxy's
// image with them must not buy its exemption.
func TestCRIOContainerIdentity(t *testing.T) {
	pol := crioExemptionPolicy(t, "hostDevices")
	pod, ctr := loadCapture(t, "device-fuse")
	pod.Name, pod.Namespace, pod.Uid = "cart-0", "shop", "5d6e7f80-9a0b-4c1d-8e2f-3a4b5c6d7e8f"
	pod.Annotations = nil
	ctr.Name = "cart"
	ctr.Annotations = crioAnnotations(t, "app-forged")
	if ctr.Annotations["io.kubernetes.cri.image-name"] != "registry.k8s.io/kube-proxy:v1.31.0" {
		t.Fatalf("fixture: the forged image key is %q", ctr.Annotations["io.kubernetes.cri.image-name"])
	}

	w, err := ContainerWorkload(pod, ctr, hook.IdentityFromCRIO)
	if err != nil {
		t.Fatal(err)
	}
	if w.Container.Name != "cart" || w.Container.Image != "quay.io/example/cart:2.1" {
		t.Errorf("CRI-O container identity = %+v, want cart, quay.io/example/cart:2.1", w.Container)
	}
	if d := policy.Evaluate(pol, w, nil, time.Now()); d.Verdict != policy.Deny || len(d.Exemptions) != 0 {
		t.Errorf("forged image: verdict %s, exemptions %v; want deny, none", d.Verdict, d.Exemptions)
	}

	// The exemption does match the image CRI-O itself names.
	ctr.Annotations["io.kubernetes.cri-o.ImageName"] = "registry.k8s.io/kube-proxy:v1.31.0"
	w, err = ContainerWorkload(pod, ctr, hook.IdentityFromCRIO)
	if err != nil {
		t.Fatal(err)
	}
	if d := policy.Evaluate(pol, w, nil, time.Now()); d.Verdict != policy.Allow || len(d.Exemptions) == 0 {
		t.Errorf("CRI-O's own image: verdict %s, exemptions %v; want allow by kube-proxy", d.Verdict, d.Exemptions)
	}

	// Connected to containerd, the CRI-O keys are not containerd's either:
	// only NRI's fields count.
	w, err = ContainerWorkload(pod, ctr, hook.IdentityFromContainerd)
	if err != nil {
		t.Fatal(err)
	}
	if w.Container.Name != "cart" || w.Container.Image != ctr.GetImage().GetName() {
		t.Errorf("CRI-O-shaped container on containerd: identity %+v, want NRI's name and image %q", w.Container, ctr.GetImage().GetName())
	}
}

// TestCRIOPodIdentity: CRI-O's NRI pod annotations are the pod's own; a
// forged io.kubernetes.cri.podsandbox.image-name gives the pod no image
// there, so an image-scoped exemption does not cover its host PID. (JudgePod
// drops the pod's image before judging in any case; PodWorkload must not
// hand the forged one to anyone else.) On containerd, which writes that key
// itself, it is still read.
func TestCRIOPodIdentity(t *testing.T) {
	pol := crioExemptionPolicy(t, "hostNamespaces")
	pod, _ := loadCapture(t, "host-pid")
	pod.Name, pod.Namespace = "cart-0", "shop"
	var own map[string]string
	if err := json.Unmarshal([]byte(crioAnnotations(t, "infra-forged")["io.kubernetes.cri-o.Annotations"]), &own); err != nil {
		t.Fatal(err)
	}
	own["io.kubernetes.cri.podsandbox.image-name"] = "registry.k8s.io/kube-proxy:v1.31.0"
	pod.Annotations = own

	w, err := PodWorkload(pod, hook.IdentityFromCRIO)
	if err != nil {
		t.Fatal(err)
	}
	if w.Container.Image != "" || w.Pod.Namespace != "shop" {
		t.Errorf("CRI-O pod identity = %+v %+v, want namespace shop and no image", w.Pod, w.Container)
	}
	if d := policy.Evaluate(pol, w, nil, time.Now()); d.Verdict != policy.Deny || len(d.Exemptions) != 0 {
		t.Errorf("CRI-O pod with a forged image: verdict %s, exemptions %v; want deny, none", d.Verdict, d.Exemptions)
	}
	if d := JudgePod(pol, w, nil, time.Now()); d.Verdict != policy.Deny {
		t.Errorf("CRI-O pod with a forged image: JudgePod verdict %s, want deny", d.Verdict)
	}

	w, err = PodWorkload(pod, hook.IdentityFromContainerd)
	if err != nil {
		t.Fatal(err)
	}
	if w.Container.Image != "registry.k8s.io/kube-proxy:v1.31.0" {
		t.Errorf("containerd pod image = %q, want its io.kubernetes.cri.podsandbox.image-name", w.Container.Image)
	}
}
