package policytest

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const examplesDir = "../../examples"

// TestExamplePolicyTests runs `patchgate test` over examples/tests, as a
// policy author would, so `make unit` (and `make test`) fails when an
// example policy stops deciding what its tests say.
func TestExamplePolicyTests(t *testing.T) {
	var out, errOut bytes.Buffer
	code := Main(context.Background(), []string{filepath.Join(examplesDir, "tests")}, "text", &out, &errOut)
	if code != ExitPass {
		t.Fatalf("patchgate test examples/tests: exit %d\n%s\n%s", code, out.String(), errOut.String())
	}
}

// TestEveryExamplePolicyIsTested: every example policy (and the drop-in
// layout) is named by a test file, and each such file's cases refuse, flag
// and admit something; a policy with whenKernelBehind has a case where the
// kernel is behind.
func TestEveryExamplePolicyIsTested(t *testing.T) {
	policies, err := filepath.Glob(filepath.Join(examplesDir, "policies", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, p := range policies {
		abs, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		want[abs] = true
	}
	dir, err := filepath.Abs(filepath.Join(examplesDir, "policy-dir"))
	if err != nil {
		t.Fatal(err)
	}
	want[dir] = true
	files, err := Find([]string{filepath.Join(examplesDir, "tests")})
	if err != nil {
		t.Fatal(err)
	}
	tested := map[string]bool{}
	for _, path := range files {
		f, err := ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		res, err := Run(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		decisions := map[string]bool{}
		behind := false
		for _, c := range res.Cases {
			decisions[c.Got.Decision] = true
			behind = behind || c.Got.KernelBehind
		}
		main := f.Policy[0]
		tested[main] = true
		data, err := os.ReadFile(policyFileOf(main))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(data), "whenKernelBehind") && !behind {
			t.Errorf("%s: the policy has whenKernelBehind but no case has the kernel behind", path)
		}
		need := []string{Admit, Flag, Refuse}
		if strings.Contains(string(data), "defaultAction: audit") {
			need = []string{Admit} // audit-only admits everything
		}
		if strings.Contains(path, "gpu-worker-1") {
			need = []string{Admit, Refuse}
		}
		for _, d := range need {
			if !decisions[d] {
				t.Errorf("%s: no case is decided %s", path, d)
			}
		}
	}
	for p := range want {
		if !tested[p] {
			t.Errorf("example policy %s has no test under examples/tests", p)
		}
	}
}

// policyFileOf is the main file of a policy path.
func policyFileOf(p string) string {
	if fi, err := os.Stat(p); err == nil && fi.IsDir() {
		return filepath.Join(p, "policy.yaml")
	}
	return p
}
