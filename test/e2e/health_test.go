//go:build e2e

package e2e

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/test/harness"
)

// TestNRIProbes: the liveness and readiness probes of `patchgate nri` on a
// real containerd (service/health.go, docs/operations.md "Probes"):
//   - ready once connected to the runtime;
//   - not ready while containerd is stopped, and still live (a containerd
//     restart must not make kubelet restart patchgate);
//   - ready again once patchgate has reconnected after the restart;
//   - a policy that no longer loads keeps the last good one in force and
//     the node ready;
//   - a kernel state older than the policy's maxStateAge is not ready.
//
// The kernel is read once an hour here, so the state only ages; the policy
// that makes it stale is a real reload (maxStateAge: 2s).
func TestNRIProbes(t *testing.T) {
	p := newPG(t, pgOptions{
		policy:  map[string]string{"policy.yaml": "examples/policies/baseline.yaml"},
		metrics: true,
		nri:     requiredPatchgate,
		noStart: true,
	})
	for i, a := range p.args {
		if strings.HasPrefix(a, "--kernel-interval=") {
			p.args[i] = "--kernel-interval=1h"
		}
	}
	p.start()
	ctx := opCtx(t)
	base := "http://" + p.metricsAt

	p.waitProbe(base+"/readyz?verbose", 200, "[+]runtime ok: connected as 50-patchgate, mode validator\n")
	p.waitProbe(base+"/readyz?verbose", 200, "[+]decision-socket ok\n", "[+]policy ok: baseline (sha256:", "[+]kernel-state ok: read ")
	p.waitProbe(base+"/healthz?verbose", 200, "[+]service ok\n", "[+]policy-watcher ok\n", "[+]kernel-monitor ok\n")
	// /metrics is still there, on the same listener.
	p.waitProbe(base+"/metrics", 200, "patchgate_runtime_connected{mode=\"validator\"} 1")

	// containerd stopped: not ready, still live. Restart's change runs
	// while containerd is down.
	began := time.Now()
	var notReadyAfter time.Duration
	if err := p.h.Restart(ctx, func(*harness.Config) {
		// "disconnected", then "connecting" while it redials: either.
		p.waitProbe(base+"/readyz", 503, "[-]runtime failed: runtime connection is ", ", not connected: NRI does not judge containers on this node\n")
		notReadyAfter = time.Since(began)
		p.waitProbe(base+"/healthz", 200, "ok\n")
	}); err != nil {
		t.Fatal(err)
	}
	p.waitSynced()
	p.waitProbe(base+"/readyz", 200, "ok\n")
	t.Logf("not ready %s after containerd's stop began; ready again %s after it", notReadyAfter.Round(time.Millisecond), time.Since(began).Round(time.Millisecond))

	// A broken policy: the last good one stays in force, the node ready.
	p.writePolicy("policy.yaml", "apiVersion: patchgate.dev/v1alpha1\nkind: NodePolicy\nmetadata: {name: broken}\nspec: {defaultAction: maybe}\n")
	p.waitProbe(base+"/readyz?verbose", 200, "[+]policy ok: baseline (sha256:", "fails, last good policy kept")

	// A good policy whose maxStateAge (2s) the state, read once at start,
	// soon exceeds: not ready, and live (the monitor's interval is an hour).
	// That the last good policy is enforced meanwhile is TestNRIPolicyHotReload's.
	pol, err := os.ReadFile(filepath.Join(p.root, "examples/policies/baseline.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// From apiVersion on: writePolicy takes text that starts there as the
	// policy itself (the file opens with comments).
	_, body, ok := strings.Cut(string(pol), "\napiVersion:")
	if !ok || !strings.Contains(body, "maxStateAge: 10m") {
		t.Fatal("baseline.yaml changed: no apiVersion or maxStateAge: 10m")
	}
	p.writePolicy("policy.yaml", "apiVersion:"+strings.Replace(body, "maxStateAge: 10m", "maxStateAge: 2s", 1))
	p.waitProbe(base+"/readyz?verbose", 503, "[-]kernel-state failed: the kernel state is ", "more than spec.kernel.maxStateAge 2s", "[+]runtime ok")
	p.waitProbe(base+"/readyz/kernel-state", 503)
	p.waitProbe(base+"/readyz/runtime", 200)
	p.waitProbe(base+"/healthz", 200, "ok\n")
}

// waitProbe polls url until it answers code with a body holding every
// want (30 s at most).
func (p *pg) waitProbe(url string, code int, want ...string) {
	p.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			last = resp.Status + "\n" + string(body)
			ok := resp.StatusCode == code
			for _, w := range want {
				ok = ok && strings.Contains(string(body), w)
			}
			if ok {
				cancel()
				return
			}
		} else {
			last = err.Error()
		}
		cancel()
		if time.Now().After(deadline) {
			p.t.Fatalf("GET %s: want %d with %q; last answer:\n%s", url, code, want, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
