//go:build e2e

package k8se2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/patchgate/patchgate/test/harness"
)

const (
	ns      = "patchgate-system"
	release = "patchgate"
)

// TestKubernetes is issue 14: the chart's DaemonSet on a real single-node Kubernetes, with
// containerd's default validator requiring patchgate. The subtests run in order on one
// cluster; each leaves it as the next expects.
func TestKubernetes(t *testing.T) {
	if privateRoot == "" {
		harness.SkipOrFail(t, fmt.Errorf("k8se2e: needs root and a private mount namespace (run as root; TestMain makes the namespace): %w", harness.ErrMissingPrerequisite))
	}
	repo, err := harness.FindRepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	archive := os.Getenv("PATCHGATE_IMAGE_ARCHIVE")
	if archive == "" {
		archive = filepath.Join(repo, "dist", "patchgate-image.oci.tar")
	}
	if _, err := os.Stat(archive); err != nil {
		harness.SkipOrFail(t, fmt.Errorf("k8se2e: the image archive (make image): %v: %w", err, harness.ErrMissingPrerequisite))
	}
	ref, err := imageRef(archive)
	if err != nil {
		t.Fatal(err)
	}
	tag := ref[strings.LastIndex(ref, ":")+1:]

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	kt, err := harness.EnsureKubernetes(ctx, harness.KubeToolsOptions{Log: os.Stderr})
	if err != nil {
		harness.SkipOrFail(t, err)
	}
	// As README.md's "Install with Helm" starts: NRI with the default validator, without
	// required_plugins for now.
	h := harness.StartT(t, harness.Options{
		NRI: harness.NRIConfig{Validator: harness.ValidatorConfig{
			Enable:                           true,
			TolerateMissingPluginsAnnotation: harness.TolerateMissingPluginsKey,
		}},
		// TEST-NET-2, with the bridge as the pods' gateway, so that the kubelet reaches the
		// patchgate pod's probes on its pod IP; this machine's own interface may be on TEST-NET-1.
		Subnet:      "198.51.100.0/24",
		HostGateway: true,
	})
	// The chart mounts /var/run/nri; in this namespace it is this containerd's NRI directory.
	if err := syscall.Mount(filepath.Dir(h.NRISocket), "/run/nri", "", syscall.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Unmount("/run/nri", syscall.MNT_DETACH) })
	if err := importArchive(ctx, h, archive, ref); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	k, err := harness.StartKube(ctx, h, harness.KubeOptions{Tools: kt, Log: harnessLog{t}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cluster ready in %s", time.Since(began).Round(100*time.Millisecond))
	t.Cleanup(func() {
		if t.Failed() {
			diagnose(t, k)
		}
		if err := k.Stop(context.Background()); err != nil {
			t.Errorf("stopping the cluster: %v", err)
		}
		if left := k.Leftovers(); len(left) > 0 {
			t.Errorf("the cluster left behind: %v", left)
		}
	})
	helm := newHelm(t, repo, k)
	chart := os.Getenv("PATCHGATE_CHART")
	if chart == "" {
		chart = filepath.Join(repo, "charts", "patchgate")
	}

	// The policy must describe this node as a real node's policy describes it: where its
	// containerd and kubelet keep the files they bind into every container. The harness
	// runs both under private directories, not the defaults of rules.hostPathMounts
	// (/var/lib/containerd, /run/containerd, /var/lib/kubelet), and without these the
	// hook judges CRI's /etc/hostname, /etc/resolv.conf, /dev/shm and the kubelet's
	// /etc/hosts and /dev/termination-log as host paths: every pod is refused once the
	// enforce policy is in force (README.md, "Install with Helm", says so; `patchgate
	// check` warns about containerd's). This machine has no AppArmor: the chart's
	// apparmor.requireProfile: false is what lets any pod start here.
	values := filepath.Join(k.Dir, "values.yaml")
	if err := os.WriteFile(values, []byte(fmt.Sprintf(`image:
  tag: %q
  pullPolicy: Never
policy:
  spec:
    kernel:
      # Not loaded on this machine: the kernel is behind, and runAsRoot's
      # whenKernelBehind: enforce refuses root (in enforce mode).
      requiredPatches: [livepatch_sample]
    rules:
      hostPathMounts:
        runtimeDirs: [%q, %q]
        kubeletDir: %q
`, tag, filepath.Join(h.Root, "io.containerd.grpc.v1.cri", "sandboxes"), filepath.Join(h.State, "io.containerd.grpc.v1.cri", "sandboxes"),
		filepath.Join(k.Dir, "kubelet"))), 0o600); err != nil {
		t.Fatal(err)
	}

	// README.md, "Install with Helm", command by command; the values file only adds what an
	// offline node needs (the imported image) and this test's kernel requirement.
	ok := t.Run("install-in-audit-mode", func(t *testing.T) {
		kubectl(t, k, "create", "namespace", ns)
		kubectl(t, k, "label", "namespace", ns, "pod-security.kubernetes.io/enforce=privileged")
		helm.run(t, "install", release, chart, "--namespace", ns, "--create-namespace", "--values", values)
		kubectl(t, k, "-n", ns, "rollout", "status", "ds/"+release, "--timeout", "5m")
		patchgateReady(t, k)
	})
	if !ok {
		t.Fatal("patchgate's DaemonSet is not ready; the other scenarios need it")
	}

	t.Run("audit-mode-flags-and-admits", func(t *testing.T) {
		// Privileged and root while the kernel is behind: enforce mode refuses it twice over
		// (privileged; runAsRoot's whenKernelBehind), audit mode refuses nothing.
		apply(t, k, "audited", pod("audited", "privileged", 0))
		waitReady(t, k, "default", "audited", 2*time.Minute)
		podLogLine(t, k, "container flagged", "default/audited")
		kubectl(t, k, "delete", "pod", "audited", "--wait=true")
	})

	ok = t.Run("enforce-then-required-plugins", func(t *testing.T) {
		reloads := func() int {
			return strings.Count(kubectl(t, k, "-n", ns, "logs", "ds/"+release, "-c", "patchgate"), "policy reloaded")
		}
		reloaded := reloads()
		helm.run(t, "upgrade", release, chart, "--namespace", ns, "--reuse-values", "--set", "mode=enforce")
		kubectl(t, k, "-n", ns, "rollout", "status", "ds/"+release, "--timeout", "5m")
		// The chart changes only the ConfigMap (no restart): the pod enforces once the
		// kubelet has updated its volume (up to a minute or so) and patchgate has reloaded.
		// Until then every pod below would be judged in audit mode.
		eventually(t, 3*time.Minute, "patchgate enforcing the upgraded policy", func() error {
			if n := reloads(); n <= reloaded {
				return fmt.Errorf("no policy reload logged since the upgrade")
			}
			return nil
		})
		// Last, once patchgate is ready: required_plugins, and containerd restarted. patchgate
		// reconnects by itself; it logs one "synchronized with the runtime" per connection.
		syncs := func() int {
			return strings.Count(kubectl(t, k, "-n", ns, "logs", "ds/"+release, "-c", "patchgate"), "synchronized with the runtime")
		}
		before := syncs()
		if err := h.Restart(ctx, func(c *harness.Config) { c.NRI.Validator.RequiredPlugins = []string{"patchgate"} }); err != nil {
			t.Fatal(err)
		}
		eventually(t, 2*time.Minute, "patchgate connected to the restarted containerd", func() error {
			if n := syncs(); n <= before {
				return fmt.Errorf("%d synchronizations, as before the restart", n)
			}
			return nil
		})
		kubectl(t, k, "-n", ns, "rollout", "status", "ds/"+release, "--timeout", "5m")
		// and the guard for NRI's toleration annotation.
		kubectl(t, k, "apply", "-f", filepath.Join(repo, "examples", "kubernetes", "deny-nri-toleration.yaml"))
	})
	if !ok {
		t.Fatal("patchgate does not enforce with required_plugins; the other scenarios need it")
	}

	t.Run("compliant-pod-runs", func(t *testing.T) {
		apply(t, k, "compliant", pod("compliant", "", 1000))
		waitReady(t, k, "default", "compliant", 2*time.Minute)
	})

	refused := map[string]struct {
		doc  string
		want []string
	}{
		"privileged": {doc: pod("privileged", "privileged", 0), want: []string{"privileged"}},
		// Either NRI refuses it at create ("patchgate: denied [hostPathMounts]") or the hook
		// at start ("patchgate: blocked container ...: rules ..., hostPathMounts").
		"hostpath": {doc: pod("hostpath", "hostpath", 1000), want: []string{"hostPathMounts", "/var/lib"}},
		"root":     {doc: pod("root", "", 0), want: []string{"runAsRoot", "kernel"}},
	}
	for _, name := range []string{"privileged", "hostpath", "root"} {
		c := refused[name]
		t.Run("refused-"+name, func(t *testing.T) {
			apply(t, k, name, c.doc)
			expectRefused(t, k, name, append([]string{"patchgate: "}, c.want...)...)
		})
	}

	// The chart's self-exemption names patchgate's namespace, its containers and its image:
	// another image in that namespace, even in a container named patchgate, is judged.
	t.Run("own-namespace-other-image-refused", func(t *testing.T) {
		doc := strings.Replace(strings.Replace(pod("impostor", "hostpath", 0), "  namespace: default\n", "  namespace: "+ns+"\n", 1),
			"  - name: app\n", "  - name: patchgate\n", 1)
		apply(t, k, "impostor", doc)
		expectRefusedIn(t, k, ns, "impostor", "patchgate", "patchgate: ", "runAsRoot")
		kubectl(t, k, "-n", ns, "delete", "pod", "impostor", "--wait=false")
	})

	t.Run("toleration-annotation-refused", func(t *testing.T) {
		doc := strings.Replace(pod("tolerated", "", 0), "  namespace: default\n",
			"  namespace: default\n  annotations: {"+harness.TolerateMissingPluginsKey+"/pod: \"true\"}\n", 1)
		p := filepath.Join(k.Dir, "tolerated.yaml")
		if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		// The API server enforces a new ValidatingAdmissionPolicy once it has compiled it.
		eventually(t, time.Minute, "the API server refusing the annotated pod", func() error {
			r := k.Kubectl(context.Background(), "apply", "-f", p)
			if r.ExitCode == 0 {
				kubectl(t, k, "delete", "pod", "tolerated", "--wait=true")
				return fmt.Errorf("pod with %s/pod admitted", harness.TolerateMissingPluginsKey)
			}
			if !strings.Contains(r.Stderr, "patchgate-deny-nri-toleration") {
				t.Fatalf("kubectl apply failed, but not by the policy: %v", r.Err())
			}
			t.Logf("refused: %s", strings.TrimSpace(r.Stderr))
			return nil
		})
	})

	t.Run("logs-show-the-refusal", func(t *testing.T) {
		podLogLine(t, k, "container refused", "default/privileged")
	})

	t.Run("no-patchgate-pod-no-containers", func(t *testing.T) {
		// Hold the DaemonSet controller still, so the node stays without a patchgate pod
		// for as long as the test looks.
		if err := k.StopComponent("kube-controller-manager"); err != nil {
			t.Fatal(err)
		}
		restarted := false
		defer func() {
			if !restarted {
				_ = k.StartComponent(context.Background(), "kube-controller-manager")
			}
		}()
		kubectl(t, k, "-n", ns, "delete", "pod", "-l", "app.kubernetes.io/name=patchgate", "--wait=true", "--timeout=2m")
		apply(t, k, "gap-root", pod("gap-root", "", 0))
		apply(t, k, "gap-compliant", pod("gap-compliant", "", 1000))
		for _, name := range []string{"gap-root", "gap-compliant"} {
			expectRefused(t, k, name, `required plugin "patchgate" not present`)
		}
		if err := k.StartComponent(ctx, "kube-controller-manager"); err != nil {
			t.Fatal(err)
		}
		restarted = true
		kubectl(t, k, "-n", ns, "rollout", "status", "ds/"+release, "--timeout=4m")
		patchgateReady(t, k)
		// patchgate is back: the compliant pod starts at the kubelet's next try, the root one
		// is now refused by patchgate itself.
		waitReady(t, k, "default", "gap-compliant", 3*time.Minute)
		expectRefused(t, k, "gap-root", "patchgate: denied", "runAsRoot")
	})

	t.Run("rolling-update", func(t *testing.T) {
		before := strings.TrimSpace(kubectl(t, k, "-n", ns, "get", "pod", "-l", "app.kubernetes.io/name=patchgate", "-o", "jsonpath={.items[*].metadata.name}"))
		helm.run(t, "upgrade", release, chart, "--namespace", ns, "--reuse-values",
			"--set", "podAnnotations.k8se2e/rollout=two")
		kubectl(t, k, "-n", ns, "rollout", "status", "ds/"+release, "--timeout=4m")
		after := strings.TrimSpace(kubectl(t, k, "-n", ns, "get", "pod", "-l", "app.kubernetes.io/name=patchgate",
			"-o", `jsonpath={range .items[*]}{.metadata.name} {.metadata.annotations.k8se2e/rollout}{"\n"}{end}`))
		if f := strings.Fields(after); len(f) != 2 || f[0] == before || f[1] != "two" {
			t.Fatalf("after the upgrade the patchgate pods are %q (before: %q); want one new pod annotated two", after, before)
		}
		// And it judges again: refuses a privileged pod, admits a compliant one.
		apply(t, k, "after-rollout", pod("after-rollout", "privileged", 0))
		expectRefused(t, k, "after-rollout", "patchgate: denied", "privileged")
		apply(t, k, "after-rollout-compliant", pod("after-rollout-compliant", "", 1000))
		waitReady(t, k, "default", "after-rollout-compliant", 2*time.Minute)
	})

	t.Run("refused-pods-never-ran", func(t *testing.T) {
		// Through every scenario above (patchgate gone, back, rolled): not once started.
		for _, name := range []string{"privileged", "hostpath", "root", "gap-root", "after-rollout"} {
			st, err := getPod(context.Background(), k, "default", name)
			if err != nil && strings.Contains(err.Error(), "NotFound") {
				continue // its scenario did not run (go test -run)
			}
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			if st.Running["app"] || st.Ran["app"] != "" {
				t.Errorf("pod %s ran (running %t, last state %q)", name, st.Running["app"], st.Ran["app"])
			}
		}
	})

	t.Run("uninstall-in-order", func(t *testing.T) {
		// docs/operations.md, "Upgrade and uninstall order": required_plugins off and
		// containerd restarted first, then the chart removed.
		// The test's pods go first: refused ones would start once nothing judges them.
		kubectl(t, k, "delete", "pods", "--all", "-n", "default", "--wait=true", "--timeout=2m")
		if err := h.Restart(ctx, func(c *harness.Config) { c.NRI.Validator.RequiredPlugins = nil }); err != nil {
			t.Fatal(err)
		}
		helm.run(t, "uninstall", release, "--namespace", ns)
		eventually(t, 2*time.Minute, "patchgate's pod gone", func() error {
			out := strings.TrimSpace(kubectl(t, k, "-n", ns, "get", "pod", "-o", "name"))
			if out != "" {
				return fmt.Errorf("still: %s", out)
			}
			return nil
		})
		kubectl(t, k, "delete", "namespace", ns, "--timeout=3m")
		apply(t, k, "after-uninstall", pod("after-uninstall", "", 1000))
		waitReady(t, k, "default", "after-uninstall", 3*time.Minute)
	})
}

// patchgateReady waits until the node has a patchgate pod that is Ready: rollout status
// alone passes while the DaemonSet controller has not counted the node yet.
func patchgateReady(t *testing.T, k *harness.Kube) {
	t.Helper()
	eventually(t, 3*time.Minute, "a ready patchgate pod", func() error {
		out := kubectl(t, k, "-n", ns, "get", "pod", "-l", "app.kubernetes.io/name=patchgate",
			"-o", `jsonpath={range .items[*]}{.metadata.name} {.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}`)
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if f := strings.Fields(l); len(f) == 2 && f[1] == "True" {
				return nil
			}
		}
		return fmt.Errorf("patchgate pods: %q", out)
	})
}

// podLogLine waits until `kubectl logs` of patchgate's pod has a line with all of want.
func podLogLine(t *testing.T, k *harness.Kube, want ...string) {
	t.Helper()
	eventually(t, time.Minute, "kubectl logs", func() error {
		logs := kubectl(t, k, "-n", ns, "logs", "ds/"+release, "-c", "patchgate")
		for _, line := range strings.Split(logs, "\n") {
			if containsAll(line, want) {
				t.Logf("patchgate's line: %s", line)
				return nil
			}
		}
		return fmt.Errorf("no line with %q in:\n%s", want, lastLines(logs, 20))
	})
}

// pod is a busybox pod in the default namespace, compliant but for what kind asks:
// "privileged" (securityContext.privileged), "hostpath" (a writable hostPath volume of /var/lib); uid is
// its user (0: root).
func pod(name, kind string, uid int) string {
	sc := fmt.Sprintf(`
      runAsUser: %d
      allowPrivilegeEscalation: false
      capabilities: {drop: ["ALL"]}
      seccompProfile: {type: RuntimeDefault}`, uid)
	if uid != 0 {
		sc += "\n      runAsNonRoot: true"
	}
	var volumes, mounts string
	switch kind {
	case "privileged":
		sc = fmt.Sprintf(`
      runAsUser: %d
      privileged: true`, uid)
	case "hostpath":
		mounts = `
    volumeMounts:
    - {name: host, mountPath: /host-var-lib}`
		volumes = `
  volumes:
  - name: host
    hostPath: {path: /var/lib, type: Directory}`
	}
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
  namespace: default
spec:
  terminationGracePeriodSeconds: 0
  automountServiceAccountToken: false
  containers:
  - name: app
    image: %s
    imagePullPolicy: Never
    command: ["sleep", "3600"]
    securityContext:%s%s%s
`, name, harness.BusyboxImageRef, sc, mounts, volumes)
}

// expectRefused waits until `kubectl describe pod` shows an event with all of want on one
// line, and checks that the pod's container never ran.
func expectRefused(t *testing.T, k *harness.Kube, name string, want ...string) {
	t.Helper()
	expectRefusedIn(t, k, "default", name, "app", want...)
}

// expectRefusedIn is expectRefused for pod ns/name whose container is ctr.
func expectRefusedIn(t *testing.T, k *harness.Kube, ns, name, ctr string, want ...string) {
	t.Helper()
	ctx := context.Background()
	var line string
	eventually(t, 2*time.Minute, "the refusal in kubectl describe pod "+name, func() error {
		st, err := getPod(ctx, k, ns, name)
		if err != nil {
			return err
		}
		if st.Running[ctr] {
			t.Fatalf("pod %s is running; it must not", name)
		}
		out := kubectl(t, k, "-n", ns, "describe", "pod", name)
		for _, l := range strings.Split(out, "\n") {
			if containsAll(l, want) {
				line = strings.TrimSpace(l)
				return nil
			}
		}
		return fmt.Errorf("no event line with %q in:\n%s", want, lastLines(out, 12))
	})
	t.Logf("%s: %s", name, line)
	// And it stays so: the kubelet keeps retrying.
	for range 10 {
		time.Sleep(time.Second)
		if st, err := getPod(ctx, k, ns, name); err == nil && st.Running[ctr] {
			t.Fatalf("pod %s started after its refusal", name)
		}
	}
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// diagnose logs what a failed run needs: the pods, the DaemonSet, patchgate's log and the
// kubelet's.
func diagnose(t *testing.T, k *harness.Kube) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, args := range [][]string{
		{"get", "pods", "-A", "-o", "wide"},
		{"-n", ns, "describe", "ds", release},
		{"-n", ns, "describe", "pod", "-l", "app.kubernetes.io/name=patchgate"},
		{"-n", ns, "logs", "-l", "app.kubernetes.io/name=patchgate", "-c", "patchgate", "--tail=40"},
		{"get", "events", "-A", "--sort-by=.lastTimestamp"},
	} {
		r := k.Kubectl(ctx, args...)
		t.Logf("kubectl %s:\n%s%s", strings.Join(args, " "), lastLines(r.Stdout, 60), r.Stderr)
	}
	if p := k.Process("kubelet"); p != nil {
		t.Logf("kubelet log (last lines):\n%s", lastLines(p.Log(), 40))
	}
}

type harnessLog struct{ t *testing.T }

func (w harnessLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
