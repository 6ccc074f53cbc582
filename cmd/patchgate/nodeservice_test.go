package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"

	"github.com/patchgate/patchgate/livepatch"
	"github.com/patchgate/patchgate/policy"
	"github.com/patchgate/patchgate/service"
)

// siteTool is a provider update command for the remediation tests: run by
// argv (no shell between patchgate and it), it records its argv in
// run/ran-<name> under the host root and changes nothing, so the kernel
// stays behind and the run ends "failed".
const siteTool = `#!/bin/sh
root="$(cd "$(dirname "$0")/../../.." && pwd)"
mkdir -p "$root/run" && echo "$0 $*" >"$root/run/ran-$(basename "$0")"
`

// remediationPolicy is a kpatch node whose required patch is not loaded
// (the rhel8-kpatch tree is behind), with spec.remediation as given.
func remediationPolicy(name, remediation string) string {
	return "apiVersion: patchgate.dev/v1alpha1\nkind: NodePolicy\nmetadata: {name: " + name + "}\nspec:\n" +
		"  kernel:\n    provider: kpatch\n    requiredPatches: [kpatch_4_18_0_513_9_1_2_1]\n" +
		"  remediation: " + remediation + "\n"
}

// replaceFile writes path whole (rename), as an operator's tooling does, so
// the watcher never reads half a policy.
func replaceFile(t *testing.T, path, body string) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// nodeTestSettings are node settings with every socket and file in a
// temporary directory, for host root root and the policy at pol, as each
// daemon builds them from its flags.
func nodeTestSettings(t *testing.T, daemon, root, pol string) nodeSettings {
	dir := t.TempDir()
	switch daemon {
	case "serve":
		f := &serveFlags{
			policyPath: pol, nodeName: "node-a", hostRoot: root,
			socket: filepath.Join(dir, "d.sock"), auditSocket: filepath.Join(dir, "a.sock"),
			auditLog: filepath.Join(dir, "audit.log"), statusFile: filepath.Join(dir, "status.json"),
			stateFile: filepath.Join(dir, "state.json"), interval: time.Hour, poll: 10 * time.Millisecond,
		}
		return f.nodeSettings()
	case "nri":
		s := defaultNRISettings()
		s.Policy, s.NodeName, s.HostRoot = pol, "node-a", root
		s.decisionSocket, s.auditSocket = filepath.Join(dir, "d.sock"), filepath.Join(dir, "a.sock")
		s.auditLog, s.statusFile, s.stateFile = filepath.Join(dir, "audit.log"), filepath.Join(dir, "status.json"), filepath.Join(dir, "state.json")
		s.kernelInterval, s.pollInterval = time.Hour, 10*time.Millisecond
		return s
	}
	t.Fatalf("unknown daemon %q", daemon)
	return nodeSettings{}
}

// waitPolicy waits until the service has loaded the policy named name.
func waitPolicy(t *testing.T, svc *service.Service, name string) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); svc.Policy().Name() != name; {
		if time.Now().After(deadline) {
			t.Fatalf("policy %q never loaded; in force: %q", name, svc.Policy().Name())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Both daemons build the node service with one constructor, and its
// remediation follows the policy in force: disabled at start and enabled
// by a reload, it starts; a reload that changes spec.remediation.command
// runs the new command, not the one of the policy the daemon started with.
func TestNodeServiceRemediationFollowsReload(t *testing.T) {
	for _, daemon := range []string{"serve", "nri"} {
		t.Run(daemon, func(t *testing.T) {
			root := copyHost(t, "rhel8-kpatch")
			for _, tool := range []string{"site-a", "site-b"} {
				p := filepath.Join(root, "usr", "local", "sbin", tool)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(siteTool), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			pol := filepath.Join(t.TempDir(), "policy.yaml")
			replaceFile(t, pol, remediationPolicy("off", "{enabled: false}"))
			logger, _ := test.NewNullLogger()
			logger.SetLevel(logrus.DebugLevel)
			n := &nodeRunner{log: logger}
			svc, err := n.start(context.Background(), nodeTestSettings(t, daemon, root, pol))
			if err != nil {
				t.Fatal(err)
			}
			defer n.close()
			w := &policy.Workload{Source: "nri", Pod: policy.PodIdentity{Namespace: "default", Name: "p"}, Container: policy.ContainerIdentity{Name: "c"}}
			admit := func() service.Result {
				t.Helper()
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				return svc.Admit(ctx, w, service.AdmitOptions{})
			}
			ran := func(tool string) string {
				b, err := os.ReadFile(filepath.Join(root, "run", "ran-"+tool))
				if err != nil {
					return ""
				}
				return strings.TrimSpace(string(b))
			}

			if res := admit(); !res.Decision.KernelBehind || res.Remediation != nil {
				t.Fatalf("remediation disabled: behind %v, remediation %+v", res.Decision.KernelBehind, res.Remediation)
			}
			replaceFile(t, pol, remediationPolicy("on-a", "{enabled: true, command: [/usr/local/sbin/site-a, --now], timeout: 1m, admitWait: 20s}"))
			waitPolicy(t, svc, "on-a")
			res := admit()
			if res.Remediation == nil || res.Remediation.Outcome != "failed" || !strings.Contains(res.Remediation.Reason, "still behind") {
				t.Fatalf("remediation enabled by a reload: %+v", res.Remediation)
			}
			if got := ran("site-a"); got != "/usr/local/sbin/site-a --now" && !strings.HasSuffix(got, "/usr/local/sbin/site-a --now") {
				t.Fatalf("site-a ran as %q", got)
			}
			replaceFile(t, pol, remediationPolicy("on-b", "{enabled: true, command: [/usr/local/sbin/site-b], timeout: 1m, admitWait: 20s}"))
			waitPolicy(t, svc, "on-b")
			res = admit()
			if res.Remediation == nil || res.Remediation.Outcome != "failed" || !strings.Contains(res.Remediation.Reason, "still behind") {
				t.Fatalf("remediation after the command changed: %+v", res.Remediation)
			}
			if ran("site-b") == "" {
				t.Fatal("the reloaded spec.remediation.command did not run")
			}
			// The same command again: the failed run's rate limit holds.
			if res := admit(); res.Remediation == nil || !strings.Contains(res.Remediation.Reason, "rate limited") {
				t.Errorf("a second admission did not meet the rate limit: %+v", res.Remediation)
			}
			// Two runs ran (site-a, site-b), for three admissions that
			// asked: each counted once, in its own metric.
			const counts = `
# HELP patchgate_remediation_runs_total Finished live-patch remediation runs, by outcome (patched, failed); one run however many containers waited for it.
# TYPE patchgate_remediation_runs_total counter
patchgate_remediation_runs_total{outcome="failed"} 2
# HELP patchgate_remediation_waits_total Container admissions that found the kernel behind and asked for a remediation, by what they got (patched, running, failed, notNeeded).
# TYPE patchgate_remediation_waits_total counter
patchgate_remediation_waits_total{outcome="failed"} 3
`
			if err := testutil.GatherAndCompare(n.metrics().Registry(), strings.NewReader(counts),
				"patchgate_remediation_runs_total", "patchgate_remediation_waits_total"); err != nil {
				t.Error(err)
			}
		})
	}
}

// A reload that changes the command while an update runs does not start a
// second update beside it: callers join the run in flight, and the new
// command runs once that run has ended.
func TestNodeServiceReloadDuringRun(t *testing.T) {
	root := copyHost(t, "rhel8-kpatch")
	installFixtureTool(t, root, "site-update", "usr/local/sbin/site-update")
	p := filepath.Join(root, "usr", "local", "sbin", "site-b")
	if err := os.WriteFile(p, []byte(siteTool), 0o755); err != nil {
		t.Fatal(err)
	}
	// However the test ends, the fixture update finishes (and ends its
	// helper) before the host tree is removed.
	var pr *policyRemediator
	t.Cleanup(func() {
		fixtureGo(t, root)
		if pr == nil {
			return
		}
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			pr.mu.Lock()
			running := pr.rem != nil && pr.rem.Running()
			pr.mu.Unlock()
			if !running {
				return
			}
		}
		t.Error("the fixture update did not finish")
	})
	pol := filepath.Join(t.TempDir(), "policy.yaml")
	replaceFile(t, pol, remediationPolicy("slow", "{enabled: true, command: [/usr/local/sbin/site-update], timeout: 1m, admitWait: 20s}"))
	logger, _ := test.NewNullLogger()
	n := &nodeRunner{log: logger}
	svc, err := n.start(context.Background(), nodeTestSettings(t, "nri", root, pol))
	if err != nil {
		t.Fatal(err)
	}
	defer n.close()
	w := &policy.Workload{Source: "nri", Pod: policy.PodIdentity{Namespace: "default", Name: "p"}, Container: policy.ContainerIdentity{Name: "c"}}
	// admit gives the service at most d to answer: the wait for the
	// remediation ends with the caller's deadline.
	admit := func(d time.Duration) *service.Result {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		res := svc.Admit(ctx, w, service.AdmitOptions{})
		return &res
	}
	ranB := func() bool {
		_, err := os.Stat(filepath.Join(root, "run", "ran-site-b"))
		return err == nil
	}
	if res := admit(50 * time.Millisecond); res.Remediation == nil || res.Remediation.Outcome != "running" {
		t.Fatalf("the slow update: %+v", res.Remediation)
	}
	// The remediator that runs the slow update (the new command's, were
	// it started beside it, would be another one).
	pr, _ = svc.Remediator().(*policyRemediator)
	if pr == nil {
		t.Fatalf("the service's remediator is a %T", svc.Remediator())
	}
	inUse := func() *livepatch.Remediator {
		pr.mu.Lock()
		defer pr.mu.Unlock()
		return pr.rem
	}
	slow := inUse()
	replaceFile(t, pol, remediationPolicy("on-b", "{enabled: true, command: [/usr/local/sbin/site-b], timeout: 1m, admitWait: 20s}"))
	waitPolicy(t, svc, "on-b")
	if res := admit(50 * time.Millisecond); res.Remediation == nil || res.Remediation.Outcome != "running" {
		t.Fatalf("during the run, after the reload: %+v", res.Remediation)
	}
	if ranB() || inUse() != slow {
		t.Fatal("the reloaded command started while the first update was still running")
	}
	fixtureGo(t, root)
	// The first admission after the go may still join the slow run (it
	// then ends "failed": livepatch_fix is not the required patch); the
	// next one runs the new command.
	for i := 0; i < 2 && !ranB(); i++ {
		if res := admit(30 * time.Second); res.Remediation == nil || res.Remediation.Outcome != "failed" {
			t.Fatalf("after the slow run: %+v", res.Remediation)
		}
	}
	if !ranB() {
		t.Fatal("the reloaded command never ran after the first update ended")
	}
}
