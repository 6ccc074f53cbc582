//go:build e2e

package e2e

import (
	"testing"
	"time"

	"github.com/patchgate/patchgate/test/harness"
)

// TestNRIHostDevices: a CRI device is what kubelet sends for a device
// plugin or a pod that names a host path; containerd resolves the host path
// to its type and numbers and adds the node and a cgroup rule. The validator
// judges that by number, whatever path the container gives it: the host's
// /dev/kmsg as /dev/null2 is refused, /dev/zero as /dev/zero2 runs, and
// /dev/fuse runs once a drop-in allows "c 10:229".
func TestNRIHostDevices(t *testing.T) {
	p := newPG(t, pgOptions{policy: map[string]string{"policy.yaml": "examples/policies/baseline.yaml"}})
	ctx := opCtx(t)

	withDevice := func(name, host, ctr string) harness.ContainerConfig {
		c := harness.ContainerConfig{Name: name, Command: []string{"sleep", "3600"}, RunAsUser: int64p(1000),
			Devices: []harness.Device{{HostPath: host, ContainerPath: ctr, Permissions: "rw"}}}
		return kubelet(c, false)
	}
	running := func(t *testing.T, id string) {
		t.Helper()
		st, r := p.h.Inspect(ctx, id)
		if err := r.Err(); err != nil {
			t.Fatal(err)
		}
		if st.Status.State != "CONTAINER_RUNNING" {
			t.Errorf("state %s, want CONTAINER_RUNNING", st.Status.State)
		}
	}

	t.Run("kmsg-named-null2-refused", func(t *testing.T) {
		pod := podOn("kmsg", "e2e")
		podID := p.mustRunPod(ctx, pod)
		id, r := p.h.CreateContainer(ctx, podID, pod, withDevice("kmsg", "/dev/kmsg", "/dev/null2"))
		if r.ExitCode == 0 {
			p.logSpec(ctx, id)
		}
		expectRefused(t, r, `validator "50-patchgate" rejected container adjustment, reason: patchgate: denied [hostDevices]`,
			`container "kmsg" must not have host device "/dev/null2" c 1:11 (linux.devices) or a device cgroup that allows c 1:11 rw (linux.resources.devices)`)
	})

	t.Run("zero-named-zero2-runs", func(t *testing.T) {
		pod := podOn("zero", "e2e")
		podID := p.mustRunPod(ctx, pod)
		id, r := p.h.RunContainer(ctx, podID, pod, withDevice("zero", "/dev/zero", "/dev/zero2"))
		if err := r.Err(); err != nil {
			t.Fatalf("/dev/zero as /dev/zero2 refused: %v", err)
		}
		running(t, id)
	})

	t.Run("fuse-refused-then-allowed-by-number", func(t *testing.T) {
		pod := podOn("fuse", "e2e")
		podID := p.mustRunPod(ctx, pod)
		_, r := p.h.CreateContainer(ctx, podID, pod, withDevice("fuse", "/dev/fuse", "/dev/fuse"))
		expectRefused(t, r, "patchgate: denied [hostDevices]", `"/dev/fuse" c 10:229`)

		p.writePolicy("policy.d/50-fuse.yaml", `apiVersion: patchgate.dev/v1alpha1
kind: NodePolicy
metadata: {name: baseline-fuse}
spec:
  rules:
    hostDevices: {allowed: ["c 10:229"]}
`)
		// The watcher reloads the policy; until then the create is refused
		// as before.
		deadline := time.Now().Add(15 * time.Second)
		var id string
		for {
			id, r = p.h.CreateContainer(ctx, podID, pod, withDevice("fuse", "/dev/fuse", "/dev/fuse"))
			if r.ExitCode == 0 {
				break
			}
			expectRefused(t, r, "patchgate: denied [hostDevices]", `"/dev/fuse" c 10:229`)
			if time.Now().After(deadline) {
				t.Fatal(`/dev/fuse still refused with "c 10:229" allowed`)
			}
			time.Sleep(200 * time.Millisecond)
		}
		if r := p.h.StartContainer(ctx, id); r.Err() != nil {
			t.Fatalf("start: %v", r.Err())
		}
		running(t, id)
	})
}
