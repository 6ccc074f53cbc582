//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/internal/specinput"
	"github.com/patchgate/patchgate/policy"
	"github.com/patchgate/patchgate/test/harness"
)

// inspectFixture is one pod and container whose `crictl inspect` and
// `crictl inspectp` output the example policy tests judge
// (examples/tests/specs).
type inspectFixture struct {
	file string // <file>.inspect.json, <file>.inspectp.json
	pod  harness.PodConfig
	ctr  harness.ContainerConfig
}

func inspectFixtures() []inspectFixture {
	uid := int64p(1000)
	restricted := func(c harness.ContainerConfig) harness.ContainerConfig {
		// What a Pod Security "restricted" pod asks kubelet for.
		c = kubelet(c, false)
		sc := c.Raw["linux"].(map[string]any)["security_context"].(map[string]any)
		sc["no_new_privs"] = true
		sc["capabilities"] = map[string]any{"drop_capabilities": []string{"ALL"}}
		return c
	}
	web := harness.PodConfig{Name: "web", Namespace: "shop", Labels: map[string]string{"app": "web"},
		Annotations: map[string]string{"example.com/owner": "team-a"}}
	priv := harness.PodConfig{Name: "priv", Namespace: "shop", Privileged: true}
	hostpid := harness.PodConfig{Name: "top", Namespace: "shop", HostPID: true}
	agent := harness.PodConfig{Name: "agent", Namespace: "kube-system", Privileged: true, HostPID: true, HostNetwork: true}
	exporter := harness.PodConfig{Name: "exporter", Namespace: "monitoring", HostPID: true,
		Annotations: map[string]string{"patchgate.dev/exempt": "true"}}
	privileged := harness.ContainerConfig{Name: "priv", Command: harness.SleepCommand, Privileged: true}
	privileged = kubelet(privileged, false)
	agentCtr := harness.ContainerConfig{Name: "agent", Image: harness.PauseImageRef, Privileged: true}
	agentCtr = kubelet(agentCtr, false)
	hostEtc := worker("reader", uid, false)
	hostEtc.Mounts = []harness.Mount{{HostPath: "/etc", ContainerPath: "/host-etc", Readonly: true}}
	return []inspectFixture{
		{"restricted", web, restricted(harness.ContainerConfig{Name: "app", Command: harness.SleepCommand, RunAsUser: uid})},
		{"nonroot", web, worker("nonroot", uid, false)},
		{"root", web, worker("root", nil, false)},
		{"unconfined", web, worker("unconfined", uid, true)},
		{"host-etc", web, hostEtc},
		{"privileged", priv, privileged},
		{"hostpid", hostpid, worker("top", uid, false)},
		{"node-agent", agent, agentCtr},
		{"exporter", exporter, worker("exporter", nil, false)},
	}
}

// TestCrictlInspectInput runs the fixture pods on the real containerd, reads
// `crictl inspect` and `crictl inspectp` of each, and checks that
// specinput reads them as containerd's NRI plugin sees that container: the
// pod's namespace, name, UID, labels and annotations from the pod's CRI
// config. With UPDATE_GOLDEN=1 it writes the outputs to
// examples/tests/specs/, with the drop-in naming this containerd's private
// sandboxes directories (hostPathMounts.runtimeDirs).
func TestCrictlInspectInput(t *testing.T) {
	h := harness.StartT(t, harness.Options{Tools: requireTools(t)})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	root, err := harness.FindRepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	update := os.Getenv("UPDATE_GOLDEN") != ""
	out := filepath.Join(root, "examples", "tests", "specs")
	pods := map[string]string{}
	for _, f := range inspectFixtures() {
		key := f.pod.Namespace + "/" + f.pod.Name
		podID, ok := pods[key]
		if !ok {
			var r harness.Result
			podID, r = h.RunPod(ctx, f.pod)
			if err := r.Err(); err != nil {
				t.Fatalf("%s: runp: %v", f.file, err)
			}
			pods[key] = podID
		}
		id, r := h.RunContainer(ctx, podID, f.pod, f.ctr)
		if err := r.Err(); err != nil {
			t.Fatalf("%s: %v", f.file, err)
		}
		ctrOut := h.Crictl(ctx, "inspect", "-o", "json", id)
		if err := ctrOut.Err(); err != nil {
			t.Fatal(err)
		}
		podOut := h.Crictl(ctx, "inspectp", "-o", "json", podID)
		if err := podOut.Err(); err != nil {
			t.Fatal(err)
		}
		ci, err := specinput.Load(strings.NewReader(ctrOut.Stdout))
		if err != nil {
			t.Fatalf("%s: crictl inspect: %v\n%s", f.file, err, ctrOut.Stdout)
		}
		pi, err := specinput.Load(strings.NewReader(podOut.Stdout))
		if err != nil {
			t.Fatalf("%s: crictl inspectp: %v\n%s", f.file, err, podOut.Stdout)
		}
		if ci.Kind != specinput.KindContainer || ci.ID != id || ci.SandboxID != podID || ci.Name != f.ctr.Name || ci.Pid <= 0 {
			t.Errorf("%s: container input %+v", f.file, ci)
		}
		if pi.Kind != specinput.KindPod || pi.ID != podID || pi.Namespace != f.pod.Namespace || pi.Name != f.pod.Name {
			t.Errorf("%s: pod input %+v", f.file, pi)
		}
		w, _, err := specinput.Workload(ci, pi, "none", policy.FromSpecOptions{Source: "eval"})
		if err != nil {
			t.Fatalf("%s: %v", f.file, err)
		}
		if w.Pod.Namespace != f.pod.Namespace || w.Pod.Name != f.pod.Name || w.Container.Name != f.ctr.Name || w.Container.ID != id {
			t.Errorf("%s: identity %+v %+v", f.file, w.Pod, w.Container)
		}
		for k, v := range f.pod.Annotations {
			if w.Pod.Annotations[k] != v {
				t.Errorf("%s: pod annotation %s = %q, want %q", f.file, k, w.Pod.Annotations[k], v)
			}
		}
		for k, v := range f.pod.Labels {
			if w.Pod.Labels[k] != v {
				t.Errorf("%s: pod label %s = %q, want %q", f.file, k, w.Pod.Labels[k], v)
			}
		}
		if update {
			for name, data := range map[string]string{f.file + ".inspect.json": ctrOut.Stdout, f.file + ".inspectp.json": podOut.Stdout} {
				if err := os.WriteFile(filepath.Join(out, name), []byte(data), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if update {
		var b bytes.Buffer
		b.WriteString("# The containerd that recorded the crictl inspect fixtures in this directory ran with a\n")
		b.WriteString("# private root and state (test/harness): its /etc/hosts, /etc/resolv.conf and /dev/shm\n")
		b.WriteString("# bind mounts come from there. A node with such a containerd lists them the same way.\n")
		b.WriteString("# Written by TestCrictlInspectInput (UPDATE_GOLDEN=1 make e2e E2E_RUN=TestCrictlInspectInput).\n")
		b.WriteString("apiVersion: patchgate.dev/v1alpha1\nkind: NodePolicy\nspec:\n  rules:\n    hostPathMounts:\n      runtimeDirs:\n")
		b.WriteString("        - " + filepath.Join(h.Root, "io.containerd.grpc.v1.cri", "sandboxes") + "\n")
		b.WriteString("        - " + filepath.Join(h.State, "io.containerd.grpc.v1.cri", "sandboxes") + "\n")
		if err := os.WriteFile(filepath.Join(out, "runtime-dirs.yaml"), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range pods {
		if r := h.RemovePod(ctx, id); r.Err() != nil {
			t.Errorf("rmp: %v", r.Err())
		}
	}
}
