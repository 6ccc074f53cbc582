package livepatch

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/policy"
)

var fixedNow = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func hostDir(t testing.TB, name string) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("testdata", "hosts", name))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("fixture tree: %v", err)
	}
	return dir
}

func readHost(t testing.TB, name string, opts ...ReaderOption) policy.KernelState {
	t.Helper()
	r, err := NewReader(append([]ReaderOption{WithHostRoot(hostDir(t, name)), WithClock(func() time.Time { return fixedNow })}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return r.Read(context.Background())
}

type wantState struct {
	release, effective, distro string
	patches                    []policy.Patch
	cves                       []string
	pending                    *bool
	tainted                    bool
	providers                  []string
	unknownParts               []string // "part/provider"
	conflicts                  int
}

func p(name string, enabled, transition bool, provider string) policy.Patch {
	return policy.Patch{Name: name, Enabled: enabled, Transition: transition, Provider: provider}
}

var hostCases = map[string]wantState{
	"debian12-nolivepatch": {
		release: "6.1.0-18-amd64", distro: "dpkg", patches: []policy.Patch{}, providers: []string{"sysfs"},
	},
	"debian12-enabled": {
		release: "6.1.0-18-amd64", distro: "dpkg", tainted: true, providers: []string{"sysfs"},
		patches: []policy.Patch{p("livepatch_sample", true, false, "sysfs")},
	},
	"debian12-transition": {
		release: "6.1.0-18-amd64", distro: "dpkg", tainted: true, providers: []string{"sysfs"},
		patches: []policy.Patch{p("livepatch_sample", true, true, "sysfs")},
	},
	"debian10-disabled": {
		release: "4.19.0-26-amd64", distro: "dpkg", tainted: true, providers: []string{"sysfs"},
		patches: []policy.Patch{p("livepatch_sample", false, false, "sysfs")},
	},
	"debian13-replace": {
		release: "6.12.38+deb13-amd64", distro: "dpkg", tainted: true, providers: []string{"sysfs"},
		patches: []policy.Patch{p("livepatch_cumulative", true, false, "sysfs"), p("livepatch_fix", true, false, "sysfs")},
	},
	"ubuntu22-lkp": {
		release: "5.15.0-91-generic", distro: "dpkg", tainted: true, providers: []string{"sysfs"},
		patches: []policy.Patch{p("lkp_Ubuntu_5_15_0_91_101_generic_102", true, false, "canonical")},
	},
	"rhel8-kpatch": {
		release: "4.18.0-513.9.1.el8_9.x86_64", distro: "rpm", tainted: true, providers: []string{"sysfs", "kpatch"},
		patches: []policy.Patch{p("kpatch_4_18_0_513_9_1_1_1", true, false, "kpatch")},
		// kpatch_4_18_0_513_9_1_2_1 is installed for this kernel, not loaded.
		pending: boolPtr(true),
	},
	"rhel10-kpatch-transition": {
		release: "6.12.0-55.9.1.el10_0.x86_64", distro: "rpm", tainted: true, providers: []string{"sysfs", "kpatch"},
		patches: []policy.Patch{p("kpatch_6_12_0_55_9_1_1_1", true, true, "kpatch")},
		pending: boolPtr(false),
	},
	"ubuntu20-kernelcare": {
		release: "5.4.0-1028-raspi", effective: "5.4.0-1028.31", distro: "dpkg", providers: []string{"sysfs", "kernelcare"},
		patches: []policy.Patch{p("kernelcare", true, false, "kernelcare")},
		cves:    []string{"CVE-2020-29374", "CVE-2021-3347"},
		pending: boolPtr(true),
	},
	"ubuntu18-canonical-json": {
		release: "4.15.0-212-generic", distro: "dpkg", tainted: true, providers: []string{"sysfs", "canonical"},
		patches: []policy.Patch{p("lkp_Ubuntu_4_15_0_212_223_generic_102", true, false, "canonical")},
		cves: []string{"CVE-2023-31436", "CVE-2023-34319", "CVE-2023-3611", "CVE-2023-3776", "CVE-2023-40283",
			"CVE-2023-42752", "CVE-2023-42753", "CVE-2023-4622", "CVE-2023-4623", "CVE-2023-4881", "CVE-2023-51781",
			"CVE-2023-6932", "CVE-2023-7192", "CVE-2024-1086"},
		pending: boolPtr(false),
	},
	"ubuntu16-canonical-yaml": {
		release: "4.4.0-87-generic", distro: "dpkg", tainted: true, providers: []string{"sysfs", "canonical"},
		patches: []policy.Patch{p("lkp_Ubuntu_4_4_0_87_110_generic_33", true, false, "canonical")},
		cves:    []string{"CVE-2015-7837", "CVE-2016-0758"},
		pending: boolPtr(false),
	},
	// ubuntu16-canonical-yaml with patchState apply-failed (REVIEW B5): the
	// client still lists its fixes, but none counts as fixed; the lkp_
	// module sysfs shows in force disagrees with the client's state.
	"ubuntu16-canonical-yaml-applyfailed": {
		release: "4.4.0-87-generic", distro: "dpkg", tainted: true, providers: []string{"sysfs", "canonical"},
		patches:      []policy.Patch{p("lkp_Ubuntu_4_4_0_87_110_generic_33", true, false, "canonical")},
		unknownParts: []string{"updates/canonical"},
		conflicts:    2,
	},
	// ubuntu20-kernelcare with a kpatch-state other than "patch is applied"
	// (REVIEW B5): the patch is not in force, no CVEs, no effective version.
	"ubuntu20-kernelcare-notapplied": {
		release: "5.4.0-1028-raspi", distro: "dpkg", providers: []string{"sysfs", "kernelcare"},
		patches:   []policy.Patch{p("kernelcare", false, false, "kernelcare")},
		pending:   boolPtr(true),
		conflicts: 1,
	},
	"ubuntu22-canonical-disabled": {
		release: "5.15.0-91-generic", distro: "dpkg", providers: []string{"sysfs"},
		patches:      []policy.Patch{},
		unknownParts: []string{"cves/canonical", "updates/canonical"},
	},
	"sles15-klp": {
		release: "5.14.21-150500.55.39-default", distro: "rpm", tainted: true, providers: []string{"sysfs", "klp"},
		patches:      []policy.Patch{p("livepatch_sample", true, false, "sysfs")},
		unknownParts: []string{"cves/klp"},
	},
	"ol6-ksplice": {
		release: "4.1.12-124.24.3.el6uek.x86_64", effective: "4.1.12-124.26.5.el6uek", distro: "rpm", providers: []string{"sysfs", "ksplice"},
		patches: []policy.Patch{
			p("2d8uhlxy", true, false, "ksplice"), p("5dq87kra", true, false, "ksplice"), p("5kfn4iud", true, false, "ksplice"),
			p("6lw015pf", true, false, "ksplice"), p("7utswooq", true, false, "ksplice"), p("brasm60x", true, false, "ksplice"),
			p("cc4jh8b9", true, false, "ksplice"), p("d1u8ybba", true, false, "ksplice"), p("dz2cv9sv", true, false, "ksplice"),
			p("els0vptv", true, false, "ksplice"), p("hhhwajn6", true, false, "ksplice"), p("honz3g9t", true, false, "ksplice"),
			p("i4konm7m", true, false, "ksplice"), p("kgn8gqqi", true, false, "ksplice"), p("musu64er", true, false, "ksplice"),
			p("nayeinzh", true, false, "ksplice"), p("nz0sbas8", true, false, "ksplice"), p("ovabwkag", true, false, "ksplice"),
			p("pwc6xmnr", true, false, "ksplice"), p("qurx51il", true, false, "ksplice"), p("ruspn21i", true, false, "ksplice"),
			p("ry7b4cfc", true, false, "ksplice"),
		},
		cves: []string{"CVE-2017-12153", "CVE-2017-17807", "CVE-2018-10876", "CVE-2018-10877", "CVE-2018-10878",
			"CVE-2018-10879", "CVE-2018-16862", "CVE-2018-17972", "CVE-2018-18397", "CVE-2018-18559", "CVE-2018-9568", "CVE-2019-5489"},
		pending: boolPtr(true),
	},
}

func TestReadFixtureHosts(t *testing.T) {
	entries, err := os.ReadDir(filepath.Join("testdata", "hosts"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if _, ok := hostCases[e.Name()]; !ok {
			t.Errorf("fixture tree %s has no case in hostCases", e.Name())
		}
	}
	for name, want := range hostCases {
		t.Run(name, func(t *testing.T) {
			k := readHost(t, name)
			if k.Release != want.release {
				t.Errorf("release = %q, want %q", k.Release, want.release)
			}
			if k.EffectiveVersion != want.effective {
				t.Errorf("effectiveVersion = %q, want %q", k.EffectiveVersion, want.effective)
			}
			if k.Distro != want.distro {
				t.Errorf("distro = %q, want %q", k.Distro, want.distro)
			}
			if !reflect.DeepEqual(k.Patches, want.patches) {
				t.Errorf("patches =\n %+v\nwant\n %+v", k.Patches, want.patches)
			}
			wantCVEs := want.cves
			if wantCVEs == nil {
				wantCVEs = []string{}
			}
			if !reflect.DeepEqual(sortedUnique(k.FixedCVEs), sortedUnique(wantCVEs)) || len(k.FixedCVEs) != len(wantCVEs) {
				t.Errorf("fixedCVEs = %v, want %v", k.FixedCVEs, wantCVEs)
			}
			if (k.UpdatesPending == nil) != (want.pending == nil) || (k.UpdatesPending != nil && *k.UpdatesPending != *want.pending) {
				t.Errorf("updatesPending = %v, want %v", fmtBool(k.UpdatesPending), fmtBool(want.pending))
			}
			if k.LivepatchTainted != want.tainted {
				t.Errorf("livepatchTainted = %v, want %v", k.LivepatchTainted, want.tainted)
			}
			if !reflect.DeepEqual(k.Providers, want.providers) {
				t.Errorf("providers = %v, want %v", k.Providers, want.providers)
			}
			var parts []string
			for _, u := range k.Unknown {
				parts = append(parts, u.Part+"/"+u.Provider)
			}
			if strings.Join(parts, ",") != strings.Join(want.unknownParts, ",") {
				t.Errorf("unknown = %v (%+v), want %v", parts, k.Unknown, want.unknownParts)
			}
			if len(k.Conflicts) != want.conflicts {
				t.Errorf("conflicts = %q, want %d", k.Conflicts, want.conflicts)
			}
			if !k.ObservedAt.Equal(fixedNow) {
				t.Errorf("observedAt = %v", k.ObservedAt)
			}
			checkGolden(t, filepath.Join("testdata", "golden", name+".json"), k)
		})
	}
}

func fmtBool(b *bool) string {
	if b == nil {
		return "nil"
	}
	if *b {
		return "true"
	}
	return "false"
}

// checkGolden compares v's JSON with a golden file; UPDATE_GOLDEN=1 rewrites it.
func checkGolden(t *testing.T, path string, v any) {
	t.Helper()
	got, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	if os.Getenv("UPDATE_GOLDEN") == "1" {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("golden file (regenerate with UPDATE_GOLDEN=1): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (UPDATE_GOLDEN=1 regenerates it):\n%s", path, got)
	}
}

func TestProviderSelection(t *testing.T) {
	// provider: sysfs on a kpatch host ignores the tool.
	k := readHost(t, "rhel8-kpatch", WithProvider("sysfs"))
	if !reflect.DeepEqual(k.Providers, []string{"sysfs"}) || k.UpdatesPending != nil {
		t.Errorf("sysfs only: providers %v pending %v", k.Providers, fmtBool(k.UpdatesPending))
	}
	if len(k.Patches) != 1 || k.Patches[0].Provider != "sysfs" {
		t.Errorf("sysfs only: patches %+v", k.Patches)
	}
	// provider: kernelcare where it is not installed: everything unknown.
	k = readHost(t, "debian12-enabled", WithProvider("kernelcare"))
	found := false
	for _, u := range k.Unknown {
		if u.Part == "all" && u.Provider == "kernelcare" && strings.Contains(u.Reason, "tool not found") {
			found = true
		}
	}
	if !found {
		t.Errorf("missing kernelcare tool not reported unknown: %+v", k.Unknown)
	}
	if _, err := NewReader(WithProvider("klp-bogus")); err == nil {
		t.Error("unknown provider accepted")
	}
	if _, err := NewReader(WithHostRoot("relative/dir")); err == nil {
		t.Error("relative host root accepted")
	}
}

func TestToolsOverride(t *testing.T) {
	// spec.kernel.tools maps kpatch to a host path; the default location is
	// then not used.
	k := readHost(t, "rhel8-kpatch", WithTools(map[string]string{"kpatch": "/opt/kpatch/bin/kpatch"}))
	if !reflect.DeepEqual(k.Providers, []string{"sysfs"}) {
		t.Errorf("providers = %v; an override to a missing path must not fall back", k.Providers)
	}
	k = readHost(t, "rhel8-kpatch", WithTools(map[string]string{"kpatch": "/usr/sbin/kpatch"}))
	if !reflect.DeepEqual(k.Providers, []string{"sysfs", "kpatch"}) {
		t.Errorf("providers = %v", k.Providers)
	}
}

func TestMergeKLPConflict(t *testing.T) {
	sys := Report{Provider: ProviderSysfs, Patches: []policy.Patch{p("livepatch_sample", true, false, "sysfs")}, LivepatchSupported: true}
	k := Merge(sys, []Report{{Provider: ProviderKLP, KlpStatus: "in_progress"}}, fixedNow)
	if len(k.Conflicts) != 1 || !strings.Contains(k.Conflicts[0], "in_progress") {
		t.Errorf("conflicts = %q", k.Conflicts)
	}
	sys.Patches[0].Transition = true
	if k := Merge(sys, []Report{{Provider: ProviderKLP, KlpStatus: "in_progress"}}, fixedNow); len(k.Conflicts) != 0 {
		t.Errorf("agreeing sources: conflicts = %q", k.Conflicts)
	}
	if k := Merge(sys, []Report{{Provider: ProviderKLP, KlpStatus: "ready"}}, fixedNow); len(k.Conflicts) != 1 {
		t.Errorf("ready with a patch in transition: conflicts = %q", k.Conflicts)
	}
}

func TestMergeKpatchConflict(t *testing.T) {
	// kpatch and sysfs disagree: sysfs is kept, the disagreement reported.
	sys := Report{Provider: ProviderSysfs, Patches: []policy.Patch{p("kpatch_fix", true, true, "sysfs")}, LivepatchSupported: true}
	kp := Report{Provider: ProviderKpatch, Patches: []policy.Patch{p("kpatch_fix", true, false, "kpatch"), p("kpatch_gone", true, false, "kpatch")}}
	k := Merge(sys, []Report{kp}, fixedNow)
	if len(k.Conflicts) != 2 || !k.Patches[0].Transition || k.Patches[0].Provider != "kpatch" {
		t.Errorf("conflicts %q patches %+v", k.Conflicts, k.Patches)
	}
	// Two effective versions: reported, and the older one kept.
	a := Report{Provider: ProviderKernelCare, EffectiveVersion: "5.4.0-1028.32"}
	b := Report{Provider: ProviderKsplice, EffectiveVersion: "5.4.0-1028.31"}
	k = Merge(Report{Provider: ProviderSysfs, Distro: "dpkg"}, []Report{a, b}, fixedNow)
	if k.EffectiveVersion != "5.4.0-1028.31" || len(k.Conflicts) != 1 {
		t.Errorf("effective %q conflicts %q", k.EffectiveVersion, k.Conflicts)
	}
	// Canonical applied but no lkp_ patch in force.
	k = Merge(Report{Provider: ProviderSysfs, LivepatchSupported: true}, []Report{{Provider: ProviderCanonical, CanonicalState: "applied"}}, fixedNow)
	if len(k.Conflicts) != 1 || !strings.Contains(k.Conflicts[0], "lkp_") {
		t.Errorf("canonical: conflicts %q", k.Conflicts)
	}
	// Updates pending: true wins, nil when nobody can tell.
	k = Merge(Report{Provider: ProviderSysfs}, []Report{{Provider: "a", UpdatesPending: boolPtr(false)}, {Provider: "b", UpdatesPending: boolPtr(true)}}, fixedNow)
	if k.UpdatesPending == nil || !*k.UpdatesPending {
		t.Errorf("pending = %v", fmtBool(k.UpdatesPending))
	}
	if k := Merge(Report{Provider: ProviderSysfs}, nil, fixedNow); k.UpdatesPending != nil {
		t.Errorf("pending with no provider = %v", fmtBool(k.UpdatesPending))
	}
}
