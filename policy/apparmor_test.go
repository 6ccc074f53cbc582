package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func readAppArmorFixture(t testing.TB) []byte {
	b, err := os.ReadFile("testdata/apparmor/profiles")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseAppArmorProfilesFixture(t *testing.T) {
	m, err := ParseAppArmorProfiles(readAppArmorFixture(t))
	if err != nil {
		t.Fatal(err)
	}
	for name, mode := range map[string]string{
		"cri-containerd.apparmor.d": "enforce", "runc": "unconfined", "rsyslogd": "complain",
		"nvidia_modprobe//kmod": "enforce", "strict-kill": "kill", "notify-me": "user", "ask-me": "prompt",
		"my profile": "enforce", ":lxd-c1_<var-snap-lxd-common-lxd>:nginx": "enforce",
	} {
		if m[name] != mode {
			t.Errorf("%q: mode %q, want %q", name, m[name], mode)
		}
	}
	if len(m) != strings.Count(string(readAppArmorFixture(t)), "\n") {
		t.Errorf("%d profiles parsed", len(m))
	}
}

var appArmorProfilesBad = []string{
	"runc (unconfined)",                 // no final newline
	"\n",                                // empty line
	"runc\n",                            // no mode
	"runc ()\n",                         // empty mode
	"runc (Enforce)\n",                  // not a kernel mode word
	"runc (enforce) \n",                 // trailing space
	" (enforce)\n",                      // no name
	" runc (enforce)\n",                 // leading space
	"runc (enforce)\nrunc (complain)\n", // listed twice
	"runc (en force)\n",
	"runc(enforce)\n",
}

func TestParseAppArmorProfilesMalformed(t *testing.T) {
	for _, in := range appArmorProfilesBad {
		if m, err := ParseAppArmorProfiles([]byte(in)); err == nil {
			t.Errorf("%q accepted: %v", in, m)
		}
	}
	if m, err := ParseAppArmorProfiles(nil); err != nil || len(m) != 0 {
		t.Errorf("empty list: %v, %v", m, err)
	}
}

func TestAppArmorModeOf(t *testing.T) {
	m, err := ParseAppArmorProfiles(readAppArmorFixture(t))
	if err != nil {
		t.Fatal(err)
	}
	for profile, want := range map[string]string{
		"cri-containerd.apparmor.d":    "enforce",
		" docker-default\n":            "enforce",
		"strict-kill":                  "kill",
		"runc":                         "unconfined",
		"busybox":                      "unconfined",
		"rsyslogd":                     "complain",
		"notify-me":                    "user",
		"ask-me":                       "prompt",
		"nvidia_modprobe//kmod":        "enforce",
		"nvidia_modprobe//nope":        AppArmorModeNotLoaded,
		"no-such-profile":              AppArmorModeNotLoaded,
		"Runc":                         AppArmorModeNotLoaded,
		"docker-default//&runc":        "unconfined",
		"&runc":                        "unconfined",
		"runc//&docker-default":        "unconfined",
		"docker-default//&rsyslogd":    "complain",
		"docker-default//&strict-kill": "enforce",
		"strict-kill//&strict-kill":    "kill",
		"docker-default//&unconfined":  "unconfined",
		"docker-default//&missing":     AppArmorModeNotLoaded,
		"docker-default//&":            AppArmorModeNotLoaded,
		":lxd-c1_<var-snap-lxd-common-lxd>:nginx":            "enforce",
		":lxd-c1_<var-snap-lxd-common-lxd>://nginx":          "enforce",
		":lxd-c1_<var-snap-lxd-common-lxd>:unconfined-in-ns": "complain",
		":lxd-c1_<var-snap-lxd-common-lxd>:":                 "unconfined",
		":other:nginx":                                       AppArmorModeNotLoaded,
		"my profile":                                         "enforce",
	} {
		if got := m.ModeOf(profile); got != want {
			t.Errorf("ModeOf(%q) = %q, want %q", profile, got, want)
		}
	}
}

// The resolver reads <hostRoot>/sys/kernel/security/apparmor/profiles once;
// a missing or malformed list makes every profile unreadable.
func TestAppArmorModeResolver(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "sys", "kernel", "security", "apparmor")
	if got := AppArmorModeResolver(root)("docker-default"); got != AppArmorModeUnreadable {
		t.Errorf("no list: %q", got)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "profiles"), []byte("runc (unconfined)"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := AppArmorModeResolver(root)("runc"); got != AppArmorModeUnreadable {
		t.Errorf("malformed list: %q", got)
	}
	if err := os.WriteFile(filepath.Join(dir, "profiles"), readAppArmorFixture(t), 0o644); err != nil {
		t.Fatal(err)
	}
	r := AppArmorModeResolver(root)
	if got := r("runc"); got != "unconfined" {
		t.Errorf("runc: %q", got)
	}
	// Read once: a later change of the file is not seen by the same run.
	if err := os.WriteFile(filepath.Join(dir, "profiles"), []byte("runc (enforce)\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := r("runc"); got != "unconfined" {
		t.Errorf("runc reread: %q", got)
	}
	// The module's global mode (apparmor.mode=complain at boot) makes every
	// profile complain; enforce leaves each profile's own mode.
	if err := os.WriteFile(filepath.Join(dir, "profiles"), readAppArmorFixture(t), 0o644); err != nil {
		t.Fatal(err)
	}
	params := filepath.Join(root, "sys", "module", "apparmor", "parameters")
	if err := os.MkdirAll(params, 0o755); err != nil {
		t.Fatal(err)
	}
	for global, want := range map[string][2]string{
		"enforce\n":  {"enforce", "unconfined"},
		"complain\n": {"complain", "unconfined"},
		"kill\n":     {"enforce", "unconfined"},
		"Complain\n": {AppArmorModeUnreadable, AppArmorModeUnreadable},
		"":           {AppArmorModeUnreadable, AppArmorModeUnreadable},
	} {
		if err := os.WriteFile(filepath.Join(params, "mode"), []byte(global), 0o644); err != nil {
			t.Fatal(err)
		}
		r := AppArmorModeResolver(root)
		if got := [2]string{r("docker-default"), r("runc")}; got != want {
			t.Errorf("global mode %q: %v, want %v", global, got, want)
		}
	}
}

// The rule judges the mode the front end found, through FromSpec: only on
// an AppArmor host, only for a named profile; baseline refuses a profile
// that does not confine, admits an enforcing one.
func TestAppArmorModeRule(t *testing.T) {
	p, err := Load("../examples/policies/baseline.yaml", "")
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseAppArmorProfiles(readAppArmorFixture(t))
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	mode := func(profile string) string { calls++; return m.ModeOf(profile) }
	for _, tc := range []struct {
		profile string
		host    bool
		want    string
	}{
		{"cri-containerd.apparmor.d", true, ""},
		{"strict-kill", true, ""},
		{"runc", true, `the container must not run AppArmor unconfined (process.apparmorProfile="runc" is loaded in unconfined mode)`},
		{"rsyslogd", true, `the container must not run AppArmor unconfined (process.apparmorProfile="rsyslogd" is loaded in complain mode)`},
		{"docker-default//&busybox", true, `the container must not run AppArmor unconfined (process.apparmorProfile="docker-default//&busybox" is loaded in unconfined mode)`},
		{"nope", true, `the container must not run AppArmor unconfined (process.apparmorProfile="nope" is not loaded on the host)`},
		{"runc", false, ""}, // no AppArmor on the host: nothing to look up (kubelet refuses such a pod)
		{"unconfined", true, `the container must not run AppArmor unconfined (process.apparmorProfile="unconfined")`},
	} {
		spec := loadFixtureFile(t, filepath.Join(specsDir, "baseline", "config.json"))
		spec.Process.ApparmorProfile = tc.profile
		before := calls
		w, err := FromSpec(spec, nil, FromSpecOptions{HostAppArmor: tc.host, AppArmorMode: mode})
		if err != nil {
			t.Fatal(err)
		}
		if looked := calls > before; looked != (tc.host && tc.profile != "unconfined") {
			t.Errorf("%q host=%v: looked up %v", tc.profile, tc.host, looked)
		}
		v, bad, _ := outcome(t, p, w, RuleAppArmor)
		if got := ""; bad {
			got = v.Detail
			if got != tc.want {
				t.Errorf("%q host=%v: %q, want %q", tc.profile, tc.host, got, tc.want)
			}
		} else if tc.want != "" {
			t.Errorf("%q host=%v: admitted, want %q", tc.profile, tc.host, tc.want)
		}
	}
	// unreadable list
	w := fixtureWorkload(t, "baseline")
	w.AppArmorProfile, w.HostAppArmor, w.AppArmorMode = "x", true, AppArmorModeUnreadable
	if _, bad, _ := outcome(t, p, w, RuleAppArmor); !bad {
		t.Error("unreadable list admitted")
	}
}

func FuzzParseAppArmorProfiles(f *testing.F) {
	f.Add(readAppArmorFixture(f))
	for _, in := range appArmorProfilesBad {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseAppArmorProfiles(data)
		if err != nil {
			return
		}
		if len(m) != strings.Count(string(data), "\n") {
			t.Fatalf("%d profiles from %d lines", len(m), strings.Count(string(data), "\n"))
		}
		for name, mode := range m {
			if name == "" || mode == "" || strings.ContainsAny(name, "\n") {
				t.Fatalf("bad entry %q (%q)", name, mode)
			}
			if appArmorConfining(mode) && mode != AppArmorModeEnforce && mode != AppArmorModeKill {
				t.Fatalf("mode %q confining", mode)
			}
			// A profile listed in a non-confining mode never counts as confined.
			if got := m.ModeOf(name); !appArmorConfining(mode) && appArmorConfining(got) {
				t.Fatalf("%q (%s) judged %s", name, mode, got)
			}
		}
	})
}
