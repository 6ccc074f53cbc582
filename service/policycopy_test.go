package service

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/patchgate/patchgate/policy"
)

// The policy in force is copied root-only for hooks that decide alone and
// cannot see the service's policy path; a broken reload leaves the copy of
// the last good policy.
func TestPolicyCopyFollowsThePolicyInForce(t *testing.T) {
	e := newTestEnv(t)
	copyDir := filepath.Join(e.dir, "var", "policy")
	e.start(t, WithPolicyCopy(copyDir))
	check := func(wantName string) {
		t.Helper()
		fi, err := os.Stat(filepath.Join(copyDir, policy.MainFile))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("copy mode %v, want 0600", fi.Mode().Perm())
		}
		if di, _ := os.Stat(copyDir); di.Mode().Perm() != 0o700 {
			t.Errorf("copy directory mode %v, want 0700", di.Mode().Perm())
		}
		got, err := policy.Load(copyDir, "node-a")
		if err != nil {
			t.Fatalf("the copy does not load: %v", err)
		}
		if got.Name() != wantName {
			t.Errorf("copy is policy %q, want %q", got.Name(), wantName)
		}
		a, _ := got.MarshalYAML()
		b, _ := e.svc.Policy().MarshalYAML()
		if !bytes.Equal(a, b) {
			t.Errorf("the copy is not the policy in force:\n%s\nvs\n%s", a, b)
		}
		// The status names the copy and the path (patchgate check reads
		// the node's policy from there).
		st := e.svc.Status().Policy
		if st.Copy != copyDir || st.Path != e.policyDir {
			t.Errorf("status policy copy %q path %q, want %q and %q", st.Copy, st.Path, copyDir, e.policyDir)
		}
	}
	check("first")
	writeFile(t, filepath.Join(e.policyDir, "policy.yaml"), policyNamed("second"), 0o644)
	e.svc.checkPolicy()
	check("second")
	writeFile(t, filepath.Join(e.policyDir, "policy.yaml"), "spec: {rules: {runAsRoot: {action: maybe}}}\n", 0o644)
	e.svc.checkPolicy()
	check("second")
}

func TestWithPolicyCopyNeedsAnAbsolutePath(t *testing.T) {
	if _, err := New(WithPolicyCopy("var/policy")); err == nil {
		t.Fatal("relative policy copy directory accepted")
	}
}
