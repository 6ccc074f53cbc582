//go:build e2e

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/test/harness"
)

// Scenarios 1, 2, 3, 6 and 9 of the NRI issue on one containerd, under
// examples/policies/baseline.yaml plus a drop-in that exempts the
// e2e-system namespace.
func TestNRIBaseline(t *testing.T) {
	p := newPG(t, pgOptions{policy: map[string]string{
		"policy.yaml": "examples/policies/baseline.yaml",
		"policy.d/50-e2e-exempt.yaml": `apiVersion: patchgate.dev/v1alpha1
kind: NodePolicy
metadata: {name: baseline}
spec:
  exemptions:
    - name: e2e-system
      namespaces: [e2e-system]
`,
	}})
	ctx := opCtx(t)

	t.Run("1-compliant-runs", func(t *testing.T) {
		pod := podOn("web", "e2e")
		podID := p.mustRunPod(ctx, pod)
		id, r := p.h.RunContainer(ctx, podID, pod, worker("app", int64p(1000), false))
		if err := r.Err(); err != nil {
			t.Fatalf("compliant container refused: %v", err)
		}
		st, r := p.h.Inspect(ctx, id)
		if err := r.Err(); err != nil {
			t.Fatal(err)
		}
		if st.Status.State != "CONTAINER_RUNNING" {
			t.Errorf("state %s, want CONTAINER_RUNNING", st.Status.State)
		}
		spec, err := st.Spec()
		if err != nil {
			t.Fatal(err)
		}
		if _, flagged := spec.Annotations["patchgate.dev/flagged"]; flagged {
			t.Error("compliant container flagged")
		}
		// patchgate's hook is in the spec, for what NRI cannot see.
		if spec.Hooks == nil || len(spec.Hooks.CreateRuntime) != 1 || spec.Hooks.CreateRuntime[0].Path != p.hookBin ||
			!slices.Contains(spec.Hooks.CreateRuntime[0].Args, "hook") {
			t.Errorf("createRuntime hooks = %+v", spec.Hooks)
		}
	})

	t.Run("2-privileged-refused-at-create", func(t *testing.T) {
		pod := podOn("priv", "e2e")
		pod.Privileged = true
		podID := p.mustRunPod(ctx, pod)
		c := worker("priv", nil, true)
		c.Privileged = true
		id, r := p.h.CreateContainer(ctx, podID, pod, kubelet(c, true))
		if r.ExitCode == 0 {
			p.logSpec(ctx, id)
		}
		expectRefused(t, r, "failed to get NRI adjustment for container:",
			`validator "50-patchgate" rejected container adjustment, reason: patchgate: denied [hostDevices,hostPathMounts]`,
			`container "priv"`, "a device cgroup that allows every device", `(policy "baseline")`,
			// NRI does not see privileged; the message says it, not the devices.
			"has what privileged gives", "Kubernetes: must not set securityContext.privileged=true")
	})

	t.Run("2-cap-sys-admin-refused-by-the-hook", func(t *testing.T) {
		pod := podOn("caps", "e2e")
		podID := p.mustRunPod(ctx, pod)
		c := worker("caps", int64p(1000), false)
		c.CapAdd = []string{"SYS_ADMIN"}
		c = kubelet(c, false)
		// NRI cannot see capabilities: the create passes, and the OCI hook
		// patchgate injected refuses the container when runc creates it.
		id, r := p.h.CreateContainer(ctx, podID, pod, c)
		if err := r.Err(); err != nil {
			t.Fatalf("create: %v", err)
		}
		r = p.h.StartContainer(ctx, id)
		if !strings.Contains(r.ErrorMessage(), "CAP_SYS_ADMIN") {
			p.logSpec(ctx, id)
		}
		expectRefused(t, r, "patchgate: blocked", "[capabilities]", "CAP_SYS_ADMIN", `policy "baseline"`)
		st, _ := p.h.Inspect(ctx, id)
		if st != nil && st.Status.State == "CONTAINER_RUNNING" {
			t.Error("container with CAP_SYS_ADMIN is running")
		}
	})

	t.Run("2-host-root-mount-refused", func(t *testing.T) {
		pod := podOn("hostroot", "e2e")
		podID := p.mustRunPod(ctx, pod)
		c := worker("hostroot", int64p(1000), false)
		c.Mounts = []harness.Mount{{HostPath: "/", ContainerPath: "/host"}}
		// A bind source is judged where its symlinks lead, which the NRI
		// plugin leaves to the hook: the create passes, the start fails.
		id, r := p.h.CreateContainer(ctx, podID, pod, c)
		if err := r.Err(); err != nil {
			t.Fatalf("create: %v", err)
		}
		r = p.h.StartContainer(ctx, id)
		// On a node "/" is the root filesystem, judged as containing the protected paths; where
		// "/" is itself a bind of a directory (a chroot, as in a fresh-machine run) its origin
		// cannot be traced, which is refused too, with that reason.
		expectRefused(t, r, "patchgate: blocked", "[hostPathMounts]", "/host (from /")
	})

	t.Run("3-host-pid-pod-refused-at-sandbox", func(t *testing.T) {
		pod := podOn("hostpid", "e2e")
		pod.HostPID = true
		_, r := p.h.RunPod(ctx, pod)
		expectRefused(t, r, "patchgate: denied [hostNamespaces]", `pod "e2e/hostpid"`, `"pid"`)
		// containerd tears the refused sandbox down; it may still be listed
		// (not ready) for a moment, but it never runs.
		ids, r := p.h.Pods(ctx, "--name", "hostpid", "--state", "ready")
		if err := r.Err(); err != nil {
			t.Fatal(err)
		}
		if len(ids) != 0 {
			t.Errorf("refused pod is ready: %v", ids)
		}
	})

	t.Run("3-pod-sysctl-refused-by-the-hook", func(t *testing.T) {
		// NRI's pod sandbox carries no sysctls; the hook reads the sandbox's
		// own spec next to the container's bundle and refuses it at start.
		pod := podOn("sysctl", "e2e")
		pod.Sysctls = map[string]string{"kernel.msgmax": "65536"}
		podID := p.mustRunPod(ctx, pod)
		id, r := p.h.CreateContainer(ctx, podID, pod, worker("sysctl-app", int64p(1000), false))
		if err := r.Err(); err != nil {
			t.Fatalf("create: %v", err)
		}
		r = p.h.StartContainer(ctx, id)
		expectRefused(t, r, "patchgate: blocked", "[sysctls]", "kernel.msgmax")
	})

	t.Run("6-exempt-namespace-admits-privileged", func(t *testing.T) {
		pod := podOn("agent", "e2e-system")
		pod.Privileged = true
		podID := p.mustRunPod(ctx, pod)
		c := worker("agent", nil, true)
		c.Privileged = true
		id, r := p.h.RunContainer(ctx, podID, pod, kubelet(c, true))
		if err := r.Err(); err != nil {
			t.Fatalf("privileged container in the exempt namespace refused: %v", err)
		}
		st, _ := p.h.Inspect(ctx, id)
		if st == nil || st.Status.State != "CONTAINER_RUNNING" {
			t.Errorf("exempt container not running: %+v", st)
		}
	})

	t.Run("9-audit-log-holds-exactly-the-expected-records", func(t *testing.T) {
		got := summarize(p.records())
		// baseline.yaml refuses only an explicit unconfined AppArmor
		// profile, as Pod Security does; this machine runs no AppArmor,
		// so containerd writes none, and the compliant container has no
		// record.
		want := []recordSummary{
			{"nri", "blocked", "e2e/priv", "hostDevices,hostPathMounts,seccomp"},
			// containerd's RuntimeDefault profile for a container with
			// CAP_SYS_ADMIN allows mount, unshare, setns, bpf, ...: the
			// validator sees it in seccompPolicy (seccomp: warn).
			{"nri", "flagged", "e2e/caps", "seccomp"},
			{"hook", "blocked", "e2e/caps", "capabilities"},
			{"hook", "blocked", "e2e/hostroot", "hostPathMounts"},
			{"nri", "blocked", "e2e/POD", "hostNamespaces"},
			{"hook", "blocked", "e2e/sysctl-app", "sysctls"},
			{"nri", "allowed", "e2e-system/agent", ""},
		}
		if !slices.Equal(got, want) {
			t.Fatalf("audit records:\n%swant:\n%s", fmtSummaries(got), fmtSummaries(want))
		}
		for _, r := range p.records() {
			if r.Container.Name == "agent" && !slices.Contains(r.Exemptions, "e2e-system") {
				t.Errorf("the exempt container's record does not name the exemption: %+v", r.Exemptions)
			}
			if r.Policy.Name != "baseline" || r.Hostname == "" || r.Time.IsZero() {
				t.Errorf("record lacks policy/host/time: %+v", r)
			}
		}
	})
}

// Scenario 4: kernel-aware policy. Root is flagged on a fully patched
// (fixture) host and refused once the required live patch is gone.
func TestNRIKernelAware(t *testing.T) {
	p := newPG(t, pgOptions{host: "debian12-enabled", policy: map[string]string{
		"policy.yaml": "examples/policies/kernel-aware.yaml",
	}})
	ctx := opCtx(t)
	p.waitKernel(true)
	pod := podOn("app", "e2e")
	podID := p.mustRunPod(ctx, pod)

	id, r := p.h.RunContainer(ctx, podID, pod, worker("root-ok", nil, false))
	if err := r.Err(); err != nil {
		t.Fatalf("root refused on a patched kernel: %v", err)
	}
	st, r := p.h.Inspect(ctx, id)
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	spec, err := st.Spec()
	if err != nil {
		t.Fatal(err)
	}
	if spec.Annotations["patchgate.dev/flagged"] != "true" || spec.Annotations["patchgate.dev/rules"] != "runAsRoot" {
		t.Errorf("flag annotations = %q %q", spec.Annotations["patchgate.dev/flagged"], spec.Annotations["patchgate.dev/rules"])
	}

	// The kernel falls behind: the required patch is no longer there.
	if err := os.RemoveAll(filepath.Join(p.hostRoot, "sys/kernel/livepatch/livepatch_sample")); err != nil {
		t.Fatal(err)
	}
	p.waitKernel(false)
	_, r = p.h.CreateContainer(ctx, podID, pod, worker("root-behind", nil, false))
	expectRefused(t, r, "patchgate: denied [runAsRoot]", `container "root-behind" must not run as uid 0`, `policy "kernel-aware"`,
		// What to change in the pod, and that the kernel made it a refusal.
		"Kubernetes: must set securityContext.runAsNonRoot=true",
		`the node's kernel is behind ([kernelPatches] required live patch is not in force: "livepatch_sample" (not loaded)`,
		"on a patched kernel runAsRoot is warn",
		"what would admit it: the required live patch in force (patchgate check --apply on the node")
	// A non-root container is still admitted (flagged for the kernel).
	if _, r := p.h.RunContainer(ctx, podID, pod, worker("user-behind", int64p(1000), false)); r.Err() != nil {
		t.Errorf("non-root refused while behind: %v", r.Err())
	}

	got := summarize(p.records())
	// NRI records what it judged (user, kernel); the injected hook records
	// the rules only it can see (kernel-aware.yaml audits a missing AppArmor
	// profile and privilege escalation, and warns on the latter while the
	// kernel is behind).
	want := []recordSummary{
		{"nri", "flagged", "e2e/root-ok", "runAsRoot"},
		{"hook", "allowed", "e2e/root-ok", "apparmor,privilegeEscalation"},
		{"nri", "blocked", "e2e/root-behind", "kernelPatches,runAsRoot"},
		{"nri", "flagged", "e2e/user-behind", "kernelPatches"},
		{"hook", "flagged", "e2e/user-behind", "apparmor,privilegeEscalation"},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("audit records:\n%swant:\n%s", fmtSummaries(got), fmtSummaries(want))
	}
	if recs := p.records(); !recs[2].Kernel.Behind || recs[0].Kernel.Behind {
		t.Errorf("kernel.behind in records = %v, %v", recs[0].Kernel.Behind, recs[2].Kernel.Behind)
	}
}

// remediationPolicy is kernel-aware.yaml with remediation on, through the
// recorded tool in the fixture host.
const remediationDropIn = `apiVersion: patchgate.dev/v1alpha1
kind: NodePolicy
metadata: {name: kernel-aware}
spec:
  remediation:
    enabled: true
    command: [/usr/sbin/pg-apply-livepatch, %REMEDY%, %HOST%]
    timeout: 30s
    admitWait: 1s
`

// Scenario 5: remediation. A quick recorded provider patches within
// admitWait: admitted on the first try. A slow one gets "retry", and a later
// create is admitted once the patch has landed.
func TestNRIRemediation(t *testing.T) {
	for _, tc := range []struct {
		name  string
		delay string
	}{{"quick", "0"}, {"slow", "4"}} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPGWithRemedy(t, tc.delay)
			ctx := opCtx(t)
			pod := podOn("app", "e2e")
			podID := p.mustRunPod(ctx, pod)
			_, r := p.h.CreateContainer(ctx, podID, pod, worker("root", nil, false))
			if tc.name == "quick" {
				if err := r.Err(); err != nil {
					t.Fatalf("not admitted after a quick live patch: %v", err)
				}
			} else {
				expectRefused(t, r, "patchgate: kernel live patch in progress, retry", "[runAsRoot]")
				p.waitKernel(true)
				if _, r := p.h.CreateContainer(ctx, podID, pod, worker("root-again", nil, false)); r.Err() != nil {
					t.Fatalf("not admitted after the patch landed: %v", r.Err())
				}
			}
			recs := p.records()
			if len(recs) == 0 || recs[0].Remediation == nil || !recs[0].Remediation.Started {
				t.Fatalf("first record has no remediation: %+v", recs)
			}
			wantOutcome := map[string]string{"quick": "patched", "slow": "running"}[tc.name]
			if recs[0].Remediation.Outcome != wantOutcome {
				t.Errorf("remediation outcome %q, want %q", recs[0].Remediation.Outcome, wantOutcome)
			}
		})
	}
}

func newPGWithRemedy(t *testing.T, delay string) *pg {
	t.Helper()
	// The tool and the captured patch live outside the fixture host tree.
	remedy := t.TempDir()
	root, err := harness.FindRepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(filepath.Join(remedy, "livepatch_sample"),
		os.DirFS(filepath.Join(root, "livepatch/testdata/hosts/debian12-enabled/sys/kernel/livepatch/livepatch_sample"))); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(remedy, "delay"), []byte(delay+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Start on the patched host, so the policy loads and the tool is in
	// place; then take the patch away and wait until patchgate sees it.
	p := newPG(t, pgOptions{host: "debian12-enabled", policy: map[string]string{
		"policy.yaml": "examples/policies/kernel-aware.yaml",
	}})
	tool, err := os.ReadFile(filepath.Join(root, "test/e2e/testdata/pg-apply-livepatch"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(p.hostRoot, "usr/sbin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p.hostRoot, "usr/sbin/pg-apply-livepatch"), tool, 0o755); err != nil {
		t.Fatal(err)
	}
	p.writePolicy("policy.d/50-remediation.yaml", strings.NewReplacer("%REMEDY%", remedy, "%HOST%", p.hostRoot).Replace(remediationDropIn))
	// The remediator is set up from the policy at start: restart patchgate.
	p.stop()
	if err := os.RemoveAll(filepath.Join(p.hostRoot, "sys/kernel/livepatch/livepatch_sample")); err != nil {
		t.Fatal(err)
	}
	// The log file is shared by every patchgate process of this test (opened
	// O_APPEND), so the count of sync lines goes on from the earlier process.
	p.start()
	p.waitKernel(false)
	return p
}

// Scenario 7: fail-closed with the default validator's required_plugins,
// and a containerd restart survived without restarting patchgate.
func TestNRIFailClosed(t *testing.T) {
	p := newPG(t, pgOptions{
		policy: map[string]string{"policy.yaml": "examples/policies/baseline.yaml"},
		nri: harness.NRIConfig{Validator: harness.ValidatorConfig{
			Enable: true, RequiredPlugins: []string{"patchgate"},
			TolerateMissingPluginsAnnotation: harness.TolerateMissingPluginsKey,
		}},
	})
	ctx := opCtx(t)
	pod := podOn("app", "e2e")
	podID := p.mustRunPod(ctx, pod)
	if _, r := p.h.CreateContainer(ctx, podID, pod, worker("before", int64p(1000), false)); r.Err() != nil {
		t.Fatalf("create with patchgate up: %v", r.Err())
	}

	p.stop()
	for i := 0; i < 2; i++ {
		_, r := p.h.CreateContainer(ctx, podID, pod, worker("while-down", int64p(1000), false))
		if r.ExitCode == 0 {
			t.Fatal("container created while patchgate is stopped")
		}
		msg := r.ErrorMessage()
		if !strings.Contains(msg, `required plugin "patchgate" not present`) && !strings.Contains(msg, "validator plugin 50-patchgate failed") {
			t.Errorf("unexpected refusal while patchgate is down:\n%s", msg)
		}
	}
	// patchgate's own pods carry the toleration annotation and still start.
	own := podOn("patchgate-agent", "patchgate-system")
	own.Annotations = map[string]string{harness.TolerateMissingPluginsKey: "true"}
	ownID := p.mustRunPod(ctx, own)
	if _, r := p.h.CreateContainer(ctx, ownID, own, worker("agent", int64p(1000), false)); r.Err() != nil {
		t.Errorf("tolerating pod refused while patchgate is down: %v", r.Err())
	}

	// The log file is shared by every patchgate process of this test (opened
	// O_APPEND), so the count of sync lines goes on from the earlier process.
	p.start()
	if _, r := p.h.CreateContainer(ctx, podID, pod, worker("after", int64p(1000), false)); r.Err() != nil {
		t.Fatalf("create after patchgate came back: %v", r.Err())
	}

	// containerd restarts; patchgate (same process) reconnects by itself.
	pid := p.proc.PID()
	if err := p.h.Restart(ctx, nil); err != nil {
		t.Fatal(err)
	}
	p.waitSynced()
	if p.proc.PID() != pid || !p.proc.Running() {
		t.Fatal("patchgate was restarted or exited")
	}
	if !strings.Contains(p.proc.Log(), "reconnecting") {
		t.Error("the reconnect is not logged")
	}
	if _, r := p.h.CreateContainer(ctx, podID, pod, worker("after-restart", int64p(1000), false)); r.Err() != nil {
		t.Fatalf("create after the containerd restart: %v", r.Err())
	}
	c := worker("priv-after-restart", nil, true)
	c.Privileged = true
	c = kubelet(c, true)
	ppod := podOn("priv", "e2e")
	ppod.Privileged = true
	ppodID := p.mustRunPod(ctx, ppod)
	_, r := p.h.CreateContainer(ctx, ppodID, ppod, c)
	expectRefused(t, r, "patchgate: denied [hostDevices,hostPathMounts]")
}

// Scenario 8: a changed policy applies to the next create; a broken one
// keeps the last good policy.
func TestNRIPolicyHotReload(t *testing.T) {
	p := newPG(t, pgOptions{policy: map[string]string{"policy.yaml": "examples/policies/baseline.yaml"}})
	ctx := opCtx(t)
	pod := podOn("app", "e2e")
	podID := p.mustRunPod(ctx, pod)
	if _, r := p.h.CreateContainer(ctx, podID, pod, worker("root-1", nil, false)); r.Err() != nil {
		t.Fatalf("root refused under baseline (runAsRoot off): %v", r.Err())
	}
	p.writePolicy("policy.d/60-no-root.yaml", `apiVersion: patchgate.dev/v1alpha1
kind: NodePolicy
metadata: {name: baseline-no-root}
spec:
  rules:
    runAsRoot: {action: enforce}
`)
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, r := p.h.CreateContainer(ctx, podID, pod, worker("root-2", nil, false))
		if r.ExitCode != 0 {
			expectRefused(t, r, "patchgate: denied [runAsRoot]", `policy "baseline-no-root"`)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the changed policy never applied")
		}
		p.h.RemoveContainer(ctx, strings.TrimSpace(r.Stdout))
		time.Sleep(200 * time.Millisecond)
	}
	// Broken: an unknown action. The last good policy stays.
	p.writePolicy("policy.d/60-no-root.yaml", "apiVersion: patchgate.dev/v1alpha1\nkind: NodePolicy\nmetadata: {name: broken}\nspec:\n  rules:\n    runAsRoot: {action: maybe}\n")
	deadline = time.Now().Add(15 * time.Second)
	for !strings.Contains(p.proc.Log(), "60-no-root.yaml:6") {
		if time.Now().After(deadline) {
			t.Fatalf("the broken policy was not reported with file:line:\n%s", tail(p.proc.Log(), 20))
		}
		time.Sleep(100 * time.Millisecond)
	}
	_, r := p.h.CreateContainer(ctx, podID, pod, worker("root-3", nil, false))
	expectRefused(t, r, "patchgate: denied [runAsRoot]", `policy "baseline-no-root"`)
}

// The runtime refuses the hook (reject_oci_hook_adjustment): patchgate
// notices and says so in its log and status file.
func TestNRIHookRefusedIsLoud(t *testing.T) {
	p := newPG(t, pgOptions{
		policy:  map[string]string{"policy.yaml": "examples/policies/baseline.yaml"},
		nri:     harness.NRIConfig{Validator: harness.ValidatorConfig{Enable: true, RejectOCIHookAdjustment: true}},
		metrics: true,
	})
	ctx := opCtx(t)
	pod := podOn("app", "e2e")
	podID := p.mustRunPod(ctx, pod)
	for i := 0; i < 3; i++ {
		_, r := p.h.CreateContainer(ctx, podID, pod, worker("c"+string(rune('0'+i)), int64p(1000), false))
		expectRefused(t, r, "attempted restricted OCI hook injection")
	}
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(p.proc.Log(), "HOOK INJECTION REFUSED") {
		if time.Now().After(deadline) {
			t.Fatalf("no loud log line:\n%s", tail(p.proc.Log(), 20))
		}
		time.Sleep(200 * time.Millisecond)
	}
	status, err := os.ReadFile(filepath.Join(p.dir, "run", "status.json"))
	if err != nil || !strings.Contains(string(status), `"refused"`) {
		t.Errorf("status file does not say refused: %s %v", status, err)
	}
	// ... and `patchgate check` says so.
	out, _ := exec.CommandContext(ctx, p.bin, "check", "--policy", p.policyDir, "--host-root", p.hostRoot,
		"--status-file", filepath.Join(p.dir, "run", "status.json")).CombinedOutput()
	if !strings.Contains(string(out), "OCI hook injection REFUSED") {
		t.Errorf("patchgate check does not report the refused hook:\n%s", out)
	}
	if !strings.Contains(p.metrics(t), "patchgate_hook_injection_refused 1") {
		t.Error("metric patchgate_hook_injection_refused is not 1")
	}
}

// patchgate also works when containerd launches it (a pre-registered
// plugin in plugin_path, NRI_PLUGIN_* environment): it takes its settings
// from the drop-in configuration (nri.conf) in plugin_config_path.
func TestNRILaunchedByContainerd(t *testing.T) {
	p := newPG(t, pgOptions{policy: map[string]string{"policy.yaml": "examples/policies/baseline.yaml"}})
	ctx := opCtx(t)
	// Use containerd-launched patchgate instead of the external one.
	p.stop()
	plugin := filepath.Join(p.h.NRIPluginDir, "10-patchgate")
	data, err := os.ReadFile(p.bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(p.h.NRIPluginDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(plugin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	run := filepath.Join(p.dir, "run")
	conf := strings.Join([]string{
		"policy: " + p.policyDir,
		"nodeName: e2e-node",
		"hostRoot: " + p.hostRoot,
		"metricsAddr: \"\"",
		"hookPath: " + plugin,
		"decisionSocket: " + filepath.Join(run, "launched-decision.sock"),
		"auditSocket: " + filepath.Join(run, "launched-audit.sock"),
		"auditLog: " + p.auditLog,
		"statusFile: " + filepath.Join(run, "launched-status.json"),
		"stateFile: " + p.stateFile,
	}, "\n") + "\n"
	if err := os.MkdirAll(p.h.NRIConfDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p.h.NRIConfDir, "10-patchgate.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	// containerd starts pre-registered plugins when it starts.
	if err := p.h.Restart(ctx, nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(run, "launched-status.json")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("containerd did not launch patchgate:\n%s", p.h.LogTail(40))
		}
		time.Sleep(100 * time.Millisecond)
	}
	ppod := podOn("priv", "e2e")
	ppod.Privileged = true
	podID := p.mustRunPod(ctx, ppod)
	c := worker("priv", nil, true)
	c.Privileged = true
	_, r := p.h.CreateContainer(ctx, podID, ppod, kubelet(c, true))
	expectRefused(t, r, `validator "10-patchgate" rejected container adjustment, reason: patchgate: denied [hostDevices,hostPathMounts]`)
	pod := podOn("web", "e2e")
	webID := p.mustRunPod(ctx, pod)
	if _, r := p.h.RunContainer(ctx, webID, pod, worker("app", int64p(1000), false)); r.Err() != nil {
		t.Fatalf("compliant container refused by the launched plugin: %v", r.Err())
	}
}
