package policy

import (
	"path/filepath"
	"testing"
)

// examplePolicies decodes and validates every shipped example policy with the
// real loader.
func examplePolicies(t *testing.T) []*Policy {
	t.Helper()
	files, err := filepath.Glob("../examples/policies/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"baseline.yaml": true, "restricted.yaml": true, "kernel-aware.yaml": true, "audit-only.yaml": true}
	var out []*Policy
	for _, f := range files {
		p, err := Load(f, "")
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		delete(want, filepath.Base(f))
		out = append(out, p)
	}
	for f := range want {
		t.Errorf("example policy %s is missing", f)
	}
	return out
}

func TestExamplePoliciesLoad(t *testing.T) {
	ps := examplePolicies(t)
	names := map[string]bool{}
	for _, p := range ps {
		if names[p.Name()] {
			t.Errorf("two examples named %q", p.Name())
		}
		names[p.Name()] = true
	}
}
