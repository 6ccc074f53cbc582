package hook

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/patchgate/patchgate/livepatch"
	"github.com/patchgate/patchgate/policy"
)

// A hook deciding alone (the service does not answer) must not believe the
// state file's live patches when sysfs says otherwise now: the file's writer
// may have died minutes ago, and a patch disabled since is not in force.
func TestLocalKernelStateCorrectsTheFileWithSysfs(t *testing.T) {
	file := filepath.Join(t.TempDir(), "kernel-state.json")
	if err := livepatch.WriteStateFile(file, &policy.KernelState{
		Release:    "6.1.0-18-amd64",
		Patches:    []policy.Patch{{Name: "livepatch_sample", Enabled: true, Provider: "sysfs"}, {Name: "kc-2024", Enabled: true, Provider: "kernelcare"}},
		FixedCVEs:  []string{"CVE-2024-1086"},
		ObservedAt: time.Now(),
	}); err != nil {
		t.Fatal(err)
	}
	pol := policy.Default()
	inForce := func(k *policy.KernelState, name string) (found, in bool) {
		for _, p := range k.Patches {
			if p.Name == name {
				return true, p.InForce()
			}
		}
		return false, false
	}
	for _, tc := range []struct {
		host         string
		found, force bool
	}{
		{"debian12-enabled", true, true},
		{"debian10-disabled", true, false},   // disabled since the file was written
		{"debian12-transition", true, false}, // back in transition
		{"debian12-nolivepatch", false, false},
	} {
		root, err := filepath.Abs(filepath.Join("..", "livepatch", "testdata", "hosts", tc.host))
		if err != nil {
			t.Fatal(err)
		}
		k, err := LocalKernelState(context.Background(), pol, file, root)
		if err != nil {
			t.Fatal(err)
		}
		if found, in := inForce(k, "livepatch_sample"); found != tc.found || in != tc.force {
			t.Errorf("%s: livepatch_sample found %t in force %t, want %t %t (patches %+v)", tc.host, found, in, tc.found, tc.force, k.Patches)
		}
		// What other providers said is kept.
		if f, in := inForce(k, "kc-2024"); !f || !in || len(k.FixedCVEs) != 1 {
			t.Errorf("%s: other providers' state lost: %+v", tc.host, k)
		}
	}
}
