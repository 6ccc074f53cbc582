//go:build e2e

package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/internal/running"
)

// auditOnlyPolicy admits everything and records it: the policy in force
// while a new one is previewed.
const auditOnlyPolicy = `apiVersion: patchgate.dev/v1alpha1
kind: NodePolicy
metadata: {name: audit-only}
spec:
  defaultAction: audit
  kernel: {requiredPatches: [], onUnknown: audit, action: audit}
  audit: {recordAllowed: true}
  hook: {onError: allow}
`

// enforceRootPolicy is the candidate: root and privileged refused,
// everything else only audited.
const enforceRootPolicy = `apiVersion: patchgate.dev/v1alpha1
kind: NodePolicy
metadata: {name: enforce-root}
spec:
  defaultAction: audit
  kernel: {requiredPatches: [], onUnknown: audit, action: audit}
  rules:
    runAsRoot:  {action: enforce}
    privileged: {action: enforce}
`

// TestEvalRunning: containers admitted under an audit-only policy on the
// real containerd (a compliant one, a root one, a privileged one, and one
// that has exited, whose task CRI deletes), then `patchgate eval --running --policy enforce-root`
// reads containerd's state directory and runc's, and reports the root and
// the privileged container as would-refuse (exit 1), the compliant one as
// admitted, the pod sandboxes as the NRI plugin judges them, each next to the policy in force and its audit record.
// It changes nothing: the containers still run, the audit log is as
// before.
func TestEvalRunning(t *testing.T) {
	p := newPG(t, pgOptions{policy: map[string]string{"policy.yaml": auditOnlyPolicy}})
	ctx := opCtx(t)

	pod := podOn("web", "e2e")
	podID := p.mustRunPod(ctx, pod)
	okID, r := p.h.RunContainer(ctx, podID, pod, worker("app", int64p(1000), false))
	if err := r.Err(); err != nil {
		t.Fatalf("compliant container: %v", err)
	}
	rootID, r := p.h.RunContainer(ctx, podID, pod, worker("rooty", int64p(0), false))
	if err := r.Err(); err != nil {
		t.Fatalf("root container refused under audit-only: %v", err)
	}
	ppod := podOn("priv", "e2e")
	ppod.Privileged = true
	ppodID := p.mustRunPod(ctx, ppod)
	pc := worker("priv", int64p(0), true)
	pc.Privileged = true
	privID, r := p.h.RunContainer(ctx, ppodID, ppod, kubelet(pc, true))
	if err := r.Err(); err != nil {
		t.Fatalf("privileged container refused under audit-only: %v", err)
	}
	done := worker("done", int64p(1000), false)
	done.Command = []string{"true"}
	doneID, r := p.h.RunContainer(ctx, podID, pod, done)
	if err := r.Err(); err != nil {
		t.Fatalf("exiting container: %v", err)
	}
	if _, err := p.h.WaitExited(ctx, doneID, 30*time.Second); err != nil {
		t.Fatal(err)
	}

	candidate := filepath.Join(p.dir, "candidate")
	if err := os.MkdirAll(candidate, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(candidate, "policy.yaml"), []byte(enforceRootPolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	recsBefore := len(p.records())
	none := filepath.Join(p.dir, "none") // no podman, CRI-O or plain runc here
	args := []string{"eval", "--running", "--policy=" + candidate,
		"--policy-in-force=" + p.policyDir, "--node-name=e2e-node",
		"--containerd-state=" + p.h.State, "--runc-root=" + none, "--storage-root=" + none,
		"--audit-log=" + p.auditLog, "--status-file=" + filepath.Join(p.dir, "run", "status.json")}
	text, code := p.runEval(t, args...)
	t.Logf("patchgate eval --running:\n%s", text)
	if code != 1 {
		t.Errorf("exit %d, want 1 (the candidate refuses running containers)", code)
	}
	for _, want := range []string{
		`candidate policy: "enforce-root"`, `policy in force:  "audit-only"`, "the node service enforces it",
		"refuse runAsRoot", "refuse privileged,runAsRoot", "e2e/web/rooty", "e2e/priv/priv", "(pod sandbox)",
		"would be refused", "allowed", "hook+nri",
		// The one-line reason, as the node gives it, with the pod's field.
		`refuse: [runAsRoot] container "rooty" must not run as uid 0`, "Kubernetes: must set securityContext.runAsNonRoot=true",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q", want)
		}
	}

	out, code := p.runEval(t, append(args, "-o", "json")...)
	if code != 1 {
		t.Errorf("-o json: exit %d, want 1", code)
	}
	var rep running.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("-o json: %v\n%s", err, out)
	}
	byID := map[string]running.Result{}
	for _, c := range rep.Containers {
		byID[c.ID] = c
		if c.Runtime != "containerd" || c.Namespace != "k8s.io" || c.Status != running.StatusRunning {
			t.Errorf("%s: runtime %s/%s status %s, want containerd/k8s.io running", c.ID, c.Runtime, c.Namespace, c.Status)
		}
		if c.InForce == nil || c.InForce.Outcome != running.OutcomeAdmit {
			t.Errorf("%s (%s): in force %+v, want admit", c.ID, c.Name, c.InForce)
		}
	}
	for _, tc := range []struct {
		id, name, outcome string
		rules             []string
	}{
		{okID, "e2e/web/app", running.OutcomeAdmit, nil},
		{rootID, "e2e/web/rooty", running.OutcomeRefuse, []string{"runAsRoot"}},
		{privID, "e2e/priv/priv", running.OutcomeRefuse, []string{"privileged", "runAsRoot"}},
		{podID, "e2e/web", running.OutcomeAdmit, nil},
		{ppodID, "e2e/priv", running.OutcomeAdmit, nil},
	} {
		c, ok := byID[tc.id]
		if !ok {
			t.Errorf("%s (%s) not listed", tc.name, tc.id)
			continue
		}
		if c.Name != tc.name || c.Candidate.Outcome != tc.outcome || !slices.Equal(c.Candidate.Rules, tc.rules) {
			t.Errorf("%s: name %q candidate %s %v, want %q %s %v", tc.id, c.Name, c.Candidate.Outcome, c.Candidate.Rules, tc.name, tc.outcome, tc.rules)
		}
		if c.Candidate.Error != "" {
			t.Errorf("%s: %s", tc.name, c.Candidate.Error)
		}
		if c.Pid <= 0 {
			t.Errorf("%s: no pid", tc.name)
		}
	}
	if len(rep.Containers) != 5 {
		t.Errorf("%d containers listed, want 5 (3 running, 2 sandboxes)", len(rep.Containers))
	}
	// The audit-only policy recorded every admission, the NRI plugin what
	// it judged (the user) and the hook the rest: the root container's
	// records are shown next to it, merged.
	if a := byID[rootID].Audit; a == nil || a.Action != "allowed" || !slices.Contains(a.Rules, "runAsRoot") || !slices.Equal(a.Sources, []string{"hook", "nri"}) {
		t.Errorf("root container's audit record: %+v", a)
	}
	// CRI deletes the task of a container that exited: no bundle is
	// left, so it is neither listed nor skipped.
	if _, listed := byID[doneID]; listed || len(rep.Skipped) != 0 {
		t.Errorf("the exited container: listed %t, skipped %+v", listed, rep.Skipped)
	}
	if rep.Summary.Refuse != 2 || rep.Summary.Admit != 3 || rep.Summary.Skipped != 0 || rep.Summary.Changed != 2 {
		t.Errorf("summary %+v", rep.Summary)
	}

	// Without --policy the candidate is the policy in force: nothing is
	// refused, exit 0.
	_, code = p.runEval(t, slices.DeleteFunc(slices.Clone(args), func(a string) bool { return strings.HasPrefix(a, "--policy=") })...)
	if code != 0 {
		t.Errorf("the policy in force previewed against itself: exit %d, want 0", code)
	}

	// Nothing changed.
	for _, id := range []string{okID, rootID, privID} {
		st, r := p.h.Inspect(ctx, id)
		if err := r.Err(); err != nil || st.Status.State != "CONTAINER_RUNNING" {
			t.Errorf("%s after eval --running: %v %+v", id, err, st)
		}
	}
	if n := len(p.records()); n != recsBefore {
		t.Errorf("audit records %d after eval --running, %d before", n, recsBefore)
	}

	if dir := os.Getenv("PATCHGATE_CAPTURE_RUNNING"); dir != "" {
		captureRunning(t, dir, p.h.State, []string{podID, okID, rootID, ppodID, privID, doneID})
	}
}

// runEval runs the patchgate binary; the exit code and stdout.
func (p *pg) runEval(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(p.bin, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if stderr.Len() > 0 {
		t.Logf("stderr: %s", stderr.String())
	}
	return string(out), code
}

// captureRunning copies the state eval --running reads for these
// containers into dir, at their host paths (a fixture tree for
// internal/running's unit tests): each bundle's config.json, init.pid and
// options.json, runc's state.json, and /proc/<pid>/stat.
func captureRunning(t *testing.T, dir, state string, ids []string) {
	t.Helper()
	cp := func(src string) {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Logf("capture: %v", err)
			return
		}
		dst := filepath.Join(dir, src)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range ids {
		b := filepath.Join(state, "io.containerd.runtime.v2.task", "k8s.io", id)
		for _, f := range []string{"config.json", "init.pid", "options.json"} {
			cp(filepath.Join(b, f))
		}
		var o struct {
			Root string `json:"root"`
		}
		if data, err := os.ReadFile(filepath.Join(b, "options.json")); err == nil && json.Unmarshal(data, &o) == nil && o.Root != "" {
			cp(filepath.Join(o.Root, "k8s.io", id, "state.json"))
		}
		if data, err := os.ReadFile(filepath.Join(b, "init.pid")); err == nil {
			cp(filepath.Join("/proc", strings.TrimSpace(string(data)), "stat"))
		}
	}
}
