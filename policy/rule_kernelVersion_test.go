package policy

import (
	"strings"
	"testing"
)

func TestKernelVersion(t *testing.T) {
	for _, tc := range []struct {
		min, release, effective, distro string
		detail                          string // "" passes
	}{
		{"6.1.0-18-amd64", "6.1.0-18-amd64", "", "dpkg", ""},
		{"6.1.0-18-amd64", "6.1.0-17-amd64", "", "dpkg", `kernel release "6.1.0-17-amd64" is older than spec.kernel.minimumVersion "6.1.0-18-amd64"`},
		// dpkg ordering, not semver or strings: -9 < -18.
		{"6.1.0-18-amd64", "6.1.0-9-amd64", "", "", `kernel release "6.1.0-9-amd64" is older than spec.kernel.minimumVersion "6.1.0-18-amd64"`},
		// The effective version (KernelCare, Ksplice) counts, not uname -r.
		{"4.18.0-513.9.1.el8_9", "4.18.0-477.10.1.el8_8.x86_64", "4.18.0-513.11.1.el8_9.x86_64", "rpm", ""},
		{"4.18.0-513.9.1.el8_9", "4.18.0-513.9.1.el8_9.x86_64", "4.18.0-477.27.1.el8_8", "rpm", `kernel effectiveVersion "4.18.0-477.27.1.el8_8" is older than spec.kernel.minimumVersion "4.18.0-513.9.1.el8_9"`},
		{"5.15.0-91-generic", "", "", "dpkg", "the kernel state has no release or effectiveVersion to compare with spec.kernel.minimumVersion"},
		{"5.15.0-91-generic", "5.15.0-100-generic", "", "", ""},
	} {
		p := kernelPolicy(t, "{minimumVersion: "+tc.min+"}")
		k := kernelFixture(t, "patched")
		k.Release, k.EffectiveVersion, k.Distro = tc.release, tc.effective, tc.distro
		d, bad, _ := kernelOutcome(t, p, k, RuleKernelVersion)
		if (tc.detail != "") != bad || d != tc.detail {
			t.Errorf("min %s release %s effective %s: %v %q, want %q", tc.min, tc.release, tc.effective, bad, d, tc.detail)
		}
	}
	// Not comparable: a violation, never a pass.
	p := kernelPolicy(t, "{minimumVersion: 6.1.0-18-amd64}")
	k := kernelFixture(t, "patched")
	k.Release, k.Distro = "6.1.0-18-amd64", "rpm"
	k.EffectiveVersion = "not a version!"
	if d, bad, behind := kernelOutcome(t, p, k, RuleKernelVersion); !bad || !behind || !strings.HasPrefix(d, `cannot compare kernel effectiveVersion "not a version!" with spec.kernel.minimumVersion`) {
		t.Errorf("incomparable: %v %v %q", bad, behind, d)
	}
}
