package main

import (
	"bytes"
	"encoding/json"
	"github.com/patchgate/patchgate/internal/fstree"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/patchgate/patchgate/policy"
)

const checkNow = "2026-11-27T12:00:00Z"

func hostTree(name string) string {
	return filepath.Join("..", "..", "livepatch", "testdata", "hosts", name)
}

// copyHost copies a fixture host tree so --apply may change it.
func copyHost(t *testing.T, name string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), name)
	if err := fstree.Copy(hostTree(name), dst); err != nil {
		t.Fatal(err)
	}
	return dst
}

func writePolicy(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(p, []byte("apiVersion: patchgate.dev/v1alpha1\nkind: NodePolicy\nmetadata: {name: check-test}\nspec:\n"+body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func runCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := dispatch(builtinUnlessPolicy(args), &out, &errb)
	return code, out.String(), errb.String()
}

// builtinUnlessPolicy adds --default-policy to a check, eval or policy show
// that names no policy: these tests judge by the built-in default policy
// (TestNodePolicy* test the node's).
func builtinUnlessPolicy(args []string) []string {
	if len(args) == 0 || !(args[0] == "check" || args[0] == "eval" || len(args) > 1 && args[0] == "policy" && args[1] == "show") {
		return args
	}
	for _, a := range args {
		if a == "--policy" || strings.HasPrefix(a, "--policy=") || a == "--default-policy" || a == "--help" {
			return args
		}
	}
	return append(append([]string{}, args...), "--default-policy")
}

func checkJSON(t *testing.T, args ...string) (int, checkReport) {
	t.Helper()
	code, out, errs := runCmd(t, append([]string{"check", "-o", "json", "--now", checkNow}, args...)...)
	var rep checkReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("check %v: exit %d, output not JSON: %v\nstdout: %s\nstderr: %s", args, code, err, out, errs)
	}
	return code, rep
}

const kernelAware = "../../examples/policies/kernel-aware.yaml"

func TestCheckExitCodes(t *testing.T) {
	cvePolicy := writePolicy(t, "  kernel:\n    requiredCVEs: [CVE-2021-3347]\n")
	kcarePolicy := writePolicy(t, "  kernel:\n    provider: kernelcare\n")
	for _, c := range []struct {
		policy, host string
		code         int
		rules        []string
	}{
		// kernel-aware requires livepatch_sample in force and >= 6.1.0-18-amd64.
		{kernelAware, "debian12-enabled", 0, nil},
		{kernelAware, "debian12-transition", 1, []string{"kernelPatches"}},
		{kernelAware, "debian12-nolivepatch", 1, []string{"kernelPatches"}},
		{kernelAware, "debian10-disabled", 1, []string{"kernelPatches", "kernelVersion"}},
		{cvePolicy, "ubuntu20-kernelcare", 0, nil},
		{cvePolicy, "ubuntu16-canonical-yaml", 1, []string{"kernelCVEs"}},
		// The Canonical client is not enabled: the CVEs cannot be known.
		{cvePolicy, "ubuntu22-canonical-disabled", 2, []string{"kernelStateUnknown"}},
		// The policy names a provider whose tool is not installed: the
		// whole state is unknown, whatever the policy requires.
		{kcarePolicy, "debian12-enabled", 2, []string{"kernelStateUnknown"}},
		{kcarePolicy, "ubuntu20-kernelcare", 0, nil},
		// No policy: the default has no kernel requirement.
		{"", "debian12-nolivepatch", 0, nil},
	} {
		args := []string{"--host-root", hostTree(c.host)}
		if c.policy != "" {
			args = append(args, "--policy", c.policy)
		}
		code, rep := checkJSON(t, args...)
		var rules []string
		for _, v := range rep.Violations {
			rules = append(rules, v.Rule)
		}
		if code != c.code || !slices.Equal(rules, c.rules) || rep.Compliant != (c.code == 0) {
			t.Errorf("%s on %s: exit %d rules %v compliant %v; want exit %d rules %v", c.policy, c.host, code, rules, rep.Compliant, c.code, c.rules)
		}
	}
}

func TestCheckJSONIsEvalKernelState(t *testing.T) {
	code, out, errs := runCmd(t, "check", "-o", "json", "--now", checkNow, "--host-root", hostTree("ubuntu18-canonical-json"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	// `patchgate eval --kernel-state` reads this output as it is.
	k, err := policy.ParseKernelState([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if k.Release != "4.15.0-212-generic" || len(k.FixedCVEs) != 14 || k.ObservedAt.Format("2006-01-02T15:04:05Z07:00") != checkNow {
		t.Errorf("kernel state: %+v", k)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"kernel", "compliant", "violations"} {
		if _, ok := raw[key]; !ok {
			t.Errorf("check JSON has no %q", key)
		}
	}
	if string(raw["violations"]) != "[]" {
		t.Errorf("violations = %s, want []", raw["violations"])
	}
}

func TestCheckApplyKernelCare(t *testing.T) {
	root := copyHost(t, "ubuntu20-kernelcare")
	pol := writePolicy(t, "  kernel:\n    requiredCVEs: [CVE-2021-20177]\n    denyWhenUpdatesPending: true\n  remediation: {timeout: 1m}\n")
	// Before: behind (CVE missing, update pending).
	code, rep := checkJSON(t, "--policy", pol, "--host-root", root)
	if code != 1 || rep.Compliant {
		t.Fatalf("before: exit %d %+v", code, rep.Violations)
	}
	code, rep = checkJSON(t, "--policy", pol, "--host-root", root, "--apply")
	if code != 0 || !rep.Compliant || rep.Remediation == nil || rep.Remediation.Status != "patched" {
		t.Fatalf("--apply: exit %d compliant %v remediation %+v violations %+v", code, rep.Compliant, rep.Remediation, rep.Violations)
	}
	if rep.Before == nil || rep.Before.Compliant || len(rep.Before.Violations) != 2 {
		t.Errorf("before part: %+v", rep.Before)
	}
	if !slices.Equal(rep.Remediation.Commands[0], []string{"kcarectl", "--update"}) {
		t.Errorf("ran %v", rep.Remediation.Commands)
	}
	if rep.Kernel.EffectiveVersion != "5.4.0-1028.32" || !slices.Contains(rep.Kernel.FixedCVEs, "CVE-2021-20177") {
		t.Errorf("after: %+v", rep.Kernel)
	}
	// Compliant now: --apply runs nothing.
	code, rep = checkJSON(t, "--policy", pol, "--host-root", root, "--apply")
	if code != 0 || rep.Remediation != nil {
		t.Errorf("second --apply: exit %d remediation %+v", code, rep.Remediation)
	}
}

func TestCheckApplyKpatchText(t *testing.T) {
	root := copyHost(t, "rhel8-kpatch")
	pol := writePolicy(t, "  kernel:\n    provider: kpatch\n    requiredPatches: [kpatch_4_18_0_513_9_1_1_1, kpatch_4_18_0_513_9_1_2_1]\n    minimumVersion: 4.18.0-513.9.1.el8_9\n")
	code, out, errs := runCmd(t, "check", "--now", checkNow, "--policy", pol, "--host-root", root, "--apply")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	for _, want := range []string{
		"== before", "NOT compliant (behind)", `required live patch is not in force: "kpatch_4_18_0_513_9_1_2_1" (not loaded)`,
		"== remediation: patched", "ran: kpatch load kpatch_4_18_0_513_9_1_2_1",
		"== after", "kpatch_4_18_0_513_9_1_2_1  kpatch    yes      no          yes", "compliant",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text output lacks %q:\n%s", want, out)
		}
	}
}

func TestCheckApplyFailure(t *testing.T) {
	root := copyHost(t, "debian12-nolivepatch")
	script := "#!/bin/sh\necho 'insmod: ERROR: could not insert module livepatch_sample.ko: Key was rejected by service' >&2\nexit 1\n"
	if err := os.MkdirAll(filepath.Join(root, "usr/local/sbin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "usr/local/sbin/load-livepatch"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	pol := writePolicy(t, "  kernel:\n    requiredPatches: [livepatch_sample]\n  remediation: {command: [/usr/local/sbin/load-livepatch, /lib/modules/livepatch_sample.ko]}\n")
	code, rep := checkJSON(t, "--policy", pol, "--host-root", root, "--apply")
	if code != 1 || rep.Remediation == nil || rep.Remediation.Status != "failed" || !strings.Contains(rep.Remediation.Reason, "Key was rejected by service") {
		t.Errorf("exit %d remediation %+v", code, rep.Remediation)
	}
}

func TestCheckNFDAndSummary(t *testing.T) {
	dir := t.TempDir()
	feat := filepath.Join(dir, "patchgate")
	code, out, _ := runCmd(t, "check", "-q", "--now", checkNow, "--policy", kernelAware, "--host-root", hostTree("debian12-transition"), "--nfd-features", feat)
	if code != 1 || strings.Count(out, "\n") != 1 || !strings.Contains(out, "behind: kernelPatches") {
		t.Errorf("summary: exit %d %q", code, out)
	}
	b, err := os.ReadFile(feat)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "patchgate.livepatch.compliant=false\npatchgate.livepatch.effective-version=6.1.0-18-amd64\n" {
		t.Errorf("feature file:\n%s", b)
	}
	// A version with characters a label value cannot hold, and compliant.
	code, _, _ = runCmd(t, "check", "--now", checkNow, "--host-root", hostTree("debian13-replace"), "--nfd-features", feat)
	b = readOrFail(t, feat)
	if code != 0 || string(b) != "patchgate.livepatch.compliant=true\npatchgate.livepatch.effective-version=6.12.38_deb13-amd64\n" {
		t.Errorf("exit %d, feature file:\n%s", code, b)
	}
	// KernelCare: the effective version, not the running release.
	runCmd(t, "check", "--now", checkNow, "--host-root", hostTree("ubuntu20-kernelcare"), "--nfd-features", feat)
	if b = readOrFail(t, feat); !strings.Contains(string(b), "effective-version=5.4.0-1028.31\n") {
		t.Errorf("feature file:\n%s", b)
	}
	if leftovers, err := filepath.Glob(filepath.Join(dir, ".patchgate-*.tmp")); err != nil || len(leftovers) != 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}

func TestCheckBadInput(t *testing.T) {
	for _, args := range [][]string{
		{"check", "-o", "xml"},
		{"check", "--host-root", "/nonexistent/host"},
		{"check", "--policy", "/nonexistent/policy.yaml"},
		{"check", "extra-arg"},
		{"check", "--now", "yesterday"},
	} {
		if code, _, errs := runCmd(t, args...); code != 2 || errs == "" {
			t.Errorf("%v: exit %d stderr %q", args, code, errs)
		}
	}
}

func TestEvalHostRoot(t *testing.T) {
	spec := filepath.Join("..", "..", "policy", "testdata", "specs", "runAsRoot-fail", "config.json")
	// kernel-aware: root is warned on a patched kernel, blocked while behind.
	for host, want := range map[string]int{"debian12-enabled": 0, "debian12-transition": 1} {
		code, out, errs := runCmd(t, "eval", "-o", "json", "--policy", kernelAware, "--spec", spec, "--host-root", hostTree(host))
		if code != want {
			t.Errorf("%s: exit %d, want %d\n%s%s", host, code, want, out, errs)
		}
		var d policy.Decision
		if err := json.Unmarshal([]byte(out), &d); err != nil {
			t.Fatal(err)
		}
		if d.KernelBehind != (want == 1) {
			t.Errorf("%s: kernelBehind = %v", host, d.KernelBehind)
		}
	}
	if code, _, errs := runCmd(t, "eval", "--spec", spec, "--host-root", hostTree("debian12-enabled"), "--kernel-state", "x.json"); code != 2 || !strings.Contains(errs, "exclude") {
		t.Errorf("both sources: exit %d %q", code, errs)
	}
}

// TestCheckEveryFixtureHost: `patchgate check -o json` reports, for every
// fixture host tree, exactly the kernel state in the tree's golden file
// (livepatch/testdata/golden, whose expectations reader_test.go also spells
// out by hand).
func TestCheckEveryFixtureHost(t *testing.T) {
	hosts, err := os.ReadDir(filepath.Join("..", "..", "livepatch", "testdata", "hosts"))
	if err != nil {
		t.Fatal(err)
	}
	if len(hosts) < 13 {
		t.Fatalf("only %d fixture hosts", len(hosts))
	}
	for _, h := range hosts {
		code, rep := checkJSON(t, "--host-root", hostTree(h.Name()))
		got, err := json.MarshalIndent(rep.Kernel, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join("..", "..", "livepatch", "testdata", "golden", h.Name()+".json"))
		if err != nil {
			t.Fatal(err)
		}
		if string(got)+"\n" != string(want) {
			t.Errorf("%s: check reports\n%s\nthe tree holds\n%s", h.Name(), got, want)
		}
		// The default policy asks nothing of the kernel: every tree passes.
		if code != 0 || !rep.Compliant {
			t.Errorf("%s: exit %d under the default policy", h.Name(), code)
		}
	}
}

func readOrFail(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
