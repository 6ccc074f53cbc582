package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// withNodePolicyDir points the node's policy directory (/etc/patchgate) at
// dir for one test.
func withNodePolicyDir(t *testing.T, dir string) {
	t.Helper()
	old := nodePolicyDir
	nodePolicyDir = dir
	t.Cleanup(func() { nodePolicyDir = old })
}

// writeStatus writes a node service status file naming the policy it
// enforces (the fields service.Status writes).
func writeStatus(t *testing.T, policyPath, policyCopy string) string {
	t.Helper()
	st := map[string]any{
		"pid":    1,
		"policy": map[string]any{"name": "fleet", "digest": "sha256:x", "path": policyPath, "copy": policyCopy, "nodeName": "gpu-worker-1"},
		"kernel": map[string]any{},
	}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "status.json")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func nodeDispatch(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb strings.Builder
	code := dispatch(args, &out, &errb)
	return code, out.String(), errb.String()
}

// A node without a policy: check, eval and policy show say so and exit 2;
// they never judge by the built-in default unless asked (--default-policy).
func TestNodePolicyNone(t *testing.T) {
	spec := filepath.Join(specFixtures, "baseline", "config.json")
	for _, args := range [][]string{
		{"check", "--host-root", hostTree("debian12-enabled"), "--now", checkNow},
		{"eval", "--spec", spec},
		{"policy", "show"},
	} {
		code, out, errs := nodeDispatch(t, args...)
		if code != exitInvalid || out != "" {
			t.Errorf("%v: exit %d, stdout %q", args, code, out)
		}
		for _, want := range []string{"no policy on this node", nodePolicyDir + " does not exist", "--policy PATH", "--default-policy"} {
			if !strings.Contains(errs, want) {
				t.Errorf("%v: stderr %q lacks %q", args, errs, want)
			}
		}
		code, out, errs = nodeDispatch(t, append(args, "--default-policy", "-o", "json")...)
		if code == exitInvalid || !strings.Contains(out, `"default"`) {
			t.Errorf("%v --default-policy: exit %d, stdout %q stderr %q", args, code, out, errs)
		}
		code, _, errs = nodeDispatch(t, append(args, "--default-policy", "--policy", "x.yaml")...)
		if code != exitInvalid || !strings.Contains(errs, "none of the others can be") {
			t.Errorf("%v --default-policy --policy: exit %d, stderr %q", args, code, errs)
		}
	}
}

// With /etc/patchgate there, check and eval judge by it and say so, in
// text and JSON.
func TestNodePolicyFromNodeDir(t *testing.T) {
	dir, err := filepath.Abs("../../examples/policy-dir")
	if err != nil {
		t.Fatal(err)
	}
	withNodePolicyDir(t, dir)
	code, out, errs := nodeDispatch(t, "check", "--host-root", hostTree("debian12-enabled"), "--now", checkNow, "-o", "json")
	var rep checkReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("exit %d: %v\n%s", code, err, errs)
	}
	if rep.Policy.Name != "fleet" || rep.PolicySource != (policySource{Path: dir, From: fromNode}) {
		t.Errorf("policy %+v from %+v", rep.Policy, rep.PolicySource)
	}
	_, out, _ = nodeDispatch(t, "check", "--host-root", hostTree("debian12-enabled"), "--now", checkNow)
	if !strings.Contains(out, "policy read from "+dir+" (the node's policy)") {
		t.Errorf("check text does not say which policy:\n%s", out)
	}
	spec := filepath.Join(specFixtures, "baseline", "config.json")
	_, out, errs = nodeDispatch(t, "eval", "--spec", spec, "-o", "json")
	var ev evalReport
	if err := json.Unmarshal([]byte(out), &ev); err != nil {
		t.Fatalf("eval: %v\n%s", err, errs)
	}
	if ev.Policy.Name != "fleet" || ev.PolicySource.From != fromNode || ev.Verdict == "" {
		t.Errorf("eval policy %+v from %+v, verdict %q", ev.Policy, ev.PolicySource, ev.Verdict)
	}
	_, out, _ = nodeDispatch(t, "eval", "--spec", spec)
	if !strings.Contains(out, "policy read from "+dir+" (the node's policy)") {
		t.Errorf("eval text does not say which policy:\n%s", out)
	}
	_, out, _ = nodeDispatch(t, "policy", "show")
	if !strings.Contains(out, "# read from "+dir+" (the node's policy)") {
		t.Errorf("policy show does not say which policy:\n%s", out)
	}
}

// What the node service enforces wins over /etc/patchgate: its copy of the
// policy in force, or, when the copy cannot be read, the path it loads
// with the node name it uses.
func TestNodePolicyFromService(t *testing.T) {
	withNodePolicyDir(t, filepath.Join(t.TempDir(), "absent"))
	dir, err := filepath.Abs("../../examples/policy-dir")
	if err != nil {
		t.Fatal(err)
	}
	copyDir := t.TempDir()
	copyPolicy := "apiVersion: patchgate.dev/v1alpha1\nkind: NodePolicy\nmetadata: {name: in-force}\nspec: {}\n"
	if err := os.WriteFile(filepath.Join(copyDir, "policy.yaml"), []byte(copyPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	check := func(status string) checkReport {
		t.Helper()
		code, out, errs := nodeDispatch(t, "check", "--host-root", hostTree("debian12-enabled"), "--now", checkNow, "-o", "json", "--status-file", status)
		var rep checkReport
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("exit %d: %v\n%s", code, err, errs)
		}
		return rep
	}
	rep := check(writeStatus(t, dir, copyDir))
	if rep.Policy.Name != "in-force" || rep.PolicySource != (policySource{Path: copyDir, From: fromService}) {
		t.Errorf("with a copy: policy %+v from %+v", rep.Policy, rep.PolicySource)
	}
	missing := filepath.Join(t.TempDir(), "gone")
	rep = check(writeStatus(t, dir, missing))
	if rep.Policy.Name != "fleet-gpu" || rep.PolicySource.Path != dir || rep.PolicySource.From != fromService || !strings.Contains(rep.PolicySource.Note, missing) {
		t.Errorf("copy not readable: policy %+v from %+v", rep.Policy, rep.PolicySource)
	}
	// The service's node name selects the overlay (nodes/gpu-worker-1.yaml)
	// unless --node-name says otherwise.
	withOverlay := rep.Policy.Digest
	code, out, _ := nodeDispatch(t, "check", "--host-root", hostTree("debian12-enabled"), "--now", checkNow, "-o", "json",
		"--status-file", writeStatus(t, dir, ""), "--node-name", "other")
	var other checkReport
	if err := json.Unmarshal([]byte(out), &other); err != nil {
		t.Fatalf("exit %d: %v", code, err)
	}
	if other.Policy.Digest == withOverlay {
		t.Errorf("--node-name did not change the overlay: %s", other.Policy.Digest)
	}
	// A status file that cannot be read is not a reason to judge by
	// another policy.
	bad := filepath.Join(t.TempDir(), "status.json")
	if err := os.WriteFile(bad, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := nodeDispatch(t, "eval", "--spec", filepath.Join(specFixtures, "baseline", "config.json"), "--status-file", bad); code != exitInvalid || !strings.Contains(errs, "cannot tell which policy the node service enforces") {
		t.Errorf("broken status file: exit %d, stderr %q", code, errs)
	}
}

// --now takes RFC 3339 and says so, with an example; Go's reference
// layout never shows.
func TestNowErrorSaysWhatIsExpected(t *testing.T) {
	spec := filepath.Join(specFixtures, "baseline", "config.json")
	for _, args := range [][]string{
		{"check", "--default-policy", "--host-root", hostTree("debian12-enabled"), "--now", "yesterday"},
		{"eval", "--default-policy", "--spec", spec, "--now", "yesterday"},
		{"eval", "--default-policy", "--spec", spec, "--now", "2026-11-27"},
	} {
		code, _, errs := nodeDispatch(t, args...)
		if code != exitInvalid {
			t.Errorf("%v: exit %d", args, code)
		}
		if !strings.Contains(errs, "want an RFC 3339 time, e.g. 2026-11-27T12:00:00Z") || strings.Contains(errs, "2006") {
			t.Errorf("%v: stderr %q", args, errs)
		}
	}
}

// -q is a one-line summary: asking for JSON or YAML with it is an error,
// not a silent choice of one.
func TestQuietWithStructuredOutput(t *testing.T) {
	for _, o := range []string{"json", "yaml"} {
		code, out, errs := nodeDispatch(t, "check", "--default-policy", "--host-root", hostTree("debian12-enabled"), "-q", "-o", o)
		if code != exitInvalid || out != "" || !strings.Contains(errs, "cannot be combined with -o "+o) {
			t.Errorf("-q -o %s: exit %d, stdout %q, stderr %q", o, code, out, errs)
		}
	}
}

// Every command with structured output prints JSON and YAML that parse,
// and the same document in both.
func TestStructuredOutputParses(t *testing.T) {
	logPath := writeAuditFixture(t)
	spec := filepath.Join(specFixtures, "baseline", "config.json")
	for _, args := range [][]string{
		{"version"},
		{"check", "--default-policy", "--host-root", hostTree("debian12-enabled"), "--now", checkNow},
		{"eval", "--default-policy", "--spec", spec},
		{"audit", "--path", logPath},
		{"policy", "validate", filepath.Join(examplePolicy, "baseline.yaml")},
		{"policy", "show", "--default-policy"},
	} {
		_, js, errs := nodeDispatch(t, append(args, "-o", "json")...)
		var fromJSON any
		if err := json.Unmarshal([]byte(js), &fromJSON); err != nil {
			t.Errorf("%v -o json: %v\nstdout %q\nstderr %q", args, err, js, errs)
			continue
		}
		_, ys, errs := nodeDispatch(t, append(args, "-o", "yaml")...)
		var fromYAML any
		if err := yaml.Unmarshal([]byte(ys), &fromYAML); err != nil {
			t.Errorf("%v -o yaml: %v\nstdout %q\nstderr %q", args, err, ys, errs)
			continue
		}
		if args[0] == "check" || args[0] == "policy" && args[1] == "show" {
			continue // observedAt and the YAML header differ between runs and formats
		}
		a, _ := json.Marshal(fromJSON)
		b, _ := json.Marshal(fromYAML)
		if string(a) != string(b) && args[0] != "audit" {
			t.Errorf("%v: JSON and YAML differ:\n%s\n%s", args, a, b)
		}
	}
}

// policy validate -o json: every problem with file, line, key and message
// (CI annotations), the valid paths too, and exit 2.
func TestPolicyValidateJSON(t *testing.T) {
	bad := writeTemp(t, "bad.yaml", "apiVersion: patchgate.dev/v1alpha1\nkind: NodePolicy\nspec:\n  rules:\n    runAsRoot:\n      action: maybe\n  bogus: 1\n")
	good := filepath.Join(examplePolicy, "baseline.yaml")
	code, out, errs := nodeDispatch(t, "policy", "validate", good, bad, "-o", "json")
	if code != exitInvalid || errs != "" {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	var res validateResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if res.Valid || len(res.Policies) != 2 || !res.Policies[0].Valid || res.Policies[1].Valid || res.Policies[0].Name == "" {
		t.Errorf("policies %+v", res.Policies)
	}
	want := []validateError{
		{File: bad, Line: 6, Key: "spec.rules.runAsRoot.action", Message: `unknown action "maybe" (want enforce, warn, audit or off)`},
		{File: bad, Line: 7, Key: "spec.bogus"},
	}
	if len(res.Errors) != len(want) {
		t.Fatalf("errors %+v", res.Errors)
	}
	for i, w := range want {
		g := res.Errors[i]
		if g.File != w.File || g.Line != w.Line || g.Key != w.Key || w.Message != "" && g.Message != w.Message || g.Message == "" {
			t.Errorf("error %d = %+v, want %+v", i, g, w)
		}
	}
	// A YAML syntax error: the line to fix, and the message.
	syntax := writeTemp(t, "syntax.yaml", "spec:\n  rules:\n    runAsRoot:\n      action: [\n")
	_, out, _ = nodeDispatch(t, "policy", "validate", syntax, "-o", "json")
	if err := json.Unmarshal([]byte(out), &res); err != nil || len(res.Errors) == 0 || res.Errors[0].Line != 4 || res.Errors[0].Message == "" || strings.HasPrefix(res.Errors[0].Message, "spec.") {
		t.Errorf("syntax error: %v %+v", err, res.Errors)
	}
}
