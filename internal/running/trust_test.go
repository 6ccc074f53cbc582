package running

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// exemptPods enforces runAsRoot except in the fixtures' pod namespaces
// (e2e: containerd-cri; shop: hook/testdata/crio/app-forged): a container
// admitted by it has a trusted pod identity.
const exemptPods = `apiVersion: patchgate.dev/v1alpha1
kind: NodePolicy
metadata: {name: exempt-pods}
spec:
  defaultAction: off
  kernel: {requiredPatches: [], onUnknown: audit, action: audit}
  rules:
    runAsRoot: {action: enforce}
  exemptions:
    - name: pods
      namespaces: [e2e, shop]
      rules: [runAsRoot]
`

func runExempt(t *testing.T, opts Options) *Report {
	t.Helper()
	cand, cpath := writePolicy(t, exemptPods)
	rep, err := Run(context.Background(), Config{
		Options: opts, Candidate: cand, CandidatePath: cpath,
		Kernel: kernelPatched(t), AuditLog: "/var/log/patchgate/audit.log",
		Now: time.Date(2026, 12, 2, 16, 10, 0, 0, time.UTC),
	})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func result(rep *Report, id string) *Result {
	for i := range rep.Containers {
		if rep.Containers[i].ID == id {
			return &rep.Containers[i]
		}
	}
	return nil
}

// untrusted checks that c was judged with no pod identity: no name, never
// as a pod sandbox, and (running as root) refused by runAsRoot.
func untrusted(t *testing.T, what string, c *Result) {
	t.Helper()
	if c == nil {
		t.Fatalf("%s: not found", what)
	}
	if c.Name != "" || c.Sandbox || c.Candidate.Outcome != OutcomeRefuse || !slices.Equal(c.Candidate.Rules, []string{"runAsRoot"}) {
		t.Errorf("%s: %s/%s name %q sandbox %t candidate %s %v (%s)", what, c.Runtime, c.Namespace, c.Name, c.Sandbox, c.Candidate.Outcome, c.Candidate.Rules, c.Candidate.Error)
	}
}

// REVIEW F3: containerd's CRI identity is trusted only for a task found in
// containerd's own state. Found only through a runc root (here the shim's,
// given as --runc-root), a bundle in containerd's layout is wherever its
// creator put it (`runc --root R run -b .../io.containerd.runtime.v2.task/
// k8s.io/<id>`): no identity, and no sandbox is judged as a pod.
func TestRuncRootContainerdLayoutNoIdentity(t *testing.T) {
	root := tree(t, "containerd-cri")
	// The same containers through containerd's state: e2e's, exempt.
	if c := result(runExempt(t, ctrdOptions(root)), ctrdRooty); c == nil || c.Name != "e2e/web/rooty" || c.Candidate.Outcome != OutcomeAdmit {
		t.Fatalf("through containerd's state: %+v", c)
	}
	rep := runExempt(t, Options{HostRoot: root, RuncRoots: []string{"/tmp/pge2e-334568005/runc/k8s.io"}})
	if len(rep.Containers) != 5 {
		t.Fatalf("%d containers: %+v", len(rep.Containers), rows(rep))
	}
	untrusted(t, "rooty", result(rep, ctrdRooty))
	for _, c := range rep.Containers {
		if c.Name != "" || c.Sandbox {
			t.Errorf("%s: name %q sandbox %t", c.ID[:12], c.Name, c.Sandbox)
		}
	}
}

// REVIEW F3: a containerd task in a namespace other than CRI's k8s.io
// (`ctr -n default run ...` with containerd's CRI annotations) gets no pod
// identity and is never judged as a pod sandbox.
func TestContainerdOtherNamespaceNoIdentity(t *testing.T) {
	root := tree(t, "containerd-cri")
	for _, dir := range []string{ctrdState + "/io.containerd.runtime.v2.task", "/tmp/pge2e-334568005/runc"} {
		if err := os.Rename(filepath.Join(root, dir, "k8s.io"), filepath.Join(root, dir, "default")); err != nil {
			t.Fatal(err)
		}
	}
	// runc's state names the bundle it ran: the one in "default" now.
	files, _ := filepath.Glob(filepath.Join(root, "/tmp/pge2e-334568005/runc/default/*/state.json"))
	if len(files) != 5 {
		t.Fatalf("%d runc states", len(files))
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte(strings.ReplaceAll(string(b), "/io.containerd.runtime.v2.task/k8s.io/", "/io.containerd.runtime.v2.task/default/")), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	rep := runExempt(t, ctrdOptions(root))
	if len(rep.Containers) != 5 {
		t.Fatalf("%d containers: %+v", len(rep.Containers), rows(rep))
	}
	untrusted(t, "rooty", result(rep, ctrdRooty))
	for _, c := range rep.Containers {
		if c.Namespace != "default" || c.Status != StatusRunning || c.Name != "" || c.Sandbox {
			t.Errorf("%s: %s %s name %q sandbox %t", c.ID[:12], c.Namespace, c.Status, c.Name, c.Sandbox)
		}
	}
}

// REVIEW F3: CRI-O's identity is trusted only for a userdata directory
// found under a storage root. Found only through a runc root, a bundle in
// the containers/storage layout with CRI-O's spec (hook/testdata/crio,
// here in podman's rooty's place) gets no identity.
func TestRuncRootCRIOLayoutNoIdentity(t *testing.T) {
	root := tree(t, "podman-runc")
	cfg, err := os.ReadFile("../../hook/testdata/crio/app-forged/config.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, pgr, "root/vfs-containers", podRooty, "userdata/config.json"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	// With the storage root: CRI-O's, shop's, exempt.
	c := result(runExempt(t, Options{HostRoot: root, RuncRoots: []string{DefaultRuncRoot}, StorageRoots: []string{pgr + "/root"}}), podRooty)
	if c == nil || c.Runtime != RuntimeCRIO || c.Name != "shop/cart-0/cart" || c.Candidate.Outcome != OutcomeAdmit {
		t.Fatalf("through the storage root: %+v", c)
	}
	c = result(runExempt(t, Options{HostRoot: root, RuncRoots: []string{DefaultRuncRoot}}), podRooty)
	untrusted(t, "rooty", c)
	if c.Runtime != RuntimeContainersStorage {
		t.Errorf("runtime %s, want %s: CRI-O does not vouch for it", c.Runtime, RuntimeContainersStorage)
	}
}
