package vm

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/patchgate/patchgate/policy"
)

// The guest's policies must load with the real loader, so a schema change
// fails here and not half-way through a boot.
func TestGuestPoliciesLoad(t *testing.T) {
	files, err := filepath.Glob("guest/policies/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no guest policies: %v", err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		p, err := policy.LoadBytes(f, data)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if !slices.Equal(p.Spec.Kernel.RequiredPatches, []string{"livepatch_sample"}) {
			t.Errorf("%s: requiredPatches %v", f, p.Spec.Kernel.RequiredPatches)
		}
		if filepath.Base(f) == "remediate.yaml" {
			r := p.Spec.Remediation
			if !r.Enabled || !slices.Equal(r.Command, []string{"/sbin/insmod", "/lib/patches/livepatch-sample.ko"}) {
				t.Errorf("%s: remediation %+v", f, r)
			}
		}
	}
}
