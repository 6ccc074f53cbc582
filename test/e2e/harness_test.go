//go:build e2e

package e2e

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/api"
	"github.com/containerd/nri/pkg/stub"

	"github.com/patchgate/patchgate/test/harness"
)

// These tests prove the harness itself: containerd starts on private paths, pods and
// containers run and are inspected, privileged pods work, a restart keeps containers, an
// external NRI plugin connects to the private socket, and cleanup leaves nothing behind.

func TestHarnessPodsAndContainers(t *testing.T) {
	_, statErr := os.Stat("/run/containerd")
	hostRunContainerd := statErr == nil
	h := harness.StartT(t, harness.Options{Tools: requireTools(t)})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	t.Logf("containerd ready in %s, images imported in %s", h.Timings.Ready, h.Timings.Import)

	// A host-network pod with a busybox container that runs to completion.
	hostPod := harness.PodConfig{Name: "hostnet", Namespace: "e2e", HostNetwork: true,
		Labels: map[string]string{"app": "hostnet"}, Annotations: map[string]string{"e2e.patchgate.dev/pod": "yes"}}
	podID, r := h.RunPod(ctx, hostPod)
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	t.Logf("runp (host network): %s", r.Duration)
	ps, r := h.InspectPod(ctx, podID)
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if ps.Status.State != "SANDBOX_READY" || ps.Status.Labels["app"] != "hostnet" || ps.Status.Annotations["e2e.patchgate.dev/pod"] != "yes" {
		t.Fatalf("pod status = %s labels %v annotations %v", ps.Status.State, ps.Status.Labels, ps.Status.Annotations)
	}
	podSpec, err := ps.Spec()
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range podSpec.Linux.Namespaces {
		if ns.Type == "network" {
			t.Errorf("host-network sandbox spec has a network namespace: %+v", podSpec.Linux.Namespaces)
		}
	}

	id, r := h.CreateContainer(ctx, podID, hostPod, harness.ContainerConfig{
		Name:    "hello",
		Command: []string{"/bin/sh", "-c", "echo hello from busybox; id -u"},
		Labels:  map[string]string{"c": "hello"},
	})
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	t.Logf("create: %s", r.Duration)
	if r := h.StartContainer(ctx, id); r.Err() != nil {
		t.Fatal(r.Err())
	} else {
		t.Logf("start: %s", r.Duration)
	}
	st, err := h.WaitExited(ctx, id, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if st.Status.ExitCode != 0 || st.Status.Metadata.Name != "hello" || st.Status.Labels["c"] != "hello" {
		t.Fatalf("container status: exit %d name %q labels %v", st.Status.ExitCode, st.Status.Metadata.Name, st.Status.Labels)
	}
	if logs := h.Logs(ctx, id); !strings.Contains(logs.Stdout, "hello from busybox\n0\n") {
		t.Fatalf("logs = %q (stderr %q)", logs.Stdout, logs.Stderr)
	}
	if spec, err := st.Spec(); err != nil || len(spec.Process.Args) != 3 || spec.Process.Args[0] != "/bin/sh" {
		t.Fatalf("runtime spec from inspect: %+v %v", spec, err)
	}
	// A failing command gives its exit status.
	failID, r := h.RunContainer(ctx, podID, hostPod, harness.ContainerConfig{Name: "fails", Command: []string{"/bin/sh", "-c", "exit 7"}})
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if st, err := h.WaitExited(ctx, failID, 30*time.Second); err != nil || st.Status.ExitCode != 7 {
		t.Fatalf("exit status = %v, %v; want 7", st, err)
	}
	// A missing image is a crictl error with stderr, not a hang.
	if _, r := h.CreateContainer(ctx, podID, hostPod, harness.ContainerConfig{Name: "noimage", Image: "example.invalid/none:1"}); r.ExitCode == 0 || r.Stderr == "" {
		t.Fatalf("create with a missing image: exit %d stderr %q", r.ExitCode, r.Stderr)
	}

	// A pod on the private bridge gets its own network namespace and an address.
	netPod := harness.PodConfig{Name: "privnet", Namespace: "e2e"}
	netID, r := h.RunPod(ctx, netPod)
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	t.Logf("runp (private network): %s", r.Duration)
	nps, r := h.InspectPod(ctx, netID)
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	_, subnet, _ := net.ParseCIDR(h.Subnet)
	if ip := net.ParseIP(nps.Status.Network.IP); ip == nil || !subnet.Contains(ip) {
		t.Fatalf("private-network pod IP %q not in %s", nps.Status.Network.IP, h.Subnet)
	}

	// A privileged pod with a privileged container: all capabilities.
	privPod := harness.PodConfig{Name: "priv", Namespace: "e2e", HostNetwork: true, HostPID: true, Privileged: true}
	privPodID, r := h.RunPod(ctx, privPod)
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	privID, r := h.RunContainer(ctx, privPodID, privPod, harness.ContainerConfig{
		Name: "priv", Privileged: true, Command: []string{"/bin/sh", "-c", "grep CapEff /proc/self/status"},
	})
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := h.WaitExited(ctx, privID, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if logs := h.Logs(ctx, privID); !strings.Contains(logs.Stdout, "CapEff:\t000001ff") {
		t.Fatalf("privileged container capabilities: %q", logs.Stdout)
	}
	// containerd refuses a privileged container in an unprivileged pod.
	if _, r := h.CreateContainer(ctx, podID, hostPod, harness.ContainerConfig{Name: "notallowed", Privileged: true}); r.ExitCode == 0 {
		t.Fatal("privileged container in an unprivileged pod was created")
	}

	// The CRI fields the patchgate scenarios use reach the container: an added capability,
	// a read-only host / mount, a non-root user, environment, and a private-network pod's sysctl.
	uid := int64(1000)
	fieldsID, r := h.RunContainer(ctx, netID, netPod, harness.ContainerConfig{
		Name: "fields", CapAdd: []string{"SYS_ADMIN"}, RunAsUser: &uid,
		Mounts:  []harness.Mount{{HostPath: "/", ContainerPath: "/host", Readonly: true}},
		Env:     map[string]string{"GREETING": "hi"},
		Command: []string{"/bin/sh", "-c", `echo "uid=$(id -u) $GREETING"; test -d /host/proc && echo host-mounted; grep CapBnd /proc/self/status`},
	})
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := h.WaitExited(ctx, fieldsID, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	logs := h.Logs(ctx, fieldsID).Stdout
	// CAP_SYS_ADMIN is bit 21: the default bounding set 0xa80425fb plus 0x200000.
	for _, want := range []string{"uid=1000 hi\n", "host-mounted\n", "CapBnd:\t00000000a82425fb"} {
		if !strings.Contains(logs, want) {
			t.Errorf("container output lacks %q:\n%s", want, logs)
		}
	}
	sysPod := harness.PodConfig{Name: "sysctl", Namespace: "e2e", Sysctls: map[string]string{"net.ipv4.ping_group_range": "0 2147483647"}}
	sysID, r := h.RunPod(ctx, sysPod)
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	sysSt, r := h.InspectPod(ctx, sysID)
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if spec, err := sysSt.Spec(); err != nil || spec.Linux.Sysctl["net.ipv4.ping_group_range"] != "0 2147483647" {
		t.Fatalf("sandbox sysctls: %+v %v", spec, err)
	}

	// A helper process (as `patchgate nri` will be) is started, logged and stopped.
	proc, err := h.StartProcess("helper", []string{tools.Busybox, "sh", "-c", "echo helper up; exec sleep 3600"})
	if err != nil {
		t.Fatal(err)
	}

	// The shims put their sockets in the private socket_dir; the host's /run/containerd is
	// not used.
	if socks, err := os.ReadDir(h.ShimSocketDir); err != nil || len(socks) == 0 {
		t.Errorf("no shim sockets in %s: %v", h.ShimSocketDir, err)
	}
	if _, err := os.Stat("/run/containerd"); err == nil && !hostRunContainerd {
		t.Error("the harness created /run/containerd")
	}

	// A long-running container survives a containerd restart, and the pod still works after.
	sleeperID, r := h.RunContainer(ctx, podID, hostPod, harness.ContainerConfig{Name: "sleeper", Command: harness.SleepCommand})
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if err := h.Restart(ctx, nil); err != nil {
		t.Fatal(err)
	}
	t.Logf("containerd restart: ready in %s", h.Timings.Ready)
	if st, r := h.Inspect(ctx, sleeperID); r.Err() != nil || st.Status.State != "CONTAINER_RUNNING" {
		t.Fatalf("after restart: %v %v", st, r.Err())
	}
	if id, r := h.RunContainer(ctx, podID, hostPod, harness.ContainerConfig{Name: "after-restart", Command: []string{"true"}}); r.Err() != nil {
		t.Fatal(r.Err())
	} else if st, err := h.WaitExited(ctx, id, 30*time.Second); err != nil || st.Status.ExitCode != 0 {
		t.Fatalf("after restart: %v %v", st, err)
	}
	// A crash (SIGKILL) of containerd is survived the same way.
	h.Kill()
	if h.Running() {
		t.Fatal("containerd still running after Kill")
	}
	if err := h.Restart(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if st, r := h.Inspect(ctx, sleeperID); r.Err() != nil || st.Status.State != "CONTAINER_RUNNING" {
		t.Fatalf("after a crash and restart: %v %v", st, r.Err())
	}

	if !proc.Running() || !strings.Contains(proc.Log(), "helper up") {
		t.Fatalf("helper process: running %t, log %q", proc.Running(), proc.Log())
	}

	// Cleanup removes the running pods, the helper, containerd, mounts, cgroups and the directory.
	if pids, r := h.Pods(ctx); r.Err() != nil || len(pids) != 4 {
		t.Fatalf("pods before cleanup: %v %v", pids, r.Err())
	}
	if err := h.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	if left := h.Leftovers(); len(left) > 0 {
		t.Fatalf("left behind: %v", left)
	}
	if proc.Running() {
		t.Fatal("helper process still running after Cleanup")
	}
}

// smokePlugin is a minimal external NRI plugin: it marks every container it sees with an
// annotation, so the test can tell that it ran in the create path.
type smokePlugin struct{ seen chan string }

func (p *smokePlugin) CreateContainer(_ context.Context, _ *api.PodSandbox, c *api.Container) (*api.ContainerAdjustment, []*api.ContainerUpdate, error) {
	select {
	case p.seen <- c.GetName():
	default:
	}
	adj := &api.ContainerAdjustment{}
	adj.AddAnnotation("e2e.patchgate.dev/seen-by", "harness-smoke")
	return adj, nil, nil
}

var _ stub.CreateContainerInterface = (*smokePlugin)(nil)

func TestHarnessNRIPluginAndRequiredPlugins(t *testing.T) {
	h := harness.StartT(t, harness.Options{
		Tools: requireTools(t),
		NRI: harness.NRIConfig{
			RequestTimeout: 2 * time.Second,
			Validator: harness.ValidatorConfig{Enable: true, RequiredPlugins: []string{"harness-smoke"},
				TolerateMissingPluginsAnnotation: harness.TolerateMissingPluginsKey},
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	pod := harness.PodConfig{Name: "nri", Namespace: "e2e", HostNetwork: true}
	podID, r := h.RunPod(ctx, pod)
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	// Without the required plugin, the default validator refuses every create.
	_, r = h.CreateContainer(ctx, podID, pod, harness.ContainerConfig{Name: "before", Command: []string{"true"}})
	const missing = `validator "00-default-validator" rejected container adjustment, reason: validation error: required plugin "harness-smoke" not present`
	if r.ExitCode == 0 || !strings.Contains(r.ErrorMessage(), "failed to get NRI adjustment for container: "+missing) {
		t.Fatalf("create without the required plugin: exit %d, stderr:\n%s", r.ExitCode, r.Stderr)
	}
	// The tolerate annotation on the pod lets its containers start without the plugin.
	tolerant := harness.PodConfig{Name: "tolerant", Namespace: "e2e", HostNetwork: true,
		Annotations: map[string]string{harness.TolerateMissingPluginsKey: "true"}}
	tolID, r := h.RunPod(ctx, tolerant)
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if _, r := h.CreateContainer(ctx, tolID, tolerant, harness.ContainerConfig{Name: "tolerated", Command: []string{"true"}}); r.Err() != nil {
		t.Fatalf("tolerated pod: %v", r.Err())
	}

	// An external plugin connects to the private NRI socket and runs in the create path.
	p := &smokePlugin{seen: make(chan string, 16)}
	s, err := stub.New(p, stub.WithPluginName("harness-smoke"), stub.WithPluginIdx("10"), stub.WithSocketPath(h.NRISocket))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatalf("plugin could not connect to %s: %v", h.NRISocket, err)
	}
	defer s.Stop()
	id, r := h.CreateContainer(ctx, podID, pod, harness.ContainerConfig{Name: "after", Command: []string{"true"}})
	if err := r.Err(); err != nil {
		t.Fatalf("create with the plugin connected: %v", err)
	}
	select {
	case name := <-p.seen:
		if name != "after" {
			t.Fatalf("plugin saw %q", name)
		}
	default:
		t.Fatal("plugin did not see the container")
	}
	st, r := h.Inspect(ctx, id)
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	spec, err := st.Spec()
	if err != nil {
		t.Fatal(err)
	}
	if got := spec.Annotations["e2e.patchgate.dev/seen-by"]; got != "harness-smoke" {
		t.Fatalf("plugin's annotation = %q; spec annotations %v", got, spec.Annotations)
	}
}

// TestHarnessSweepStale: when the test process that owns an instance dies before its cleanup
// (go test -timeout, a kill), the next harness start removes what it left: containerd, the
// shims and containers, mounts, cgroups, the bridge and the directory.
func TestHarnessSweepStale(t *testing.T) {
	requireTools(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	h, err := harness.Start(ctx, harness.Options{Tools: tools})
	if err != nil {
		harness.SkipOrFail(t, err)
	}
	defer func() { _ = h.Cleanup(context.Background()) }() // a no-op when the sweep worked
	pod := harness.PodConfig{Name: "orphan", Namespace: "e2e"}
	podID, r := h.RunPod(ctx, pod)
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if _, r := h.RunContainer(ctx, podID, pod, harness.ContainerConfig{Name: "orphan", Command: harness.SleepCommand}); r.Err() != nil {
		t.Fatal(r.Err())
	}
	// Pretend the owner died: point owner.pid at a process that has exited.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(h.Dir, "owner.pid"), []byte(strconv.Itoa(dead.Process.Pid)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if len(h.Leftovers()) == 0 {
		t.Fatal("nothing to sweep: the instance is not running")
	}
	swept, err := harness.SweepStale(ctx, filepath.Dir(h.Dir))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, d := range swept {
		found = found || d == h.Dir
	}
	if !found {
		t.Fatalf("SweepStale removed %v, not %s", swept, h.Dir)
	}
	if left := h.Leftovers(); len(left) > 0 {
		t.Fatalf("left behind after the sweep: %v", left)
	}
	// The killed pod never had its network torn down; its libcni cache entry must go too.
	results, _ := filepath.Glob("/var/lib/cni/results/*")
	for _, r := range results {
		if data, err := os.ReadFile(r); err == nil && strings.Contains(string(data), h.Dir+"/") {
			t.Errorf("libcni result of the swept instance left: %s", r)
		}
	}
}

// TestHarnessStartFailureCleansUp: when containerd cannot start, Start reports why (with
// containerd's own log) and leaves nothing behind.
func TestHarnessStartFailureCleansUp(t *testing.T) {
	requireTools(t)
	before, _ := filepath.Glob("/tmp/pge2e-*")
	_, err := harness.Start(context.Background(), harness.Options{Tools: tools, LogLevel: "no-such-level"})
	if !errors.Is(err, harness.ErrNotReady) || !strings.Contains(err.Error(), "no-such-level") {
		t.Fatalf("Start with a bad log level: %v", err)
	}
	t.Logf("Start error: %v", err)
	after, _ := filepath.Glob("/tmp/pge2e-*")
	if len(after) != len(before) {
		t.Fatalf("private directories before %v, after %v", before, after)
	}
}
