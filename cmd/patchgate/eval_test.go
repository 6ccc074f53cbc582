package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/patchgate/patchgate/policy"
)

const (
	specFixtures   = "../../policy/testdata/specs"
	kernelFixtures = "../../policy/testdata/kernel"
	examplePolicy  = "../../examples/policies"
	evalGolden     = "testdata/eval.golden"
	// fixtureNow is five minutes after the kernel fixtures' observedAt.
	fixtureNow = "2026-11-27T12:05:00Z"
)

// evalArgs builds the eval command line of a spec fixture.
func evalArgs(t *testing.T, fixture string) []string {
	t.Helper()
	dir := filepath.Join(specFixtures, fixture)
	// The fixtures are specs containerd's CRI wrote: their annotations
	// name the pod as the hook reads them with --identity-from=containerd.
	args := []string{"--spec", filepath.Join(dir, "config.json"), "--identity-from", "containerd"}
	if _, err := os.Stat(filepath.Join(dir, "sandbox.json")); err == nil {
		args = append(args, "--sandbox-spec", filepath.Join(dir, "sandbox.json"))
	}
	data, err := os.ReadFile(filepath.Join(dir, "case.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cf struct {
		Args []string `json:"args"`
	}
	if err := json.Unmarshal(data, &cf); err != nil {
		t.Fatal(err)
	}
	return append(args, cf.Args...)
}

// TestEvalGoldenTable runs `patchgate eval` (the real CLI code path) on every
// spec fixture, under every example policy, with no kernel state and with
// each kernel state fixture, and checks the exit code, verdict, violated rule
// IDs with their actions, deferred rules and exemptions against
// testdata/eval.golden (UPDATE_GOLDEN=1 rewrites it).
func TestEvalGoldenTable(t *testing.T) {
	fixtures, err := os.ReadDir(specFixtures)
	if err != nil {
		t.Fatal(err)
	}
	policies, err := filepath.Glob(filepath.Join(examplePolicy, "*.yaml"))
	if err != nil || len(policies) != 4 {
		t.Fatalf("example policies: %v %v", policies, err)
	}
	states := []string{"", "patched", "behind", "unknown"}
	var got bytes.Buffer
	fmt.Fprintln(&got, "# fixture policy kernel-state: exit verdict violations(rule=action) deferred exemptions")
	for _, f := range fixtures {
		base := evalArgs(t, f.Name())
		for _, p := range policies {
			for _, st := range states {
				args := append([]string{"eval", "--policy", p, "-o", "json", "--now", fixtureNow, "--node-name", "node-1"}, base...)
				if st != "" {
					args = append(args, "--kernel-state", filepath.Join(kernelFixtures, st+".json"))
				}
				var out, errb bytes.Buffer
				code := dispatch(args, &out, &errb)
				if code == exitInvalid {
					t.Fatalf("%v: exit 2: %s", args, errb.String())
				}
				var d policy.Decision
				if err := json.Unmarshal(out.Bytes(), &d); err != nil {
					t.Fatalf("%v: output is not a decision: %v\n%s", args, err, out.String())
				}
				if (code == exitDenied) != (d.Verdict == policy.Deny) {
					t.Errorf("%v: exit %d with verdict %s", args, code, d.Verdict)
				}
				var vs []string
				for _, v := range d.Violations {
					vs = append(vs, v.Rule+"="+string(v.Action))
				}
				if st == "" {
					st = "none"
				}
				fmt.Fprintf(&got, "%s %s %s: exit=%d %s [%s] deferred=[%s] exempt=[%s]\n",
					f.Name(), strings.TrimSuffix(filepath.Base(p), ".yaml"), st, code, d.Verdict,
					strings.Join(vs, " "), strings.Join(d.Deferred, " "), strings.Join(d.Exemptions, " "))
			}
		}
	}
	if os.Getenv("UPDATE_GOLDEN") != "" {
		if err := os.MkdirAll(filepath.Dir(evalGolden), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(evalGolden, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(evalGolden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		gl, wl := strings.Split(got.String(), "\n"), strings.Split(string(want), "\n")
		for i := 0; i < len(gl) || i < len(wl); i++ {
			var g, w string
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Errorf("line %d:\n got  %s\n want %s", i+1, g, w)
			}
		}
		t.Fatal("eval results differ from testdata/eval.golden (UPDATE_GOLDEN=1 rewrites it after review)")
	}
}

// TestEvalHostRootResolvesNamespaces: with --host-root, a CRI container's
// namespace paths are compared with <host-root>/proc/1/ns (here a fixture
// tree in which the sandbox's network namespace file is init's).
func TestEvalHostRootResolvesNamespaces(t *testing.T) {
	root := t.TempDir()
	for _, ns := range []string{"net", "ipc", "uts", "pid"} {
		for _, pid := range []string{"1", "4242"} {
			dir := filepath.Join(root, "proc", pid, "ns")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if pid == "4242" && ns == "net" {
				if err := os.Link(filepath.Join(root, "proc/1/ns/net"), filepath.Join(dir, ns)); err != nil {
					t.Fatal(err)
				}
				continue
			}
			if err := os.WriteFile(filepath.Join(dir, ns), nil, 0o444); err != nil {
				t.Fatal(err)
			}
		}
	}
	spec := filepath.Join(specFixtures, "hostNamespaces-deferred-cri", "config.json")
	var out, errb bytes.Buffer
	code := dispatch(builtinUnlessPolicy([]string{"eval", "--spec", spec, "--host-root", root, "-o", "json", "--node-name", "n"}), &out, &errb)
	var d policy.Decision
	if err := json.Unmarshal(out.Bytes(), &d); err != nil {
		t.Fatalf("exit %d: %v\n%s\n%s", code, err, out.String(), errb.String())
	}
	found := false
	for _, v := range d.Violations {
		if v.Rule == policy.RuleHostNamespaces && strings.Contains(v.Detail, `"network" namespace`) {
			found = true
		}
	}
	if code != exitDenied || !found || slices.Contains(d.Deferred, policy.RuleHostNamespaces) {
		t.Errorf("exit %d, violations %+v, deferred %v", code, d.Violations, d.Deferred)
	}
}

// eval --host-root judges a named AppArmor profile by the mode that host
// loaded it in (its /sys/kernel/security/apparmor/profiles): Ubuntu's
// "runc" profile is loaded unconfined and refused under baseline.yaml, the
// enforcing "cri-containerd.apparmor.d" is admitted.
func TestEvalHostRootAppArmorMode(t *testing.T) {
	root := t.TempDir()
	profiles, err := os.ReadFile("../../policy/testdata/apparmor/profiles")
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"sys/module/apparmor/parameters/enabled": []byte("Y\n"),
		"sys/kernel/security/apparmor/profiles":  profiles,
	} {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := os.ReadFile(filepath.Join(specFixtures, "baseline", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var spec map[string]any
	if err := json.Unmarshal(raw, &spec); err != nil {
		t.Fatal(err)
	}
	for profile, want := range map[string]string{
		"runc":                      `process.apparmorProfile="runc" is loaded in unconfined mode`,
		"cri-containerd.apparmor.d": "",
	} {
		spec["process"].(map[string]any)["apparmorProfile"] = profile
		b, err := json.Marshal(spec)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "config.json")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		var out, errb bytes.Buffer
		code := dispatch([]string{"eval", "--spec", path, "--policy", "../../examples/policies/baseline.yaml", "--host-root", root, "-o", "json", "--node-name", "n"}, &out, &errb)
		var d policy.Decision
		if err := json.Unmarshal(out.Bytes(), &d); err != nil {
			t.Fatalf("exit %d: %v\n%s\n%s", code, err, out.String(), errb.String())
		}
		got := ""
		for _, v := range d.Violations {
			if v.Rule == policy.RuleAppArmor {
				got = v.Detail
			}
		}
		if (want == "") != (got == "") || !strings.Contains(got, want) {
			t.Errorf("%q: apparmor violation %q, want %q", profile, got, want)
		}
	}
}
