package running

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/hook"
)

// REVIEW F1: eval --running trusts CRI-O's identity for a bundle in the
// containers/storage layout, and reads it as the hook does: a pod's
// annotations in its infra container's spec (containerd's keys, the labels
// JSON, the image) claim neither kube-system nor kube-proxy's image
// (hook/testdata/crio, reconstructed from CRI-O's source).
func TestJudgeCRIOPodAnnotationsNameNoPod(t *testing.T) {
	const storage = "/var/lib/containers/storage/overlay-containers"
	root := filepath.Join(t.TempDir(), "host")
	var found []Found
	for _, tc := range []struct{ fixture, id string }{
		{"infra-forged", "8e2a1f0c9d8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a29"},
		{"app-forged", "5b1d7e0a3c9f4e2b8a6d0c1f7e3b9a5d2c8f4e0a6b1d7c3e9f5a2b8d4c0e6f1a"},
	} {
		cfg, err := os.ReadFile(filepath.Join("../../hook/testdata/crio", tc.fixture, "config.json"))
		if err != nil {
			t.Fatal(err)
		}
		bundle := filepath.Join(storage, tc.id, "userdata")
		if err := os.MkdirAll(filepath.Join(root, bundle), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, bundle, "config.json"), cfg, 0o644); err != nil {
			t.Fatal(err)
		}
		// As Discover finds it: under a storage root.
		found = append(found, Found{Runtime: RuntimeContainersStorage, ID: tc.id, Status: StatusRunning, Bundle: bundle, IdentityFrom: hook.IdentityFromCRIO})
	}
	pol, _ := writePolicy(t, `apiVersion: patchgate.dev/v1alpha1
kind: NodePolicy
metadata: {name: identity}
spec:
  defaultAction: off
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
`)
	j := &Judge{HostRoot: root, Candidate: pol, Now: time.Now()}
	for _, r := range j.Judge(found) {
		if r.Runtime != RuntimeCRIO || r.Candidate.Outcome != OutcomeRefuse || r.Candidate.Decision == nil ||
			len(r.Candidate.Decision.Exemptions) != 0 || !strings.HasPrefix(r.Name, "shop/cart-0/") {
			t.Errorf("%s: runtime %s, name %q, candidate %s (%s) %+v", r.ID[:12], r.Runtime, r.Name, r.Candidate.Outcome, r.Candidate.Error, r.Candidate.Decision)
		}
	}
}
