//go:build e2e

package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/test/harness"
)

// Restarting and upgrading patchgate (docs/operations.md).
//
// NRI before v0.12.5 (containerd 2.2 with v0.11.0, stock 2.4.2 with v0.12.3)
// keeps a closed validator in its list until its next request or the next
// plugin registration (pkg/adaptation/adaptation.go: removeClosedPlugins is
// deferred in every request; sortPlugins runs it at registration). A
// CreateContainer that comes first still calls the closed validator and
// fails: "validator plugin 50-patchgate failed: ttrpc: closed".

const staleValidator = "validator plugin 50-patchgate failed"

// requiredPatchgate is the node configuration the restart tests run on: the
// default validator requires patchgate, and a pod may tolerate its absence.
var requiredPatchgate = harness.NRIConfig{Validator: harness.ValidatorConfig{
	Enable: true, RequiredPlugins: []string{"patchgate"},
	TolerateMissingPluginsAnnotation: harness.TolerateMissingPluginsKey,
}}

// forValidatorReleases runs one test per containerd release with the
// validation event (2.2 and 2.4, or $PATCHGATE_E2E_CONTAINERD), each on its
// own containerd.
func forValidatorReleases(t *testing.T, run func(*testing.T, *harness.Tools)) {
	t.Helper()
	versions, err := harness.MatrixVersions()
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range versions {
		if !harness.HasValidation(v) {
			continue
		}
		t.Run(v, func(t *testing.T) {
			if toolsErr != nil {
				harness.SkipOrFail(t, toolsErr)
			}
			tl := tools
			if v != tools.ContainerdVersion {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
				defer cancel()
				var err error
				if tl, err = harness.EnsureTools(ctx, harness.ToolsOptions{Containerd: v, Variant: harness.NRIStock, Log: testLog{t}}); err != nil {
					harness.SkipOrFail(t, err)
				}
			}
			run(t, tl)
		})
	}
}

func tolerating(name, ns string) harness.PodConfig {
	pod := podOn(name, ns)
	pod.Annotations = map[string]string{harness.TolerateMissingPluginsKey: "true"}
	return pod
}

// TestNRICleanStop: patchgate run by systemd (a host process) gets SIGTERM.
// It lets the requests in flight finish, closes its connection and makes the
// runtime drop it, so that the next create, with no other NRI request in
// between, is decided by the default validator alone: a pod that tolerates
// patchgate's absence starts, any other pod is refused. Without the sweep,
// containerd 2.2 and stock 2.4.2 fail that first create with "ttrpc: closed".
func TestNRICleanStop(t *testing.T) {
	forValidatorReleases(t, testCleanStop)
}

func testCleanStop(t *testing.T, tl *harness.Tools) {
	p := newPG(t, pgOptions{
		tools:  tl,
		policy: map[string]string{"policy.yaml": "examples/policies/baseline.yaml"},
		nri:    requiredPatchgate,
	})
	ctx := opCtx(t)
	// Both pods first: RunPodSandbox is an NRI request too, and would make
	// the runtime prune the closed plugin by itself.
	app := podOn("app", "e2e")
	appID := p.mustRunPod(ctx, app)
	tol := tolerating("tolerant", "e2e")
	tolID := p.mustRunPod(ctx, tol)

	began := time.Now()
	p.stop()
	stopped := time.Since(began)
	log := p.proc.Log()
	for _, want := range []string{
		"stopping: finishing the requests in flight",
		"registered and closed a short-lived plugin",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("patchgate's log lacks %q:\n%s", want, tail(log, 20))
		}
	}

	began = time.Now()
	_, r := p.h.CreateContainer(ctx, tolID, tol, worker("first-after-stop", int64p(1000), false))
	if r.ExitCode != 0 {
		t.Fatalf("first create after a clean stop (pod tolerates patchgate's absence) failed:\n%s", r.ErrorMessage())
	}
	t.Logf("SIGTERM to exit: %s; first create after the stop (tolerating pod): admitted in %s", stopped.Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
	_, r = p.h.CreateContainer(ctx, appID, app, worker("while-down", int64p(1000), false))
	expectRefused(t, r, `required plugin "patchgate" not present`)
	if strings.Contains(p.h.Log(), staleValidator) {
		t.Errorf("containerd called the closed patchgate:\n%s", p.h.LogTail(30))
	}

	p.start()
	if _, r := p.h.CreateContainer(ctx, appID, app, worker("after", int64p(1000), false)); r.Err() != nil {
		t.Fatalf("create after patchgate came back: %v", r.Err())
	}
}

// TestNRICrashFirstCreate: a patchgate that is killed (SIGKILL, OOM) cannot
// clean up. On containerd 2.2 (NRI v0.11.0) and stock 2.4.2 (NRI v0.12.3)
// the first create after it fails
// with "ttrpc: closed", even in a pod that tolerates patchgate's absence;
// the create after it is decided by the default validator alone. NRI
// v0.12.5 skips closed plugins (adaptation.go, CreateContainer and
// validateContainerAdjustment): there the first create is already decided
// by the default validator. The failure is fail-closed: kubelet retries.
func TestNRICrashFirstCreate(t *testing.T) {
	forValidatorReleases(t, testCrashFirstCreate)
}

func testCrashFirstCreate(t *testing.T, tl *harness.Tools) {
	p := newPG(t, pgOptions{
		tools:  tl,
		policy: map[string]string{"policy.yaml": "examples/policies/baseline.yaml"},
		nri:    requiredPatchgate,
	})
	ctx := opCtx(t)
	tol := tolerating("tolerant", "e2e")
	tolID := p.mustRunPod(ctx, tol)

	p.proc.Kill()
	_, r := p.h.CreateContainer(ctx, tolID, tol, worker("first-after-kill", int64p(1000), false))
	if tl.Variant == harness.NRIv0_12_5 {
		if r.ExitCode != 0 {
			t.Fatalf("NRI v0.12.5: first create after a kill (tolerating pod) failed:\n%s", r.ErrorMessage())
		}
	} else {
		expectRefused(t, r, staleValidator+": ttrpc: closed")
	}
	if _, r := p.h.CreateContainer(ctx, tolID, tol, worker("second-after-kill", int64p(1000), false)); r.ExitCode != 0 {
		t.Fatalf("second create after a kill (tolerating pod) failed:\n%s", r.ErrorMessage())
	}
}

// TestNRIDaemonSetRollingUpdate: patchgate runs as a container of this
// containerd, as the DaemonSet runs it, and is replaced the way a rolling
// update with maxSurge 0 replaces it: kubelet stops the old container
// (SIGTERM) and its pod, then the new pod's sandbox and container are
// created. The old container's exit is an NRI request of its own
// (StopContainer, from containerd's exit handling and from the CRI stop), so
// the runtime has dropped the closed patchgate before the new pod's first
// create: that create goes through on the toleration annotation. The test
// measures how long nothing but tolerating pods can start.
func TestNRIDaemonSetRollingUpdate(t *testing.T) {
	p := newPG(t, pgOptions{
		policy:  map[string]string{"policy.yaml": "examples/policies/baseline.yaml"},
		nri:     requiredPatchgate,
		noStart: true,
	})
	ctx := opCtx(t)
	// The container image has no C library: build patchgate without cgo.
	static := filepath.Join(filepath.Dir(p.bin), "patchgate-static")
	build := exec.Command("go", "build", "-o", static, "./cmd/patchgate")
	build.Dir = p.root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build (CGO_ENABLED=0) ./cmd/patchgate: %v\n%s", err, out)
	}
	// Every path the container sees is the host's own path, so that the
	// arguments are those of a host process and the injected hook (run by
	// runc on the host) finds the same files.
	agent := harness.ContainerConfig{
		Name:    "patchgate",
		Command: append([]string{static}, p.args[1:]...),
		Mounts: []harness.Mount{
			{HostPath: filepath.Dir(p.bin), ContainerPath: filepath.Dir(p.bin), Readonly: true},
			{HostPath: p.dir, ContainerPath: p.dir},
			{HostPath: filepath.Dir(p.h.NRISocket), ContainerPath: filepath.Dir(p.h.NRISocket)},
		},
	}
	runAgent := func(pod harness.PodConfig) (podID, id string, firstCreate harness.Result) {
		t.Helper()
		podID = p.mustRunPod(ctx, pod)
		id, firstCreate = p.h.CreateContainer(ctx, podID, pod, agent)
		if firstCreate.ExitCode != 0 {
			return podID, "", firstCreate
		}
		if r := p.h.StartContainer(ctx, id); r.Err() != nil {
			t.Fatalf("start patchgate in %s: %v", pod.Name, r.Err())
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			r := p.h.Logs(ctx, id)
			if strings.Contains(r.Stdout+r.Stderr, "synchronized with the runtime") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("patchgate in %s did not connect:\n%s", pod.Name, tail(r.Stdout+r.Stderr, 30))
			}
			time.Sleep(50 * time.Millisecond)
		}
		return podID, id, firstCreate
	}

	app := podOn("app", "e2e")
	appID := p.mustRunPod(ctx, app)
	oldPod := tolerating("patchgate-old", "patchgate-system")
	oldPod.HostNetwork = true
	oldPodID, oldID, r := runAgent(oldPod)
	if r.ExitCode != 0 {
		t.Fatalf("create the first patchgate pod: %s", r.ErrorMessage())
	}
	// A privileged container is refused in CreateContainer: the gate is up.
	priv := worker("priv", nil, true)
	priv.Privileged = true
	priv = kubelet(priv, true)
	privPod := podOn("priv", "e2e")
	privPod.Privileged = true
	privPodID := p.mustRunPod(ctx, privPod)
	_, r = p.h.CreateContainer(ctx, privPodID, privPod, priv)
	expectRefused(t, r, "patchgate: denied")

	// The rolling update: kubelet stops the old pod (grace period 30 s),
	// the DaemonSet controller then creates the new one.
	began := time.Now()
	if r := p.h.Crictl(ctx, "stop", "--timeout", "30", oldID); r.Err() != nil {
		t.Fatalf("stop the old patchgate: %v", r.Err())
	}
	stopped := time.Since(began)
	oldLog := p.h.Logs(ctx, oldID)
	if !strings.Contains(oldLog.Stdout+oldLog.Stderr, "stopping: finishing the requests in flight") {
		t.Errorf("the old patchgate did not stop cleanly:\n%s", tail(oldLog.Stdout+oldLog.Stderr, 20))
	}
	for _, l := range strings.Split(oldLog.Stdout+oldLog.Stderr, "\n") {
		if strings.Contains(l, "stopping:") {
			t.Logf("old patchgate: %s", l)
		}
	}
	if r := p.h.StopPod(ctx, oldPodID); r.Err() != nil {
		t.Fatal(r.Err())
	}
	newPod := tolerating("patchgate-new", "patchgate-system")
	newPod.HostNetwork = true
	createAt := time.Now()
	_, _, first := runAgent(newPod)
	if first.ExitCode != 0 {
		t.Fatalf("the new patchgate pod's first create failed (kubelet would retry it 10-15 s later):\n%s", first.ErrorMessage())
	}
	window := time.Since(began)
	t.Logf("rolling update: old patchgate stopped in %s; new pod's first create admitted (%s after the stop began); new patchgate synchronized %s after the stop began",
		stopped.Round(time.Millisecond), createAt.Sub(began).Round(time.Millisecond), window.Round(time.Millisecond))
	if strings.Contains(p.h.Log(), staleValidator) {
		t.Errorf("containerd called the closed patchgate:\n%s", p.h.LogTail(30))
	}

	// The new patchgate enforces.
	_, r = p.h.CreateContainer(ctx, privPodID, privPod, priv)
	expectRefused(t, r, "patchgate: denied")
	if _, r := p.h.CreateContainer(ctx, appID, app, worker("after-update", int64p(1000), false)); r.Err() != nil {
		t.Fatalf("compliant create after the update: %v", r.Err())
	}
}
