//go:build e2e

package hooke2e

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/api"
	"github.com/containerd/nri/pkg/stub"

	"github.com/patchgate/patchgate/hook"
	"github.com/patchgate/patchgate/test/harness"
)

// hookInjector is a minimal NRI plugin that adds createRuntime hooks to
// every container, as patchgate's NRI plugin does: first a recorder that
// saves what containerd hands a hook (stdin, working directory,
// config.json), then `patchgate hook`.
type hookInjector struct {
	recorder string
	args     []string
}

func (p *hookInjector) CreateContainer(_ context.Context, _ *api.PodSandbox, _ *api.Container) (*api.ContainerAdjustment, []*api.ContainerUpdate, error) {
	adj := &api.ContainerAdjustment{}
	adj.AddHooks(&api.Hooks{CreateRuntime: []*api.Hook{
		// A test-only recorder; patchgate itself never runs a shell.
		{Path: "/bin/busybox", Args: []string{"sh", "-c",
			`d="$0/$$"; mkdir -p "$d" && cat > "$d/state.json" && pwd > "$d/cwd" && cp config.json "$d/config.json"`, p.recorder}},
		// As the NRI plugin injects it: containerd's CRI annotations name
		// the pod (REVIEW AF1: the hook trusts them only when told).
		{Path: patchgateBin, Args: append([]string{"patchgate", "hook", "--identity-from=containerd"}, p.args...)},
	}})
	return adj, nil, nil
}

var _ stub.CreateContainerInterface = (*hookInjector)(nil)

// kubelet's default /proc masking (DefaultProcMount), which kubelet sends in
// every CRI request and crictl does not: k8s.io/kubernetes
// pkg/securitycontext/util.go (v1.34).
var (
	kubeletMaskedPaths = []string{"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
		"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
		"/sys/firmware", "/sys/devices/virtual/powercap"}
	kubeletReadonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
)

// asKubelet writes the container's security context the way kubelet
// does for a pod with runAsUser, capabilities and
// allowPrivilegeEscalation: false.
func asKubelet(name string, uid int64, add, drop []string) harness.ContainerConfig {
	caps := map[string]any{}
	if len(add) > 0 {
		caps["add_capabilities"] = add
	}
	if len(drop) > 0 {
		caps["drop_capabilities"] = drop
	}
	return harness.ContainerConfig{Name: name, Command: []string{"true"}, Raw: map[string]any{
		"linux": map[string]any{"security_context": map[string]any{
			"run_as_user":    map[string]any{"value": uid},
			"capabilities":   caps,
			"masked_paths":   kubeletMaskedPaths,
			"readonly_paths": kubeletReadonlyPaths,
			"no_new_privs":   true,
		}},
	}}
}

// TestContainerd runs the hook under a real containerd 2.4.2 (test/harness),
// injected through NRI the way the plugin injects it, with the service up.
// It checks containerd's bundle and working-directory convention and its
// annotations on what containerd really passes, and that refused containers
// fail `crictl start` with the hook's line. UPDATE_GOLDEN=1 saves the
// recorded state and config.json under hook/testdata/containerd.
func TestContainerd(t *testing.T) {
	needTools(t, "runc")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	tools, err := harness.EnsureTools(ctx, harness.ToolsOptions{CacheDir: os.Getenv("PATCHGATE_E2E_CACHE"), Log: os.Stderr})
	if err != nil {
		if errors.Is(err, harness.ErrMissingPrerequisite) {
			harness.SkipOrFail(t, err)
		}
		t.Fatal(err)
	}
	h := harness.StartT(t, harness.Options{Tools: tools})

	e := newEnv(t)
	// containerd's CRI mounts /etc/hosts, /etc/resolv.conf, /dev/shm from
	// its private root and state.
	e.setRuntimeDirs(h.Root, h.State)
	e.startService()
	// containerd's app containers join the sandbox's namespaces by
	// /proc/<pid>/ns paths, which only the real /proc can resolve; the
	// kernel state comes from the service, which reads the fixture.
	e.hookHostRoot = "/"
	rec := filepath.Join(e.dir, "recorded")
	if err := os.MkdirAll(rec, 0o755); err != nil {
		t.Fatal(err)
	}
	p := &hookInjector{recorder: rec, args: e.hookArgs()}
	s, err := stub.New(p, stub.WithPluginName("hook-injector"), stub.WithPluginIdx("10"), stub.WithSocketPath(h.NRISocket))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer s.Stop()

	pod := harness.PodConfig{Name: "web-0", Namespace: "shop"}
	podID, r := h.RunPod(ctx, pod)
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	id, r := h.RunContainer(ctx, podID, pod, asKubelet("web", 1000, nil, []string{"ALL"}))
	if err := r.Err(); err != nil {
		dumpRecordings(t, rec)
		t.Fatalf("compliant container refused: %v", err)
	}
	if st, err := h.WaitExited(ctx, id, 30*time.Second); err != nil || st.Status.ExitCode != 0 {
		t.Fatalf("compliant container: %v %v", st, err)
	}
	checkContainerdRecording(t, rec, id, podID)

	blocked := map[string]string{}
	for _, tc := range []struct {
		name string
		c    harness.ContainerConfig
		want []string
	}{
		{"root", asKubelet("root", 0, nil, []string{"ALL"}), []string{"[runAsRoot]"}},
		{"cap-sys-admin", asKubelet("admin", 1000, []string{"SYS_ADMIN"}, nil), []string{"[capabilities]", "CAP_SYS_ADMIN"}},
	} {
		cid, r := h.CreateContainer(ctx, podID, pod, tc.c)
		if err := r.Err(); err != nil {
			t.Fatalf("%s: create: %v", tc.name, err)
		}
		r = h.StartContainer(ctx, cid)
		msg := r.ErrorMessage()
		if r.ExitCode == 0 {
			t.Errorf("%s: started, want refused", tc.name)
			continue
		}
		for _, w := range append([]string{"patchgate: blocked", `policy "e2e-hook"`, `(pod shop/web-0)`}, tc.want...) {
			if !strings.Contains(strings.ReplaceAll(msg, `\"`, `"`), w) {
				t.Errorf("%s: crictl start error lacks %q:\n%s", tc.name, w, msg)
			}
		}
		blocked[cid] = tc.name
	}
	e.stopService()
	e.expectAudited(blocked)
}

// checkContainerdRecording checks what containerd handed the hook for the
// compliant container.
func checkContainerdRecording(t *testing.T, rec, id, podID string) {
	t.Helper()
	dirs, err := os.ReadDir(rec)
	if err != nil {
		t.Fatal(err)
	}
	var found string
	for _, d := range dirs {
		data, err := os.ReadFile(filepath.Join(rec, d.Name(), "state.json"))
		if err != nil {
			continue
		}
		st, err := hook.ParseState(data)
		if err != nil {
			t.Fatalf("containerd's state does not parse: %v\n%s", err, data)
		}
		if st.ID != id {
			continue
		}
		found = filepath.Join(rec, d.Name())
		info, err := hook.ClassifyBundle(st.Bundle, st.ID)
		if err != nil || info.Layout != hook.LayoutContainerd || info.Namespace != "k8s.io" {
			t.Errorf("bundle %q: %+v %v, want containerd layout in k8s.io", st.Bundle, info, err)
		}
		cwd, _ := os.ReadFile(filepath.Join(found, "cwd"))
		if strings.TrimSpace(string(cwd)) != st.Bundle {
			t.Errorf("hook working directory %q, bundle %q", cwd, st.Bundle)
		}
		if st.Status != "creating" {
			t.Errorf("status %q", st.Status)
		}
		ident := hook.IdentityFrom(st.ID, st.Annotations)
		if ident.Runtime != hook.RuntimeContainerd || ident.Pod.Name != "web-0" || ident.Pod.Namespace != "shop" ||
			ident.Container.Name != "web" || ident.SandboxID != podID {
			t.Errorf("identity from containerd's annotations: %+v", ident)
		}
		if os.Getenv("UPDATE_GOLDEN") == "1" {
			saveGolden(t, found)
		}
	}
	if found == "" {
		t.Fatalf("no recording for container %s in %s", id, rec)
	}
}

func saveGolden(t *testing.T, from string) {
	root, err := harness.FindRepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(root, "hook", "testdata", "containerd")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"state.json", "config.json"} {
		data, err := os.ReadFile(filepath.Join(from, f))
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(data, &v); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("saved containerd's hook input to %s", dst)
}

// dumpRecordings logs the recorded configs' masked and read-only paths.
func dumpRecordings(t *testing.T, rec string) {
	dirs, _ := os.ReadDir(rec)
	for _, d := range dirs {
		data, err := os.ReadFile(filepath.Join(rec, d.Name(), "config.json"))
		if err != nil {
			continue
		}
		var spec struct {
			Linux struct {
				MaskedPaths   []string `json:"maskedPaths"`
				ReadonlyPaths []string `json:"readonlyPaths"`
			} `json:"linux"`
		}
		_ = json.Unmarshal(data, &spec)
		t.Logf("%s: maskedPaths %v readonlyPaths %v", d.Name(), spec.Linux.MaskedPaths, spec.Linux.ReadonlyPaths)
		if os.Getenv("KEEP_RECORDING") != "" {
			_ = os.WriteFile(filepath.Join(os.Getenv("KEEP_RECORDING"), d.Name()+".json"), data, 0o644)
		}
	}
}
