//go:build e2e

package hooke2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// runningPolicy refuses root and nothing else (no kernel requirement:
// eval --running reads this machine's real kernel).
const runningPolicy = `apiVersion: patchgate.dev/v1alpha1
kind: NodePolicy
metadata: {name: enforce-root}
spec:
  defaultAction: audit
  kernel: {requiredPatches: [], onUnknown: audit, action: audit}
  rules:
    runAsRoot: {action: enforce}
`

// TestPodmanEvalRunning: two detached podman containers on a private
// store, a compliant one and a root one; `patchgate eval --running` finds
// them through runc's state (podman gives runc no --root: /run/runc) and
// the store's userdata, judges each bundle's config.json, and reports the
// root one as would-refuse (exit 1) and the compliant one as admitted.
func TestPodmanEvalRunning(t *testing.T) {
	needTools(t, "podman", "runc")
	cleanupPodmanCgroups(t)
	e := newEnv(t)
	e.podmanStore(t)
	rfs := rootfs(t)
	noHooks := filepath.Join(e.dir, "no-hooks")
	if err := os.MkdirAll(noHooks, 0o755); err != nil {
		t.Fatal(err)
	}
	store := []string{"--root", filepath.Join(e.podmanDir, "root"), "--runroot", filepath.Join(e.podmanDir, "run"), "--storage-driver", "vfs"}
	prefix := "pgrun" + filepath.Base(e.podmanDir)
	start := func(name string, flags ...string) string {
		args := append(slices.Clone(store), "--hooks-dir", noHooks, "run", "-d", "--name", prefix+name, "--network", "none",
			"--ulimit", "nofile=20000:20000", "--ulimit", "nproc=20000:20000")
		args = append(args, flags...)
		args = append(args, "--rootfs", rfs, "/bin/sleep", "600")
		out, err := run(context.Background(), "podman", args...)
		if err != nil {
			t.Fatalf("podman run %s: %v\n%s", name, err, out)
		}
		lines := strings.Fields(out)
		return lines[len(lines)-1]
	}
	t.Cleanup(func() {
		args := append(slices.Clone(store), "rm", "-f", "-t", "0", prefix+"web", prefix+"rooty")
		if out, err := run(context.Background(), "podman", args...); err != nil {
			t.Errorf("podman rm: %v\n%s", err, out)
		}
	})
	webID := start("web", "--user", "1000", "--cap-drop", "ALL")
	rootyID := start("rooty")

	pol := filepath.Join(e.dir, "candidate")
	if err := os.MkdirAll(pol, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pol, "policy.yaml"), []byte(runningPolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(patchgateBin, "eval", "--running", "--policy="+pol, "--policy-in-force="+pol,
		"--containerd-state=", "--runc-root=/run/runc",
		"--storage-root="+filepath.Join(e.podmanDir, "root"), "--storage-root="+filepath.Join(e.podmanDir, "run"),
		"--audit-log="+e.auditLog, "--status-file=", "-o", "json")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if code != 1 {
		t.Errorf("exit %d, want 1 (a root container runs); stderr: %s", code, stderr.String())
	}
	var rep struct {
		Containers []struct {
			Runtime, ID, Name, Status string
			Candidate                 struct {
				Outcome string
				Rules   []string
				Error   string
				Message string
			}
		}
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	want := map[string][2]string{webID: {prefix + "web", "admit"}, rootyID: {prefix + "rooty", "refuse"}}
	seen := 0
	for _, c := range rep.Containers {
		w, ok := want[c.ID]
		if !ok {
			continue // another test's container on this machine's /run/runc
		}
		seen++
		if c.Runtime != "podman" || c.Name != w[0] || c.Status != "running" || c.Candidate.Outcome != w[1] || c.Candidate.Error != "" {
			t.Errorf("%s: %+v, want podman %s running %s", c.ID, c, w[0], w[1])
		}
		if w[1] == "refuse" && !slices.Equal(c.Candidate.Rules, []string{"runAsRoot"}) {
			t.Errorf("rooty refused by %v, want runAsRoot", c.Candidate.Rules)
		}
		// The one line the node would give, with podman's flag to change.
		if w[1] == "refuse" && (!strings.Contains(c.Candidate.Message, "[runAsRoot]") || !strings.Contains(c.Candidate.Message, "podman: run with --user set to a non-zero uid")) {
			t.Errorf("rooty's message %q lacks the rule or podman's --user", c.Candidate.Message)
		}
	}
	if seen != 2 {
		t.Errorf("listed %d of the 2 podman containers:\n%s", seen, out)
	}
}
