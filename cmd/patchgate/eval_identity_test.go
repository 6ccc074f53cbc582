package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// identityPolicy exempts kube-system, and kube-proxy's image, from the
// rules the fixtures below break (root, an unsafe pod sysctl); writePolicy
// adds the header.
const identityPolicy = `  defaultAction: off
  rules:
    runAsRoot: {action: enforce}
    sysctls:   {action: enforce}
  exemptions:
    - name: system
      namespaces: [kube-system]
      rules: [runAsRoot, sysctls]
    - name: proxy
      images: ["registry.k8s.io/kube-proxy:*"]
      rules: [runAsRoot, sysctls]
`

// evalJSON runs `patchgate eval -o json` and returns its exit code and
// report.
func evalJSON(t *testing.T, args ...string) (int, evalReport) {
	t.Helper()
	code, out, errs := runCmd(t, append([]string{"eval", "-o", "json"}, args...)...)
	var r evalReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v: exit %d: %v\n%s%s", args, code, err, out, errs)
	}
	return code, r
}

// REVIEW F3: eval previews the node's decision, so it reads the spec's
// annotations as the hook does (--identity-from, default none). A podman
// user's `--annotation io.kubernetes.pod.namespace=kube-system` (recorded
// podman spec, the annotation added as podman writes it) names no pod.
func TestEvalPodmanAnnotationsNameNoPod(t *testing.T) {
	pol := writePolicy(t, identityPolicy)
	data, err := os.ReadFile("../../hook/testdata/podman/default/config.json")
	if err != nil {
		t.Fatal(err)
	}
	forged := strings.Replace(string(data), `"annotations":{`, `"annotations":{"io.kubernetes.pod.namespace":"kube-system","io.kubernetes.cri.sandbox-namespace":"kube-system",`, 1)
	if forged == string(data) {
		t.Fatal("fixture has no annotations object")
	}
	spec := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(spec, []byte(forged), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, from := range []string{"", "none", "containerd", "crio"} {
		args := []string{"--policy", pol, "--spec", spec}
		if from != "" {
			args = append(args, "--identity-from", from)
		}
		code, r := evalJSON(t, args...)
		if code != exitDenied || len(r.Exemptions) != 0 || !strings.HasPrefix(r.IdentitySource, "flags") {
			t.Errorf("--identity-from %q: exit %d, exemptions %v, identity from %q", from, code, r.Exemptions, r.IdentitySource)
		}
	}
	// The text output says where the identity came from.
	code, out, _ := runCmd(t, "eval", "--policy", pol, "--spec", spec)
	if code != exitDenied || !strings.Contains(out, "identity: pod -, container -, image -; from flags (--identity-from none: the spec's annotations name nobody)\n") {
		t.Errorf("exit %d\n%s", code, out)
	}
}

// REVIEW F1: with --identity-from crio, eval reads CRI-O's specs as the hook
// does: a pod's annotations (containerd's keys, the labels JSON, the infra
// container's image) claim nothing; the kubelet's labels, which CRI-O writes
// last, name the pod (hook/testdata/crio, see hook/testdata/README.md).
func TestEvalCRIOPodAnnotationsNameNoPod(t *testing.T) {
	pol := writePolicy(t, identityPolicy)
	for _, tc := range []struct{ fixture, container, image string }{
		{"infra-forged", "POD", ""},
		{"app-forged", "cart", "quay.io/example/cart:2.1"},
	} {
		spec := filepath.Join("../../hook/testdata/crio", tc.fixture, "config.json")
		code, r := evalJSON(t, "--policy", pol, "--spec", spec, "--identity-from", "crio")
		if code != exitDenied || len(r.Exemptions) != 0 || r.IdentitySource != "CRI-O's annotations (--identity-from crio)" {
			t.Errorf("%s: exit %d, exemptions %v, identity from %q", tc.fixture, code, r.Exemptions, r.IdentitySource)
		}
		// CRI-O wrote io.container.manager=cri-o after the pod's
		// annotations: containerd's keys in its spec are the pod's.
		code, r = evalJSON(t, "--policy", pol, "--spec", spec, "--identity-from", "containerd")
		if code != exitDenied || len(r.Exemptions) != 0 || r.IdentitySource != "flags (the spec's annotations are not containerd's)" {
			t.Errorf("%s --identity-from containerd: exit %d, exemptions %v, identity from %q", tc.fixture, code, r.Exemptions, r.IdentitySource)
		}
		code, out, _ := runCmd(t, "eval", "--policy", pol, "--spec", spec, "--identity-from", "crio")
		image := tc.image
		if image == "" {
			image = "-"
		}
		want := "identity: pod shop/cart-0, container " + tc.container + ", image " + image + "; from CRI-O's annotations (--identity-from crio)\n"
		if code != exitDenied || !strings.Contains(out, want) {
			t.Errorf("%s: exit %d, want %q in\n%s", tc.fixture, code, want, out)
		}
	}
}
