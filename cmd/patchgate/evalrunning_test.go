package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patchgate/patchgate/internal/fstree"
	"github.com/patchgate/patchgate/internal/running"
)

// TestEvalRunning runs `patchgate eval --running` (the real CLI path) on
// internal/running's recorded podman and runc host tree: the candidate
// refuses the three root containers (exit 1), the policy in force judged
// against itself refuses none (exit 0), and what --running cannot mean is
// a usage error (exit 2).
func TestEvalRunning(t *testing.T) {
	host := filepath.Join(t.TempDir(), "host")
	if err := fstree.Copy("../../internal/running/testdata/podman-runc", host); err != nil {
		t.Fatal(err)
	}
	pol := func(name, body string) string {
		dir := filepath.Join(t.TempDir(), name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	head := "apiVersion: patchgate.dev/v1alpha1\nkind: NodePolicy\nmetadata: {name: %s}\nspec:\n  defaultAction: audit\n  kernel: {requiredPatches: [], onUnknown: audit, action: audit}\n"
	inForce := pol("in-force", strings.Replace(head, "%s", "audit-only", 1))
	candidate := pol("candidate", strings.Replace(head, "%s", "enforce-root", 1)+"  rules:\n    runAsRoot: {action: enforce}\n")
	base := []string{"eval", "--running", "--host-root", host, "--policy-in-force", inForce,
		"--containerd-state=", "--runc-root=/run/runc", "--runc-root=/tmp/pgrjjB/runcroot",
		"--storage-root=/tmp/pgrjjB/root", "--status-file=", "--now", "2026-12-02T16:10:00Z"}

	var out, errb bytes.Buffer
	if code := dispatch(append(base, "--policy", candidate, "-o", "json"), &out, &errb); code != exitDenied {
		t.Fatalf("exit %d, want %d; stderr: %s", code, exitDenied, errb.String())
	}
	var rep running.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if s := rep.Summary; s.Containers != 4 || s.Refuse != 3 || s.Admit != 1 || s.Skipped != 1 {
		t.Errorf("summary %+v", s)
	}
	if rep.Candidate.Name != "enforce-root" || rep.InForce.Name != "audit-only" {
		t.Errorf("policies %q %q", rep.Candidate.Name, rep.InForce.Name)
	}

	out.Reset()
	errb.Reset()
	if code := dispatch(base, &out, &errb); code != exitOK {
		t.Errorf("the policy in force against itself: exit %d, want 0; stderr: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), `candidate policy: "audit-only"`) || !strings.Contains(out.String(), "4 running: 0 would be refused") {
		t.Errorf("text:\n%s", out.String())
	}

	for _, args := range [][]string{
		append(base, "--spec", "config.json"),
		append(base, "--policy", filepath.Join(t.TempDir(), "missing")),
		append(base, "--policy-in-force", filepath.Join(t.TempDir(), "missing")),
		append(base, "--now", "yesterday"),
		append(base, "--runc-root", "relative"),
	} {
		out.Reset()
		errb.Reset()
		if code := dispatch(args, &out, &errb); code != exitInvalid {
			t.Errorf("%v: exit %d, want %d", args[len(args)-2:], code, exitInvalid)
		}
	}
}
