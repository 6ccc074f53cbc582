package service

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/patchgate/patchgate/policy"
)

// FuzzPolicyCopy: every policy the loader accepts makes a policy copy
// (header and body) that loads back as the same policy.
func FuzzPolicyCopy(f *testing.F) {
	m, _ := filepath.Glob("../examples/policies/*.yaml")
	for _, name := range m {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(policyNamed("team-a")))
	f.Add([]byte(policyNamed(`"team-a\nnote: see wiki"`)))
	f.Add([]byte(policyNamed(`"a\u2028b # c"`)))
	f.Fuzz(func(t *testing.T, data []byte) {
		pol, err := policy.LoadBytes("fuzz.yaml", data)
		if err != nil {
			return
		}
		out, err := policyCopyYAML(pol)
		if err != nil {
			t.Fatal(err)
		}
		back, err := policy.LoadBytes("policy.yaml", out)
		if err != nil {
			t.Fatalf("the copy does not load: %v\n%s", err, out)
		}
		if back.Digest() != pol.Digest() {
			t.Fatalf("the copy loads as another policy:\n%s", out)
		}
	})
}
