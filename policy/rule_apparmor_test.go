package policy

import (
	"os"
	"path/filepath"
	"testing"
)

func TestAppArmor(t *testing.T) {
	testRuleOnFixtures(t, RuleAppArmor, []ruleFixtureCase{
		{"baseline", ""},
		{"apparmor-fail", `container "app" must not run AppArmor unconfined (process.apparmorProfile="unconfined")`},
		{"privileged-fail", `container "app" must set an AppArmor profile (process.apparmorProfile is empty)`},
	})
	testRuleDeferred(t, RuleAppArmor, FieldAppArmor)
}

// TestAppArmorUnconfinedSpellings: every name the kernel resolves to an
// unconfined profile is unconfined; real profile names are not.
func TestAppArmorUnconfinedSpellings(t *testing.T) {
	for name, want := range map[string]bool{
		"unconfined": true, " unconfined\n": true, "&unconfined": true, ":root:unconfined": true,
		":root://unconfined": true, ":root:": true, ":root": true, ":ns:  ": true,
		"cri-containerd.apparmor.d": false, "containers-default-0.50.1": false, "localhost/unconfined": false,
		"unconfined-ish": false, "Unconfined": false, ":root:docker-default": false, "docker-default//&unconfined": false,
	} {
		if got := appArmorUnconfined(name); got != want {
			t.Errorf("appArmorUnconfined(%q) = %v, want %v", name, got, want)
		}
	}
}

// TestAppArmorShippedPolicies: baseline.yaml and restricted.yaml refuse an
// explicit unconfined profile and admit an unset one, as Pod Security
// baseline does (check_appArmorProfile.go allows RuntimeDefault, Localhost
// and unset); the built-in default still reports an unset profile.
func TestAppArmorShippedPolicies(t *testing.T) {
	for _, file := range []string{"baseline", "restricted"} {
		p, err := Load("../examples/policies/"+file+".yaml", "")
		if err != nil {
			t.Fatal(err)
		}
		unconf := fixtureWorkload(t, "apparmor-fail")
		if v, bad, _ := outcome(t, p, unconf, RuleAppArmor); !bad || v.Action != ActionEnforce {
			t.Errorf("%s: unconfined: violated=%v action=%s, want enforce", file, bad, v.Action)
		}
		if d := Evaluate(p, unconf, freshKernel(), testNow); d.Verdict != Deny {
			t.Errorf("%s: unconfined admitted: %+v", file, d)
		}
		for _, profile := range []string{"", "cri-containerd.apparmor.d", "localhost-profile"} {
			w := fixtureWorkload(t, "baseline")
			w.AppArmorProfile = profile
			if v, bad, _ := outcome(t, p, w, RuleAppArmor); bad {
				t.Errorf("%s: profile %q refused: %s", file, profile, v.Detail)
			}
		}
	}
	w := fixtureWorkload(t, "baseline")
	w.AppArmorProfile = ""
	if v, bad, _ := outcome(t, Default(), w, RuleAppArmor); !bad || v.Action != ActionAudit {
		t.Errorf("default policy, unset profile: violated=%v action=%s, want audit", bad, v.Action)
	}
}

// TestAppArmorHostEnforces: on a host that enforces AppArmor an empty
// profile is what containerd writes for an explicit Unconfined (its
// RuntimeDefault and unset are "cri-containerd.apparmor.d"), so the shipped
// policies refuse it there and admit it on a host without AppArmor.
func TestAppArmorHostEnforces(t *testing.T) {
	for _, file := range []string{"baseline", "restricted"} {
		p, err := Load("../examples/policies/"+file+".yaml", "")
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			profile string
			host    bool
			refused bool
		}{
			{"", true, true},
			{"", false, false},
			{"cri-containerd.apparmor.d", true, false},
			{"unconfined", false, true},
		} {
			w := fixtureWorkload(t, "baseline")
			w.AppArmorProfile, w.HostAppArmor = tc.profile, tc.host
			v, bad, _ := outcome(t, p, w, RuleAppArmor)
			if bad != tc.refused {
				t.Errorf("%s: profile %q, host AppArmor %v: violated=%v (%s), want %v", file, tc.profile, tc.host, bad, v.Detail, tc.refused)
			}
			if bad && tc.host && tc.profile == "" && v.Detail != `container "app" must not run AppArmor unconfined (process.apparmorProfile is empty on a host that enforces AppArmor)` {
				t.Errorf("%s: detail %q", file, v.Detail)
			}
		}
	}
}

// TestHostAppArmorEnabled reads the module parameter the kernel exports
// ("Y\n" when AppArmor is enabled) under a fixture host root.
func TestHostAppArmorEnabled(t *testing.T) {
	for _, tc := range []struct {
		content string // "-" for no file
		want    bool
	}{{"Y\n", true}, {"N\n", false}, {"-", false}, {"", false}} {
		root := t.TempDir()
		if tc.content != "-" {
			dir := filepath.Join(root, "sys", "module", "apparmor", "parameters")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "enabled"), []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		got, err := HostAppArmorEnabled(root)
		if err != nil || got != tc.want {
			t.Errorf("%q: got %v, %v; want %v", tc.content, got, err, tc.want)
		}
	}
	// A file that cannot be read (here: a directory) is the strict side.
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "sys", "module", "apparmor", "parameters", "enabled"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got, err := HostAppArmorEnabled(root); err == nil || !got {
		t.Errorf("unreadable: got %v, %v; want true and an error", got, err)
	}
}
