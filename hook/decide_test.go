package hook

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/policy"
)

const testPolicy = `apiVersion: patchgate.dev/v1alpha1
kind: NodePolicy
metadata: {name: hook-test}
spec:
  defaultAction: enforce
  kernel: {onUnknown: warn}
  hook: {onError: %s}
  rules:
    runAsRoot:           {action: %s}
    privileged:          {action: enforce}
    capabilities:        {action: enforce}
    hostNamespaces:      {action: enforce}
    hostPathMounts:
      action: enforce
      denied: [/etc, /proc, /sys, /dev, /boot, /root, /run/containerd, /var/lib/kubelet]
      # The recordings ran podman with --root/--runroot under /tmp/f-podman
      # and containerd under /tmp/pge2e-3106262750 (testdata/README.md).
      runtimeDirs: [/tmp/f-podman/root, /tmp/f-podman/runroot, /tmp/pge2e-3106262750/root, /tmp/pge2e-3106262750/state]
    hostDevices:         {action: enforce}
    procMount:           {action: enforce}
    sysctls:             {action: enforce}
    privilegeEscalation: {action: warn}
    seccomp:             {action: warn}
    apparmor:            {action: off}
`

// writePolicy writes a policy file the loader accepts (root-owned, 0644).
func writePolicy(t *testing.T, onError, runAsRoot string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "policy.yaml")
	body := strings.Replace(strings.Replace(testPolicy, "%s", onError, 1), "%s", runAsRoot, 1)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := policy.Load(p, ""); err != nil {
		t.Fatalf("test policy does not load: %v", err)
	}
	return p
}

func freshKernel(context.Context, *policy.Policy) (*policy.KernelState, error) {
	return &policy.KernelState{Release: "6.1.0-18-amd64", Patches: []policy.Patch{}, FixedCVEs: []string{}, ObservedAt: time.Now()}, nil
}

// stateFor copies a recorded podman case into a bundle whose path follows
// podman's convention and returns the state to feed on stdin.
func stateFor(t testing.TB, fixture string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata/podman", fixture, "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := ParseState(raw)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(filepath.Join("testdata/podman", fixture, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(t.TempDir(), "vfs-containers", st.ID, "userdata")
	if err := os.MkdirAll(bundle, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	return strings.Replace(string(raw), st.Bundle, bundle, 1)
}

func TestRunLocalDecisions(t *testing.T) {
	pol := writePolicy(t, "deny", "enforce")
	for _, tc := range []struct {
		fixture string
		exit    int
		rules   []string
	}{
		// Recorded in a sandbox without CAP_SYS_RESOURCE: podman's
		// --privileged misses that one capability, which the privileged
		// rule tolerates.
		// The message says privileged and the podman flag, and folds
		// the capabilities, devices and masked paths it implies (the
		// rule IDs stay in the list).
		{"privileged-pod", ExitBlock, []string{"rules capabilities, hostDevices, hostPathMounts, privileged, procMount, runAsRoot:",
			"[privileged]", "podman: run without --privileged", "privileged also fails rules capabilities, hostDevices, hostPathMounts, procMount"}},
		{"cap-sys-admin", ExitBlock, []string{"[capabilities]", "CAP_SYS_ADMIN", "podman: run without --cap-add"}},
		{"pid-host", ExitBlock, []string{"[hostNamespaces]", "pid", "podman: run without --pid=host"}},
		{"default", ExitBlock, []string{"[runAsRoot]", "podman: run with --user set to a non-zero uid"}},
		{"user1000-capdrop", ExitAdmit, nil},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			cfg := Config{PolicyPath: pol, Kernel: freshKernel}
			out := Run(context.Background(), cfg, strings.NewReader(stateFor(t, tc.fixture)))
			if out.Exit != tc.exit {
				t.Fatalf("exit = %d, want %d; message %q; err %v", out.Exit, tc.exit, out.Message, out.Err)
			}
			if out.By != ByLocal {
				t.Errorf("by = %q, want local", out.By)
			}
			if tc.exit == ExitBlock {
				if !strings.HasPrefix(out.Message, "patchgate: ") || strings.Contains(out.Message, "\n") {
					t.Errorf("message is not one line starting with patchgate: %q", out.Message)
				}
				for _, want := range append(tc.rules, `policy "hook-test"`) {
					if !strings.Contains(out.Message, want) {
						t.Errorf("message %q lacks %q", out.Message, want)
					}
				}
				if tc.fixture == "privileged-pod" && (strings.Contains(out.Message, "CAP_") || strings.Contains(out.Message, "[capabilities]")) {
					t.Errorf("privileged container's message lists capabilities: %q", out.Message)
				}
			} else if out.Message != "" && !strings.HasPrefix(out.Message, "patchgate: warning:") {
				t.Errorf("admitted with message %q", out.Message)
			}
		})
	}
}

func TestRunWarnPrintsOneLine(t *testing.T) {
	pol := writePolicy(t, "deny", "warn")
	out := Run(context.Background(), Config{PolicyPath: pol, Kernel: freshKernel}, strings.NewReader(stateFor(t, "default")))
	if out.Exit != ExitAdmit {
		t.Fatalf("exit %d: %s", out.Exit, out.Message)
	}
	if !strings.HasPrefix(out.Message, "patchgate: warning:") || !strings.Contains(out.Message, "[runAsRoot]") {
		t.Fatalf("message %q", out.Message)
	}
}

func TestRunCannotDecide(t *testing.T) {
	deny := writePolicy(t, "deny", "enforce")
	allow := writePolicy(t, "allow", "enforce")
	missingBundle := `{"ociVersion":"1.0.2","id":"c1","status":"creating","bundle":"/nonexistent/c1"}`
	for _, tc := range []struct {
		name, policy, stdin string
		exit                int
		want                string
	}{
		{"garbage stdin, deny", deny, "{", ExitBlock, "spec.hook.onError of policy \"hook-test\" is deny"},
		{"no bundle, allow", allow, missingBundle, ExitAdmit, "spec.hook.onError of policy \"hook-test\" is allow"},
		{"no policy", "/nonexistent/policy.yaml", missingBundle, ExitBlock, "default deny"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := Run(context.Background(), Config{PolicyPath: tc.policy, Kernel: freshKernel}, strings.NewReader(tc.stdin))
			if out.Exit != tc.exit || out.By != ByOnError {
				t.Fatalf("exit %d by %s: %q", out.Exit, out.By, out.Message)
			}
			if !strings.HasPrefix(out.Message, "patchgate: ") || !strings.Contains(out.Message, tc.want) {
				t.Fatalf("message %q lacks %q", out.Message, tc.want)
			}
		})
	}
	// A good container under a missing policy is not admitted by accident.
	out := Run(context.Background(), Config{PolicyPath: "/nonexistent", Kernel: freshKernel}, strings.NewReader(stateFor(t, "user1000-capdrop")))
	if out.Exit != ExitBlock || !strings.Contains(out.Message, "no policy") {
		t.Fatalf("missing policy: exit %d %q", out.Exit, out.Message)
	}
}

func TestRunAuditFailClosed(t *testing.T) {
	pol := writePolicy(t, "deny", "warn")
	body, err := os.ReadFile(pol)
	if err != nil {
		t.Fatal(err)
	}
	closed := strings.Replace(string(body), "  hook: {onError: deny}\n", "  hook: {onError: deny}\n  audit: {failClosed: true}\n", 1)
	if err := os.WriteFile(pol, []byte(closed), 0o644); err != nil {
		t.Fatal(err)
	}
	var sent []string
	failing := func(_ context.Context, id string, _ *policy.Policy, _ *policy.Workload, _ *policy.Decision, _ *policy.KernelState) error {
		sent = append(sent, id)
		return errors.New("spool: no space left on device")
	}
	cfg := Config{PolicyPath: pol, Kernel: freshKernel, Audit: failing, NewID: func() string { return "id-1" }}
	// Flagged (runAsRoot is warn here) and not auditable: blocked.
	out := Run(context.Background(), cfg, strings.NewReader(stateFor(t, "default")))
	if out.Exit != ExitBlock || !strings.Contains(out.Message, "[auditUnavailable]") || !strings.Contains(out.Message, "no space left") {
		t.Fatalf("exit %d: %q", out.Exit, out.Message)
	}
	if len(sent) != 1 || sent[0] != "id-1" {
		t.Fatalf("audit attempts %v", sent)
	}
	// Without failClosed the same failure does not block.
	if err := os.WriteFile(pol, body, 0o644); err != nil {
		t.Fatal(err)
	}
	out = Run(context.Background(), cfg, strings.NewReader(stateFor(t, "default")))
	if out.Exit != ExitAdmit || !strings.HasPrefix(out.Message, "patchgate: warning:") {
		t.Fatalf("failClosed off: exit %d %q", out.Exit, out.Message)
	}
}

func TestMessageStaysOneBoundedLine(t *testing.T) {
	d := &policy.Decision{Verdict: policy.Deny, Policy: policy.PolicyRef{Name: "p"}}
	for i := 0; i < 50; i++ {
		d.Violations = append(d.Violations, policy.Violation{Rule: "r", Action: policy.ActionEnforce, Detail: strings.Repeat("x\ny ", 500)})
	}
	o := outcome(ByLocal, d, nil, "")
	if strings.ContainsAny(o.Message, "\n\r") || len(o.Message) > maxMessage+len("…") || !strings.HasPrefix(o.Message, "patchgate: blocked") {
		t.Fatalf("message of %d bytes: %.200q", len(o.Message), o.Message)
	}
}

func TestMainRefusesBadArguments(t *testing.T) {
	for _, args := range [][]string{
		{"--bogus"},
		{"positional"},
		{"--policy", "relative.yaml"},
		{"--socket", "run/d.sock"},
		{"--timeout", "0s"},
		{"--nri-judged", "nonsense"},
	} {
		var stderr strings.Builder
		code := Main(args, strings.NewReader(""), &stderr)
		if code != ExitBlock || !strings.HasPrefix(stderr.String(), "patchgate: blocked the container: cannot decide:") ||
			strings.Count(stderr.String(), "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q", args, code, stderr.String())
		}
		if CheckArgs(args) == nil {
			t.Errorf("%v: CheckArgs accepted", args)
		}
	}
	if err := CheckArgs([]string{"--policy", "/etc/patchgate", "--socket", "", "--nri-judged", "user,mounts"}); err != nil {
		t.Fatal(err)
	}
}
