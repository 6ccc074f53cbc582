package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus/hooks/test"
	"sigs.k8s.io/yaml"

	"github.com/patchgate/patchgate/policy"
	"github.com/patchgate/patchgate/service"
)

// withNodePolicyDir points the node's policy directory (/etc/patchgate) at
// dir for one test.
func withNodePolicyDir(t *testing.T, dir string) {
	t.Helper()
	old := nodePolicyDir
	nodePolicyDir = dir
	t.Cleanup(func() { nodePolicyDir = old })
}

// writeStatus writes a node service status file, as the service does
// (service.WriteStatusFile), naming enforced as the policy it enforces,
// loaded from policyPath for node gpu-worker-1 and copied to policyCopy.
func writeStatus(t *testing.T, enforced *policy.Policy, policyPath, policyCopy string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "status.json")
	st := service.Status{PID: 1, Policy: service.PolicyStatus{
		Name: enforced.Name(), Digest: enforced.Digest(), Sources: enforced.Sources,
		Path: policyPath, NodeName: "gpu-worker-1", Copy: policyCopy,
	}}
	if err := service.WriteStatusFile(p, st); err != nil {
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
	inForce, err := policy.Load(copyDir, "")
	if err != nil {
		t.Fatal(err)
	}
	fleetGPU, err := policy.Load(dir, "gpu-worker-1")
	if err != nil {
		t.Fatal(err)
	}
	rep := check(writeStatus(t, inForce, dir, copyDir))
	if rep.Policy.Name != "in-force" || rep.PolicySource != (policySource{Path: copyDir, From: fromService}) {
		t.Errorf("with a copy: policy %+v from %+v", rep.Policy, rep.PolicySource)
	}
	missing := filepath.Join(t.TempDir(), "gone")
	rep = check(writeStatus(t, fleetGPU, dir, missing))
	if rep.Policy.Name != "fleet-gpu" || rep.PolicySource.Path != dir || rep.PolicySource.From != fromService || !strings.Contains(rep.PolicySource.Note, missing) {
		t.Errorf("copy not readable: policy %+v from %+v", rep.Policy, rep.PolicySource)
	}
	// The service's node name selects the overlay (nodes/gpu-worker-1.yaml);
	// --node-name may say the same.
	code, out, errs := nodeDispatch(t, "check", "--host-root", hostTree("debian12-enabled"), "--now", checkNow, "-o", "json",
		"--status-file", writeStatus(t, fleetGPU, dir, ""), "--node-name", "gpu-worker-1")
	var same checkReport
	if err := json.Unmarshal([]byte(out), &same); err != nil {
		t.Fatalf("exit %d: %v\n%s", code, err, errs)
	}
	if same.Policy.Digest != fleetGPU.Digest() {
		t.Errorf("--node-name gpu-worker-1: policy %+v", same.Policy)
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

// startNodeService runs the node service in this process on the policy at
// pol, with settings changed by tweak, until the test ends, and returns
// the status file it writes once that names a policy.
func startNodeService(t *testing.T, daemon, pol string, tweak func(*nodeSettings)) (*service.Service, string) {
	t.Helper()
	s := nodeTestSettings(t, daemon, copyHost(t, "debian12-enabled"), pol)
	if tweak != nil {
		tweak(&s)
	}
	logger, _ := test.NewNullLogger()
	n := &nodeRunner{log: logger}
	svc, err := n.start(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.close)
	waitStatus(t, s.statusFile, func(st *service.Status) bool { return st.Policy.Digest != "" })
	return svc, s.statusFile
}

// waitStatus waits until the status file the service writes satisfies ok.
func waitStatus(t *testing.T, path string, ok func(*service.Status) bool) *service.Status {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		st, err := service.ReadStatusFile(path)
		if err == nil && ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("status file %s never became what the test waits for: %+v, %v", path, st, err)
		}
	}
}

// Without --policy, eval, check and policy show judge by what the node
// service enforces, and only by that: when the files at the service's
// path hold another policy (a reload it refused, one it has not made yet,
// or a ConfigMap it reads elsewhere), they exit 2 and say what the service
// enforces, what the files hold, why they differ and how to preview the
// files (--policy), never judging by the files in the service's name.
func TestNodePolicyOnlyWhatTheServiceEnforces(t *testing.T) {
	withNodePolicyDir(t, filepath.Join(t.TempDir(), "absent"))
	pol := t.TempDir()
	head := "apiVersion: patchgate.dev/v1alpha1\nkind: NodePolicy\nmetadata: {name: %s}\nspec:\n"
	strict := fmt.Sprintf(head, "svc-strict") + "  defaultAction: audit\n  rules:\n    runAsRoot: {action: enforce}\n"
	replaceFile(t, filepath.Join(pol, "policy.yaml"), strict)
	if err := os.Mkdir(filepath.Join(pol, "policy.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, status := startNodeService(t, "serve", pol, nil)
	spec := filepath.Join(specFixtures, "runAsRoot-fail", "config.json")
	eval := func(status string) (int, evalReport, string) {
		t.Helper()
		code, out, errs := nodeDispatch(t, "eval", "--spec", spec, "--status-file", status, "-o", "json")
		var rep evalReport
		if code != exitInvalid {
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatalf("exit %d: %v\n%s", code, err, errs)
			}
		}
		return code, rep, errs
	}
	code, rep, errs := eval(status)
	if code != exitDenied || rep.Policy.Name != "svc-strict" || rep.PolicySource != (policySource{Path: pol, From: fromService}) {
		t.Fatalf("the files the service enforces: exit %d, policy %+v from %+v, stderr %q", code, rep.Policy, rep.PolicySource, errs)
	}

	// A drop-in the service refuses (owned by another uid): its reload
	// fails and it keeps svc-strict; the status says so.
	relax := filepath.Join(pol, "policy.d", "50-relax.yaml")
	replaceFile(t, relax, fmt.Sprintf(head, "svc-relaxed")+"  rules:\n    runAsRoot: {action: off}\n")
	if err := os.Chown(relax, 4242, 4242); err != nil {
		t.Skipf("cannot give the drop-in to another uid: %v", err)
	}
	failed := waitStatus(t, status, func(st *service.Status) bool { return st.Policy.Error != "" })
	if failed.Policy.Name != "svc-strict" {
		t.Fatalf("after the refused reload the service enforces %q", failed.Policy.Name)
	}
	// What an operator who owns the drop-in sees (uid 4242 loads it, the
	// service does not): this process is that operator once the drop-in
	// is its own, with the status the service wrote while refusing it.
	snapshot := filepath.Join(t.TempDir(), "status.json")
	if err := service.WriteStatusFile(snapshot, *failed); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(relax, os.Geteuid(), os.Getegid()); err != nil {
		t.Fatal(err)
	}
	relaxed, err := policy.Load(pol, "node-a")
	if err != nil {
		t.Fatal(err)
	}
	code, rep, errs = eval(snapshot)
	if code != exitInvalid {
		t.Fatalf("eval judged by the files the service refused: exit %d, policy %+v from %+v", code, rep.Policy, rep.PolicySource)
	}
	for _, want := range []string{
		`enforces policy "svc-strict" (` + failed.Policy.Digest + ")",
		pol + ` now holds policy "svc-relaxed" (` + relaxed.Digest() + ")",
		"last reload failed", "owned by uid 4242",
		"give --policy " + pol + " --node-name node-a",
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
	for _, args := range [][]string{
		{"check", "--host-root", hostTree("debian12-enabled"), "--now", checkNow, "--status-file", snapshot},
		{"policy", "show", "--status-file", snapshot},
	} {
		if code, out, errs := nodeDispatch(t, args...); code != exitInvalid || out != "" || !strings.Contains(errs, "svc-relaxed") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errs)
		}
	}
	// The preview the message offers judges by the files, said so.
	code, out, _ := nodeDispatch(t, "eval", "--spec", spec, "--status-file", snapshot, "--policy", pol, "--node-name", "node-a")
	if code != exitOK || !strings.Contains(out, "svc-relaxed") || !strings.Contains(out, pol+" (--policy)") {
		t.Errorf("--policy preview: exit %d\n%s", code, out)
	}
	// Once the service has loaded the drop-in, it is what it enforces.
	waitStatus(t, status, func(st *service.Status) bool { return st.Policy.Digest == relaxed.Digest() })
	if code, rep, errs = eval(status); code != exitOK || rep.Policy.Name != "svc-relaxed" || rep.PolicySource.From != fromService {
		t.Errorf("after the reload: exit %d, policy %+v from %+v, stderr %q", code, rep.Policy, rep.PolicySource, errs)
	}

	// A node name other than the service's is another policy than the one
	// it enforces: a preview, asked for by --policy.
	code, _, errs = nodeDispatch(t, "eval", "--spec", spec, "--status-file", status, "--node-name", "other")
	if code != exitInvalid || !strings.Contains(errs, "give --policy "+pol+" --node-name other") {
		t.Errorf("--node-name other: exit %d, stderr %q", code, errs)
	}
}

// A service that has not reloaded yet (it polls), or one that loads another
// directory of the same name (a DaemonSet's ConfigMap): the files differ
// from what it enforces, with no reload error to tell. A copy of the policy
// in force (nri --policy-copy) that this user can read is what it enforces.
func TestNodePolicyServiceNotReloaded(t *testing.T) {
	withNodePolicyDir(t, filepath.Join(t.TempDir(), "absent"))
	pol := t.TempDir()
	replaceFile(t, filepath.Join(pol, "policy.yaml"), "apiVersion: patchgate.dev/v1alpha1\nkind: NodePolicy\nmetadata: {name: first}\nspec: {}\n")
	copyDir := filepath.Join(t.TempDir(), "copy")
	_, status := startNodeService(t, "nri", pol, func(s *nodeSettings) {
		s.pollInterval = time.Hour
		s.policyCopy = copyDir
	})
	replaceFile(t, filepath.Join(pol, "policy.yaml"), "apiVersion: patchgate.dev/v1alpha1\nkind: NodePolicy\nmetadata: {name: second}\nspec: {}\n")
	code, out, errs := nodeDispatch(t, "policy", "show", "--status-file", status)
	if code != exitOK || !strings.Contains(out, "name: first") || !strings.Contains(out, "# read from "+copyDir+" (what the node service enforces)") {
		t.Errorf("with the copy: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	// Without the copy (an operator who cannot read it), the files.
	if err := os.RemoveAll(copyDir); err != nil {
		t.Fatal(err)
	}
	code, out, errs = nodeDispatch(t, "policy", "show", "--status-file", status)
	if code != exitInvalid || out != "" {
		t.Fatalf("without the copy: exit %d, stdout %q", code, out)
	}
	for _, want := range []string{`enforces policy "first"`, `now holds policy "second"`, "has not reloaded", "its copy " + copyDir + " is not readable here", "give --policy " + pol} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
}
