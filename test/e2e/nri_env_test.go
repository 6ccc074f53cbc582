//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/patchgate/patchgate/internal/fstree"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/audit"
	"github.com/patchgate/patchgate/test/harness"
)

// pg is a private containerd with patchgate connected to it as an external
// NRI plugin (`patchgate nri`, the real binary), everything under private
// directories that the test's cleanup removes.
type pg struct {
	t         testing.TB
	h         *harness.Containerd
	root      string // the repository
	bin       string // the patchgate binary
	hookBin   string // the injected OCI hook: the thin hook patchgate-hook, or bin (fullHook)
	dir       string // patchgate's private directory
	policyDir string
	hostRoot  string
	auditLog  string
	stateFile string
	args      []string
	proc      *harness.Process
	syncs     int
	metricsAt string
	baseSpec  string // the base_runtime_spec file, when pgOptions.baseSpec
}

type pgOptions struct {
	// policy maps files under the policy directory ("policy.yaml",
	// "policy.d/10-x.yaml") to a repository path to copy, or to the YAML
	// itself when it starts with "apiVersion".
	policy map[string]string
	// host is the fixture host tree the kernel state is read from
	// (livepatch/testdata/hosts/<host>, copied so a test may change it).
	host string
	nri  harness.NRIConfig
	// metrics serves Prometheus metrics on a free loopback port.
	metrics bool
	// fullHook injects the patchgate binary (`patchgate hook`) instead of
	// the thin hook patchgate-hook, the default.
	fullHook bool
	// tools replaces the package's tools (for example with another runc, or another
	// containerd release).
	tools *harness.Tools
	// baseSpec restarts containerd, before patchgate starts, with a base_runtime_spec made
	// by `patchgate runtime-spec` from this containerd's `ctr oci spec`: patchgate's hook in
	// every application container, with the same flags as the hook the plugin injects.
	baseSpec bool
	// defaultIdx leaves out --idx, so patchgate picks its index itself.
	defaultIdx bool
	// noStart leaves patchgate stopped: the test runs it itself (p.args),
	// for example as a container of this containerd.
	noStart bool
	// logLevel is containerd's --log-level (default info).
	logLevel string
}

// newPG builds patchgate, starts a private containerd and patchgate on it,
// and waits until patchgate has synchronized with containerd. Cleanup (also
// on failure): patchgate stopped, then the harness removes every pod,
// stops containerd and removes every file; the binary goes with t.TempDir.
func newPG(t testing.TB, o pgOptions) *pg {
	t.Helper()
	if toolsErr != nil {
		harness.SkipOrFail(t, toolsErr)
	}
	root, err := harness.FindRepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	binDir := t.TempDir() // removed after the harness's cleanup (cleanups run last-in first-out)
	if err := os.Chmod(binDir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(binDir, "patchgate")
	build := exec.Command("go", "build", "-o", bin, "./cmd/patchgate")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/patchgate: %v\n%s", err, out)
	}

	// The thin hook, built as `make build` builds it, next to the patchgate
	// binary whose `patchgate hook` it runs when the service cannot answer.
	hookBin := filepath.Join(binDir, "patchgate-hook")
	build = exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", hookBin, "./cmd/patchgate-hook")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/patchgate-hook: %v\n%s", err, out)
	}
	if o.fullHook {
		hookBin = bin
	}

	tl := tools
	if o.tools != nil {
		tl = o.tools
	}
	h := harness.StartT(t, harness.Options{Tools: tl, NRI: o.nri, LogLevel: o.logLevel})
	p := &pg{t: t, h: h, root: root, bin: bin, hookBin: hookBin, dir: filepath.Join(h.Dir, "pg")}
	p.policyDir = filepath.Join(p.dir, "policy")
	p.hostRoot = filepath.Join(p.dir, "host")
	p.auditLog = filepath.Join(p.dir, "audit", "audit.log")
	p.stateFile = filepath.Join(p.dir, "run", "kernel-state.json")
	for _, d := range []string{p.policyDir, filepath.Join(p.dir, "run"), filepath.Join(p.dir, "audit")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if o.host == "" {
		o.host = "debian12-enabled"
	}
	if err := os.CopyFS(p.hostRoot, os.DirFS(filepath.Join(root, "livepatch", "testdata", "hosts", o.host))); err != nil {
		t.Fatal(err)
	}
	if err := fstree.RootOnly(p.hostRoot); err != nil {
		t.Fatal(err)
	}
	// Inline policy YAML may name this containerd's private directories, for
	// rules.hostPathMounts.runtimeDirs.
	dirs := strings.NewReplacer("%CONTAINERD_ROOT%", h.Root, "%CONTAINERD_STATE%", h.State)
	for name, src := range o.policy {
		if strings.HasPrefix(src, "apiVersion") {
			src = dirs.Replace(src)
		}
		p.writePolicy(name, src)
	}
	// containerd runs with a private root and state here: its own
	// /etc/hosts, /etc/resolv.conf and /dev/shm come from there, which a
	// node with such a containerd lists in hostPathMounts.runtimeDirs.
	p.writePolicy("policy.d/00-runtime-dirs.yaml", "apiVersion: patchgate.dev/v1alpha1\nkind: NodePolicy\nspec:\n  rules:\n    hostPathMounts:\n      runtimeDirs: ["+
		filepath.Join(h.Root, "io.containerd.grpc.v1.cri", "sandboxes")+", "+filepath.Join(h.State, "io.containerd.grpc.v1.cri", "sandboxes")+"]\n")
	p.args = []string{
		bin, "nri",
		"--socket=" + h.NRISocket,
		"--name=patchgate",
		"--policy=" + p.policyDir,
		"--node-name=e2e-node",
		"--host-root=" + p.hostRoot,
		"--hook-path=" + hookBin,
		"--decision-socket=" + filepath.Join(p.dir, "run", "decision.sock"),
		"--audit-socket=" + filepath.Join(p.dir, "run", "audit.sock"),
		"--audit-log=" + p.auditLog,
		"--status-file=" + filepath.Join(p.dir, "run", "status.json"),
		"--state-file=" + p.stateFile,
		"--kernel-interval=200ms",
		"--poll-interval=200ms",
		"--log-level=debug",
	}
	if !o.defaultIdx {
		p.args = append(p.args, "--idx=50")
	}
	if o.metrics {
		p.metricsAt = freeLoopbackAddr(t)
		p.args = append(p.args, "--metrics-addr="+p.metricsAt)
	}
	if o.baseSpec {
		p.useBaseSpec(hookBin)
	}
	t.Cleanup(func() {
		if t.Failed() && p.proc != nil {
			t.Logf("patchgate log (last 60 lines):\n%s", tail(p.proc.Log(), 60))
		}
		if p.proc != nil {
			if err := p.proc.Stop(10 * time.Second); err != nil {
				t.Errorf("patchgate did not stop cleanly: %v", err)
			}
		}
	})
	if !o.noStart {
		p.start()
	}
	return p
}

// useBaseSpec writes the base runtime spec (writeBaseSpec) and restarts containerd with it.
func (p *pg) useBaseSpec(hookBin string) {
	p.t.Helper()
	p.writeBaseSpec(hookBin)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := p.h.Restart(ctx, func(c *harness.Config) { c.BaseRuntimeSpec = p.baseSpec }); err != nil {
		p.t.Fatal(err)
	}
}

// writeBaseSpec writes the base runtime spec an operator would (`ctr oci spec | patchgate
// runtime-spec ...`, with the flags `patchgate nri` gives the hook it injects) to p.baseSpec.
func (p *pg) writeBaseSpec(hookBin string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	def := p.h.Ctr(ctx, "oci", "spec")
	if err := def.Err(); err != nil {
		p.t.Fatalf("ctr oci spec: %v", err)
	}
	p.baseSpec = filepath.Join(p.dir, "base-spec.json")
	run := filepath.Join(p.dir, "run")
	cmd := exec.CommandContext(ctx, p.bin, "runtime-spec", "--path="+hookBin, "--policy="+p.policyDir, "--out="+p.baseSpec, "--",
		"--socket="+filepath.Join(run, "decision.sock"),
		"--audit-socket="+filepath.Join(run, "audit.sock"),
		"--state-file="+p.stateFile,
		"--node-name=e2e-node",
		"--audit-spool="+audit.SpoolPathFor(p.auditLog))
	cmd.Stdin = strings.NewReader(def.Stdout)
	out, err := cmd.CombinedOutput()
	if err != nil {
		p.t.Fatalf("patchgate runtime-spec: %v\n%s", err, out)
	}
	p.t.Logf("patchgate runtime-spec: %s", strings.TrimSpace(string(out)))
}

// writePolicy writes one policy file atomically (the watcher must never see
// half a file).
func (p *pg) writePolicy(name, src string) {
	p.t.Helper()
	data := []byte(src)
	if !strings.HasPrefix(src, "apiVersion") {
		var err error
		if data, err = os.ReadFile(filepath.Join(p.root, src)); err != nil {
			p.t.Fatal(err)
		}
	}
	path := filepath.Join(p.policyDir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		p.t.Fatal(err)
	}
	tmp := filepath.Join(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		p.t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		p.t.Fatal(err)
	}
}

// start runs `patchgate nri` and waits for its next Synchronize.
func (p *pg) start() {
	p.t.Helper()
	proc, err := p.h.StartProcess("patchgate", p.args)
	if err != nil {
		p.t.Fatal(err)
	}
	p.proc = proc
	p.waitSynced()
}

// stop ends patchgate with SIGTERM, as systemd or kubelet would.
func (p *pg) stop() {
	p.t.Helper()
	if err := p.proc.Stop(10 * time.Second); err != nil {
		p.t.Fatalf("patchgate: %v", err)
	}
}

// waitSynced waits until patchgate has (re)connected: it logs one
// "synchronized with the runtime" per connection.
func (p *pg) waitSynced() {
	p.t.Helper()
	p.syncs++
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(p.proc.Log(), "synchronized with the runtime") < p.syncs {
		select {
		case <-p.proc.Exited():
			p.t.Fatalf("patchgate exited: %v\n%s", p.proc.ExitErr(), p.proc.Log())
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("patchgate did not connect to containerd:\n%s", p.proc.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// records reads patchgate's audit log (and anything still in the spool).
func (p *pg) records() []audit.Record {
	p.t.Helper()
	recs, problems, err := audit.ReadAll(context.Background(), p.auditLog, audit.ReadOptions{SpoolPath: audit.SpoolPathFor(p.auditLog)})
	if err != nil {
		p.t.Fatal(err)
	}
	if len(problems) > 0 {
		p.t.Fatalf("corrupt audit log: %v", problems)
	}
	return recs
}

// waitKernel waits until the kernel state file that patchgate keeps says
// whether the live patch is in force.
func (p *pg) waitKernel(patched bool) {
	p.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		b, err := os.ReadFile(p.stateFile)
		if err == nil {
			var k struct {
				Patches []struct {
					Name       string `json:"name"`
					Enabled    bool   `json:"enabled"`
					Transition bool   `json:"transition"`
				} `json:"patches"`
			}
			if json.Unmarshal(b, &k) == nil {
				in := false
				for _, pt := range k.Patches {
					in = in || (pt.Name == "livepatch_sample" && pt.Enabled && !pt.Transition)
				}
				if in == patched {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("kernel state never showed patched=%v: %s", patched, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var ctx0 = context.Background()

func opCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(ctx0, 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func int64p(v int64) *int64 { return &v }

// podOn is a pod on the harness's private bridge: no host namespaces.
func podOn(name, ns string) harness.PodConfig {
	return harness.PodConfig{Name: name, Namespace: ns}
}

// Kubelet's default masked and read-only paths (k8s.io/kubernetes
// pkg/securitycontext/util.go, defaultMaskedPaths and defaultReadonlyPaths):
// kubelet always sends them, crictl does not, and without them /proc is
// unmasked (the procMount rule).
var (
	kubeletMaskedPaths   = []string{"/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap"}
	kubeletReadonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
)

// worker is a busybox container that sleeps, as kubelet would ask for it:
// uid nil means root; a RuntimeDefault seccomp profile unless unconfined.
func worker(name string, uid *int64, unconfined bool) harness.ContainerConfig {
	c := harness.ContainerConfig{Name: name, Command: []string{"sleep", "3600"}, RunAsUser: uid}
	return kubelet(c, unconfined)
}

// kubelet writes the container's whole linux.security_context the way
// kubelet fills it (the harness's Raw replaces the generated one): user,
// privileged, capabilities, seccomp, masked and read-only paths.
func kubelet(c harness.ContainerConfig, unconfined bool) harness.ContainerConfig {
	sc := map[string]any{}
	if c.RunAsUser != nil {
		sc["run_as_user"] = map[string]any{"value": *c.RunAsUser}
	}
	if c.Privileged {
		sc["privileged"] = true
	} else {
		sc["masked_paths"] = kubeletMaskedPaths
		sc["readonly_paths"] = kubeletReadonlyPaths
	}
	if len(c.CapAdd) > 0 {
		sc["capabilities"] = map[string]any{"add_capabilities": c.CapAdd}
	}
	if !unconfined {
		sc["seccomp"] = map[string]any{"profile_type": 0} // RuntimeDefault
	}
	c.Raw = map[string]any{"linux": map[string]any{"security_context": sc}}
	return c
}

// mustRunPod runs a pod and fails the test if it is refused.
func (p *pg) mustRunPod(ctx context.Context, pod harness.PodConfig) string {
	p.t.Helper()
	id, r := p.h.RunPod(ctx, pod)
	if err := r.Err(); err != nil {
		p.t.Fatalf("runp %s: %v", pod.Name, err)
	}
	return id
}

// expectRefused checks what the user sees: crictl's error, with containerd's
// NRI prefix and patchgate's one-line reason.
func expectRefused(t testing.TB, r harness.Result, want ...string) {
	t.Helper()
	if r.ExitCode == 0 {
		t.Fatalf("%v succeeded, want it refused with %q", r.Args, want)
	}
	msg := r.ErrorMessage()
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("crictl error lacks %q:\n%s", w, msg)
		}
	}
	if i := strings.Index(msg, "patchgate:"); i >= 0 && strings.ContainsAny(msg[i:], "\n") {
		t.Errorf("patchgate's reason is not one line:\n%s", msg[i:])
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// recordSummary is one audit record as the scenarios compare it.
type recordSummary struct {
	Source, Action, Container string
	Rules                     string
}

func summarize(recs []audit.Record) []recordSummary {
	var out []recordSummary
	for _, r := range recs {
		var rules []string
		for _, v := range r.Violations {
			rules = append(rules, v.Rule)
		}
		out = append(out, recordSummary{r.Source, r.Action, r.Pod.Namespace + "/" + r.Container.Name, strings.Join(rules, ",")})
	}
	return out
}

func fmtSummaries(s []recordSummary) string {
	var b strings.Builder
	for _, r := range s {
		fmt.Fprintf(&b, "  %s %s %s [%s]\n", r.Source, r.Action, r.Container, r.Rules)
	}
	return b.String()
}

// logSpec logs the parts of a container's OCI spec patchgate judges, to
// explain a failed expectation.
func (p *pg) logSpec(ctx context.Context, id string) {
	p.t.Helper()
	st, r := p.h.Inspect(ctx, id)
	if r.Err() != nil {
		p.t.Logf("inspect %s: %v", id, r.Err())
		return
	}
	spec, err := st.Spec()
	if err != nil || spec.Linux == nil || spec.Process == nil {
		p.t.Logf("spec of %s: %v", id, err)
		return
	}
	b, _ := json.Marshal(map[string]any{
		"devices": len(spec.Linux.Devices), "deviceCgroup": spec.Linux.Resources, "capabilities": spec.Process.Capabilities,
		"maskedPaths": spec.Linux.MaskedPaths, "hooks": spec.Hooks,
	})
	p.t.Logf("spec of %s: %s", id, b)
}

func freeLoopbackAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String()
}

// metrics scrapes patchgate's Prometheus endpoint.
func (p *pg) metrics(t testing.TB) string {
	t.Helper()
	resp, err := http.Get("http://" + p.metricsAt + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
