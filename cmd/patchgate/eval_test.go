package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
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
	args := []string{"--spec", filepath.Join(dir, "config.json")}
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
