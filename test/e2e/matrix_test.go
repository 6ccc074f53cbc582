//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/test/harness"
)

// matrixPolicy is kernel-aware.yaml without its audit-only rules (apparmor,
// privilegeEscalation), so that a container's records are exactly its findings: a flagged
// root container on a patched kernel must have one record, not one from the plugin and one
// from the hook.
const matrixPolicy = `apiVersion: patchgate.dev/v1alpha1
kind: NodePolicy
metadata: {name: matrix}
spec:
  rules:
    apparmor:            {action: off}
    privilegeEscalation: {action: off}
`

// matrixEnv is one containerd release with patchgate as an operator sets it up there: NRI
// enabled as that release needs, patchgate's hook in the base runtime spec, and on 2.2+ the
// default validator with required_plugins.
type matrixEnv struct {
	*pg
	version string
	support harness.Support
	ctx     context.Context
}

// matrixRuns maps every scenario of harness.Scenarios to its test; a scenario without one
// fails TestContainerdMatrixCoversScenarios.
var matrixRuns = map[string]func(t *testing.T, m *matrixEnv){
	"compliant-runs":             matrixCompliant,
	"flagged-audited-once":       matrixFlaggedOnce,
	"privileged-refused":         matrixPrivileged,
	"root-kernel-behind-refused": matrixRootBehind,
	"host-pid-refused":           matrixHostPID,
	"killed-fails-closed":        matrixKilled,
	"reconnects-after-restart":   matrixReconnect,
}

func TestContainerdMatrixCoversScenarios(t *testing.T) {
	for _, s := range harness.Scenarios {
		if matrixRuns[s.ID] == nil {
			t.Errorf("scenario %q has no test", s.ID)
		}
	}
	if len(matrixRuns) != len(harness.Scenarios) {
		t.Errorf("%d scenario tests for %d scenarios", len(matrixRuns), len(harness.Scenarios))
	}
}

// TestContainerdMatrix runs the support matrix's scenarios on every containerd release
// (harness.ContainerdVersions, or $PATCHGATE_E2E_CONTAINERD), one release at a time.
func TestContainerdMatrix(t *testing.T) {
	versions, err := harness.MatrixVersions()
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range versions {
		t.Run(v, func(t *testing.T) {
			began := time.Now()
			m := newMatrixEnv(t, v)
			for _, s := range harness.Scenarios {
				// Each scenario leaves the node as it found it (patchgate connected, kernel
				// patched), so a failure does not hide the later ones.
				t.Run(s.ID, func(t *testing.T) { matrixRuns[s.ID](t, m) })
			}
			t.Logf("matrix %s: mode %s, fails closed by %s; scenarios took %s", v, m.support.Mode,
				strings.Join(m.support.FailClosed, " + "), time.Since(began).Round(100*time.Millisecond))
		})
	}
}

func newMatrixEnv(t *testing.T, v string) *matrixEnv {
	t.Helper()
	if toolsErr != nil {
		harness.SkipOrFail(t, toolsErr)
	}
	tl := tools
	if v != tools.ContainerdVersion {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
		defer cancel()
		var err error
		tl, err = harness.EnsureTools(ctx, harness.ToolsOptions{Containerd: v, Variant: harness.NRIStock, Log: testLog{t}})
		if err != nil {
			harness.SkipOrFail(t, err)
		}
	}
	p := newPG(t, pgOptions{
		tools: tl, defaultIdx: true,
		policy: map[string]string{
			"policy.yaml":             "examples/policies/kernel-aware.yaml",
			"policy.d/50-matrix.yaml": matrixPolicy,
		},
	})
	m := &matrixEnv{pg: p, version: v, support: harness.SupportOf(v), ctx: opCtx(t)}
	m.loadExample(t)
	if strings.Contains(p.h.Log(), "invalid plugin events") {
		t.Fatalf("containerd %s refused patchgate's registration:\n%s", v, p.h.LogTail(20))
	}
	p.waitKernel(true)
	return m
}

// exampleHostPaths are the host paths in examples/containerd's snippets and the private
// ones the test loads them with.
func (m *matrixEnv) exampleHostPaths() *strings.Replacer {
	return strings.NewReplacer(
		`"/var/run/nri/nri.sock"`, `"`+m.h.NRISocket+`"`,
		`"/opt/nri/plugins"`, `"`+m.h.NRIPluginDir+`"`,
		`"/etc/nri/conf.d"`, `"`+m.h.NRIConfDir+`"`,
		`"/etc/containerd/patchgate-base-spec.json"`, `"`+m.baseSpec+`"`,
	)
}

// loadExample sets containerd up from examples/containerd/<release>, as an operator would:
// patchgate stopped, the base spec made by `patchgate runtime-spec` from this containerd's
// `ctr oci spec`, the snippet as an imports drop-in over a config whose own NRI is disabled
// (so NRI runs only if the snippet enables it; on 1.7 config.toml's runc table is merged
// into the main config, as its comment says), containerd restarted, patchgate started. Then
// crictl info must show the base spec on the runc runtime with the main config's runc
// options intact, and patchgate must register.
func (m *matrixEnv) loadExample(t *testing.T) {
	t.Helper()
	m.stop()
	m.writeBaseSpec(m.hookBin)
	dir := filepath.Join(m.root, m.support.Example)
	rewrite := m.exampleHostPaths()
	var imports []string
	dropIn := "patchgate.toml"
	if harness.ConfigVersion(m.version) == 2 {
		dropIn = "nri.toml"
	}
	data, err := os.ReadFile(filepath.Join(dir, dropIn))
	if err != nil {
		t.Fatal(err)
	}
	private := rewrite.Replace(string(data))
	for _, line := range strings.Split(private, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "#") {
			continue
		}
		for _, host := range []string{`"/var/`, `"/run/`, `"/etc/`, `"/opt/`, `"/usr/`} {
			if strings.Contains(line, host) {
				t.Fatalf("%s/%s names a host path the test does not map to a private one: %s", m.support.Example, dropIn, line)
			}
		}
	}
	p := filepath.Join(m.dir, "example-"+dropIn)
	if err := os.WriteFile(p, []byte(private), 0o600); err != nil {
		t.Fatal(err)
	}
	imports = append(imports, p)
	v17 := harness.ConfigVersion(m.version) == 2
	if err := m.h.Restart(m.ctx, func(c *harness.Config) {
		c.NRI = harness.NRIConfig{Disable: true}
		c.Imports = imports
		if v17 {
			c.BaseRuntimeSpec = m.baseSpec
		}
	}); err != nil {
		t.Fatal(err)
	}
	if v17 {
		// config.toml is merged into the main config, not imported: the main config
		// containerd runs with holds its table exactly.
		frag, err := os.ReadFile(filepath.Join(dir, "config.toml"))
		if err != nil {
			t.Fatal(err)
		}
		var table []string
		for _, line := range strings.Split(rewrite.Replace(string(frag)), "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "[") || len(table) > 0 && strings.TrimSpace(line) != "" {
				table = append(table, strings.TrimSpace(line))
			}
		}
		main, err := os.ReadFile(m.h.ConfigFile)
		if err != nil {
			t.Fatal(err)
		}
		var mainLines []string
		for _, line := range strings.Split(string(main), "\n") {
			mainLines = append(mainLines, strings.TrimSpace(line))
		}
		if len(table) != 3 || !strings.Contains(strings.Join(mainLines, "\n"), strings.Join(table, "\n")) {
			t.Fatalf("config.toml's runc table %q is not in the config containerd runs with", table)
		}
	}
	info := m.h.Crictl(m.ctx, "info")
	if err := info.Err(); err != nil {
		t.Fatal(err)
	}
	var ci struct {
		Config struct {
			Containerd struct {
				Runtimes map[string]struct {
					RuntimeType     string         `json:"runtimeType"`
					BaseRuntimeSpec string         `json:"baseRuntimeSpec"`
					Options         map[string]any `json:"options"`
				} `json:"runtimes"`
			} `json:"containerd"`
		} `json:"config"`
	}
	if err := json.Unmarshal([]byte(info.Stdout), &ci); err != nil {
		t.Fatalf("crictl info: %v", err)
	}
	runc := ci.Config.Containerd.Runtimes["runc"]
	if runc.BaseRuntimeSpec != m.baseSpec || runc.RuntimeType != "io.containerd.runc.v2" || runc.Options["Root"] != m.h.RuncRoot {
		t.Fatalf("crictl info: runc runtime %+v, want base spec %s and the main config's options (Root %s)", runc, m.baseSpec, m.h.RuncRoot)
	}
	// NRI runs only because the snippet enabled it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if fi, err := os.Stat(m.h.NRISocket); err == nil && fi.Mode()&os.ModeSocket != 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no NRI socket: the example did not enable NRI")
		}
		time.Sleep(50 * time.Millisecond)
	}
	m.start()
	t.Logf("matrix %s: containerd runs %s (base spec %s)", m.version, m.support.Example, runc.BaseRuntimeSpec)
	m.checkStatus(t)
}

// checkStatus reads patchgate's status file: connected, in the mode the release allows,
// with the NRI version the release links.
func (m *matrixEnv) checkStatus(t *testing.T) {
	t.Helper()
	var st struct {
		Runtime *struct {
			State, Mode, Plugin, Runtime, RuntimeVersion, NRIVersion string
		} `json:"runtime"`
	}
	path := filepath.Join(m.dir, "run", "status.json")
	deadline := time.Now().Add(10 * time.Second)
	for {
		data, err := os.ReadFile(path)
		if err == nil && json.Unmarshal(data, &st) == nil && st.Runtime != nil && st.Runtime.State == "connected" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status file never said connected: %s %v", data, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	r := st.Runtime
	if r.Mode != m.support.Mode || r.NRIVersion != m.support.NRI || r.RuntimeVersion != m.version {
		t.Errorf("status: mode %q, NRI %q, runtime %q %q; want mode %q, NRI %s, runtime %s", r.Mode, r.NRIVersion, r.Runtime, r.RuntimeVersion, m.support.Mode, m.support.NRI, m.version)
	}
	t.Logf("matrix %s: status: %s, mode %s, registered as %s, %s %s, NRI %s", m.version, r.State, r.Mode, r.Plugin, r.Runtime, r.RuntimeVersion, r.NRIVersion)
}

// createOrStart creates and starts a container and reports where it was refused: "create",
// "start", or "" when it runs.
func (m *matrixEnv) createOrStart(podID string, pod harness.PodConfig, c harness.ContainerConfig) (string, harness.Result) {
	id, r := m.h.CreateContainer(m.ctx, podID, pod, c)
	if r.ExitCode != 0 {
		return "create", r
	}
	r = m.h.StartContainer(m.ctx, id)
	if r.ExitCode != 0 {
		return "start", r
	}
	return "", r
}

func (m *matrixEnv) privileged(name string) (harness.PodConfig, harness.ContainerConfig) {
	pod := podOn(name, "e2e")
	pod.Privileged = true
	c := worker(name, nil, true)
	c.Privileged = true
	return pod, kubelet(c, true)
}

func (m *matrixEnv) recordsOf(container string) []recordSummary {
	var out []recordSummary
	for _, r := range summarize(m.records()) {
		if r.Container == container {
			out = append(out, r)
		}
	}
	return out
}

func matrixCompliant(t *testing.T, m *matrixEnv) {
	pod := podOn("web", "e2e")
	podID := m.mustRunPod(m.ctx, pod)
	id, r := m.h.RunContainer(m.ctx, podID, pod, worker("app", int64p(1000), false))
	if err := r.Err(); err != nil {
		t.Fatalf("compliant container refused: %v", err)
	}
	st, r := m.h.Inspect(m.ctx, id)
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
	// The base spec's hook, and no second one from the plugin.
	var ours int
	if spec.Hooks != nil {
		for _, h := range spec.Hooks.CreateRuntime {
			if h.Path == m.hookBin && slices.Contains(h.Args, "hook") {
				ours++
				if !slices.Contains(h.Args, "--identity-from=containerd") {
					t.Errorf("hook args %q lack --identity-from=containerd", h.Args)
				}
			}
		}
	}
	if ours != 1 || len(spec.Hooks.CreateRuntime) != 1 {
		t.Errorf("want exactly one createRuntime hook, patchgate's; got %+v", spec.Hooks)
	}
	// The base spec carries no rlimits (a base from `ctr oci spec` would give every
	// container RLIMIT_NOFILE 1024:1024).
	if len(spec.Process.Rlimits) != 0 {
		t.Errorf("container has rlimits from the base spec: %+v", spec.Process.Rlimits)
	}
	// containerd 1.7's RuntimeDefault seccomp profile lets io_uring_* through (2.x blocks
	// them): patchgate flags it (seccomp: warn), once, from the hook that judged the spec.
	var want []recordSummary
	if m.ioURingAllowed() {
		want = []recordSummary{{"hook", "flagged", "e2e/app", "seccomp"}}
	}
	if got := m.recordsOf("e2e/app"); !slices.Equal(got, want) {
		t.Errorf("compliant container's audit records:\n%swant:\n%s", fmtSummaries(got), fmtSummaries(want))
		for _, r := range m.records() {
			if r.Container.Name == "app" {
				t.Logf("record: %+v", r.Violations)
			}
		}
	}
	if m.ioURingAllowed() {
		for _, r := range m.records() {
			if r.Container.Name == "app" && (len(r.Violations) != 1 || !strings.Contains(r.Violations[0].Detail, `"io_uring_enter", "io_uring_register", "io_uring_setup"`)) {
				t.Errorf("seccomp finding does not name io_uring: %+v", r.Violations)
			}
		}
	}
}

// ioURingAllowed reports whether the release's RuntimeDefault seccomp profile allows the
// io_uring system calls (containerd 1.7; 2.0 started blocking them).
func (m *matrixEnv) ioURingAllowed() bool { return m.version == harness.Containerd17 }

func matrixFlaggedOnce(t *testing.T, m *matrixEnv) {
	pod := podOn("flag", "e2e")
	podID := m.mustRunPod(m.ctx, pod)
	if _, r := m.h.RunContainer(m.ctx, podID, pod, worker("root-ok", nil, false)); r.Err() != nil {
		t.Fatalf("root refused on a patched kernel: %v", r.Err())
	}
	got := m.recordsOf("e2e/root-ok")
	rules := "runAsRoot"
	if m.ioURingAllowed() {
		rules = "runAsRoot,seccomp"
	}
	if len(got) != 1 || got[0].Action != "flagged" || got[0].Rules != rules {
		t.Fatalf("audit records of the flagged container (want exactly one, flagged [%s]):\n%s", rules, fmtSummaries(got))
	}
	t.Logf("matrix %s: the flagged container's one record is from %q", m.version, got[0].Source)
}

func matrixPrivileged(t *testing.T, m *matrixEnv) {
	pod, c := m.privileged("priv")
	podID := m.mustRunPod(m.ctx, pod)
	stage, r := m.createOrStart(podID, pod, c)
	// Both modes decide at create: the validator, or CreateContainer on NRI v0.8.
	if stage != "create" {
		t.Errorf("privileged container: refused at %q, want at create", stage)
	}
	expectRefused(t, r, "patchgate: denied", "[hostDevices,hostPathMounts]", `container "priv"`)
}

func matrixRootBehind(t *testing.T, m *matrixEnv) {
	patch := filepath.Join(m.hostRoot, "sys/kernel/livepatch/livepatch_sample")
	saved := filepath.Join(m.dir, "livepatch_sample.saved")
	if err := os.Rename(patch, saved); err != nil {
		t.Fatal(err)
	}
	m.waitKernel(false)
	defer func() {
		if err := os.Rename(saved, patch); err != nil {
			t.Fatal(err)
		}
		m.waitKernel(true)
	}()
	pod := podOn("behind", "e2e")
	podID := m.mustRunPod(m.ctx, pod)
	stage, r := m.createOrStart(podID, pod, worker("root-behind", nil, false))
	// NRI shows the user from containerd 2.3: the plugin refuses at create. Before, the
	// hook does, at start.
	want, verdict := "start", "patchgate: blocked"
	if harness.NRIShowsUser(m.version) {
		want, verdict = "create", "patchgate: denied"
	}
	if stage != want {
		t.Errorf("root container while behind: refused at %q, want at %s", stage, want)
	}
	expectRefused(t, r, verdict, "runAsRoot", `container "root-behind" must not run as uid 0`)
}

func matrixHostPID(t *testing.T, m *matrixEnv) {
	pod := podOn("hostpid", "e2e")
	pod.HostPID = true
	podID, r := m.h.RunPod(m.ctx, pod)
	if r.ExitCode != 0 {
		expectRefused(t, r, "patchgate: denied [hostNamespaces]", `pod "e2e/hostpid"`, `"pid"`)
		t.Logf("matrix %s: host-PID pod refused at runp", m.version)
		return
	}
	// The runtime let the sandbox run: its containers must be refused.
	stage, r := m.createOrStart(podID, pod, worker("in-hostpid", int64p(1000), false))
	if stage == "" {
		t.Fatal("a container in a host-PID pod runs")
	}
	expectRefused(t, r, "patchgate:", "hostNamespaces")
	t.Logf("matrix %s: host-PID pod ran; its container refused at %s", m.version, stage)
}

// matrixKilled kills patchgate (SIGKILL) and measures what gets through: every
// non-compliant container from the kill on must be refused. On 1.7-2.1 the base spec's hook
// refuses it at start, deciding alone; on 2.2+ required_plugins refuses it at create first.
func matrixKilled(t *testing.T, m *matrixEnv) {
	killed := time.Now()
	m.proc.Kill()
	admitted := 0
	for i := range 3 {
		name := "down-" + string(rune('a'+i))
		pod, c := m.privileged(name)
		podID, r := m.h.RunPod(m.ctx, pod)
		if r.ExitCode != 0 {
			t.Fatalf("runp while patchgate is down: %v", r.Err())
		}
		stage, r := m.createOrStart(podID, pod, c)
		at := time.Since(killed).Round(time.Millisecond)
		if stage == "" {
			admitted++
			t.Errorf("matrix %s: privileged container admitted %s after patchgate was killed", m.version, at)
			continue
		}
		msg := r.ErrorMessage()
		t.Logf("matrix %s: privileged container %d refused at %s, %s after SIGKILL: %.220s", m.version, i, stage, at, firstLine(msg))
		switch {
		case stage == "start" && strings.Contains(msg, "patchgate: blocked"):
			// The base spec's hook, deciding without the service.
		case stage == "create" && harness.HasDefaultValidator(m.version) &&
			(strings.Contains(msg, `required plugin "patchgate" not present`) || strings.Contains(msg, "validator plugin") && strings.Contains(msg, "failed")):
		default:
			t.Errorf("unexpected refusal at %s:\n%s", stage, msg)
		}
	}
	if admitted == 0 {
		t.Logf("matrix %s: fail-open window: none (0 of 3 non-compliant containers admitted after SIGKILL)", m.version)
	}
	if harness.HasDefaultValidator(m.version) {
		// A pod that tolerates the missing plugin passes required_plugins; the base spec's
		// hook still judges its containers.
		pod, c := m.privileged("down-tolerated")
		pod.Annotations = map[string]string{harness.TolerateMissingPluginsKey: "true"}
		podID := m.mustRunPod(m.ctx, pod)
		stage, r := m.createOrStart(podID, pod, c)
		if stage != "start" {
			t.Errorf("privileged container in a tolerating pod while patchgate is down: refused at %q, want at start by the hook", stage)
		}
		expectRefused(t, r, "patchgate: blocked", "privileged")
	} else {
		// Without required_plugins, compliant containers still start: the hook admits them
		// alone, so the node keeps working while patchgate is down.
		pod := podOn("down-ok", "e2e")
		podID := m.mustRunPod(m.ctx, pod)
		if _, r := m.h.RunContainer(m.ctx, podID, pod, worker("down-ok", int64p(1000), false)); r.Err() != nil {
			t.Errorf("compliant container refused while patchgate is down: %v", r.Err())
		}
	}
	m.start()
	// What the hook decided alone reaches the audit log (through the spool) once patchgate
	// is back.
	hooked := "e2e/down-a"
	if harness.HasDefaultValidator(m.version) {
		hooked = "e2e/down-tolerated"
	}
	{
		deadline := time.Now().Add(20 * time.Second)
		for {
			got := m.recordsOf(hooked)
			if len(got) == 1 && got[0].Source == "hook" && got[0].Action == "blocked" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("records of the container refused while patchgate was down: %v", got)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}

func matrixReconnect(t *testing.T, m *matrixEnv) {
	pid := m.proc.PID()
	if err := m.h.Restart(m.ctx, nil); err != nil {
		t.Fatal(err)
	}
	ready := time.Now()
	m.waitSynced()
	t.Logf("matrix %s: patchgate synchronized again %s after containerd was ready", m.version, time.Since(ready).Round(time.Millisecond))
	if m.proc.PID() != pid || !m.proc.Running() {
		t.Fatal("patchgate was restarted or exited")
	}
	pod, c := m.privileged("priv-after")
	podID := m.mustRunPod(m.ctx, pod)
	stage, r := m.createOrStart(podID, pod, c)
	if stage != "create" {
		t.Errorf("privileged container after the containerd restart: refused at %q, want at create", stage)
	}
	expectRefused(t, r, "patchgate: denied")
	ok := podOn("web-after", "e2e")
	okID := m.mustRunPod(m.ctx, ok)
	if _, r := m.h.RunContainer(m.ctx, okID, ok, worker("app-after", int64p(1000), false)); r.Err() != nil {
		t.Fatalf("compliant container after the restart: %v", r.Err())
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
