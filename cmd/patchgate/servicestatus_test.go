package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/audit"
	"github.com/patchgate/patchgate/health"
	"github.com/patchgate/patchgate/service"
)

func TestServiceStatusInCheckOutput(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "status.json")
	now := time.Now()
	st := service.Status{
		PID: 4242, StartedAt: now.Add(-time.Hour), UpdatedAt: now,
		Policy: service.PolicyStatus{Name: "prod-workers", Digest: "sha256:abc", Error: "/etc/patchgate/policy.yaml:7: spec.rules.bogus: unknown key", ErrorAt: now,
			Copy: "/var/lib/patchgate/policy", CopyError: "the copy does not load back, the last copy is kept: ..."},
		Audit: &audit.Health{OK: false, Path: "/var/log/patchgate/audit.log", FailClosed: true, Failures: 3, LastError: "no space left on device"},
		Hook:  &service.HookInjection{Status: "refused", Reason: "reject_oci_hook_adjustment is set"},
	}
	if err := service.WriteStatusFile(path, st); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	writeServiceStatus(&out, readServiceStatus(path))
	for _, want := range []string{
		"node service       running (pid 4242",
		"policy in force    prod-workers (sha256:abc)",
		"policy reload      FAILING", "policy.yaml:7",
		"policy copy        FAILING: the copy does not load back, the last copy is kept: ...; hooks deciding alone read an older policy, or none",
		"audit log          FAILING: /var/log/patchgate/audit.log: no space left on device (3 write failures); failClosed: containers are blocked",
		"OCI hook injection REFUSED by the runtime", "reject_oci_hook_adjustment",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}

	// A status file the service stopped rewriting is stale.
	st.UpdatedAt = now.Add(-time.Hour)
	if err := service.WriteStatusFile(path, st); err != nil {
		t.Fatal(err)
	}
	if s := readServiceStatus(path); s.Running || !strings.Contains(s.Error, "not updated since") {
		t.Fatalf("stale status: %+v", s)
	}
	// No file: not running, which is not an error.
	if s := readServiceStatus(filepath.Join(dir, "none.json")); s.Running || s.Status != nil || s.Error != "" {
		t.Fatalf("missing status: %+v", s)
	}
	// A corrupt file is reported.
	if err := os.WriteFile(path, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if s := readServiceStatus(path); s.Error == "" {
		t.Fatal("corrupt status file not reported")
	}
}

// Where the NRI plugin stands is in check's output: a node that is not
// enforcing through NRI says so in capitals.
func TestRuntimeConnectionInCheckOutput(t *testing.T) {
	for _, tc := range []struct {
		r    service.RuntimeConnection
		want []string
	}{
		{service.RuntimeConnection{State: "connected", Mode: "validator", Plugin: "50-patchgate", Runtime: "containerd", RuntimeVersion: "v2.4.2", NRIVersion: "v0.12.3"},
			[]string{"container runtime  connected as 50-patchgate to containerd v2.4.2 (NRI v0.12.3), mode validator\n"}},
		{service.RuntimeConnection{State: "connected", Mode: "CreateContainer", Plugin: "99-patchgate", Runtime: "containerd", RuntimeVersion: "v1.7.35", NRIVersion: "v0.8.0",
			Unseen: []string{"adjustments by NRI plugins ordered after patchgate", "CDI devices resolved after NRI"}},
			[]string{"mode CreateContainer; not seen in this mode: adjustments by NRI plugins ordered after patchgate, CDI devices resolved after NRI"}},
		{service.RuntimeConnection{State: "refused", Mode: "hook-only", Runtime: "containerd", RuntimeVersion: "v2.1.9", Reason: "closed after Configure"},
			[]string{"REFUSED by the runtime, NOT ENFORCING through NRI (containerd v2.1.9): closed after Configure"}},
		{service.RuntimeConnection{State: "disconnected", Mode: "hook-only", Runtime: "containerd", RuntimeVersion: "v2.4.2", Reason: "ttrpc: closed"},
			[]string{"NOT CONNECTED (disconnected), NOT ENFORCING through NRI", "ttrpc: closed"}},
	} {
		path := filepath.Join(t.TempDir(), "status.json")
		r := tc.r
		if err := service.WriteStatusFile(path, service.Status{PID: 1, UpdatedAt: time.Now(), Runtime: &r}); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		writeServiceStatus(&out, readServiceStatus(path))
		for _, want := range tc.want {
			if !strings.Contains(out.String(), want) {
				t.Errorf("output lacks %q:\n%s", want, out.String())
			}
		}
	}
}

// A killed service leaves a status file that looks fresh; nothing answering
// on its decision socket gives it away.
func TestKilledServiceIsNotRunning(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "status.json")
	sock := filepath.Join(dir, "decision.sock")
	r := service.RuntimeConnection{State: "connected", Mode: "CreateContainer", Plugin: "99-patchgate", Runtime: "containerd", RuntimeVersion: "v2.1.9"}
	if err := service.WriteStatusFile(path, service.Status{PID: 1, UpdatedAt: time.Now(), Socket: sock, Runtime: &r}); err != nil {
		t.Fatal(err)
	}
	st := readServiceStatus(path)
	if st.Running || !strings.Contains(st.Error, "nothing answers on its decision socket") {
		t.Fatalf("killed service: %+v", st)
	}
	var out bytes.Buffer
	writeServiceStatus(&out, st)
	if !strings.Contains(out.String(), "container runtime  NOT CONNECTED: the service is not running") {
		t.Errorf("output claims a connection:\n%s", out.String())
	}
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	if st := readServiceStatus(path); !st.Running {
		t.Fatalf("live service: %+v", st)
	}
}

func TestBaseSpecMissingInCheckOutput(t *testing.T) {
	path := filepath.Join(t.TempDir(), "status.json")
	r := service.RuntimeConnection{State: "connected", Mode: "CreateContainer", Plugin: "99-patchgate", BaseSpecMissing: []string{"nvidia"}}
	if err := service.WriteStatusFile(path, service.Status{PID: 1, UpdatedAt: time.Now(), Runtime: &r}); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	writeServiceStatus(&out, readServiceStatus(path))
	if !strings.Contains(out.String(), "fail-closed hook   MISSING from the base_runtime_spec of runtime handler(s) nvidia") {
		t.Errorf("output:\n%s", out.String())
	}
}

// The probes' results, as the service wrote them, are in check's output
// while the service runs.
func TestProbesInCheckOutput(t *testing.T) {
	path := filepath.Join(t.TempDir(), "status.json")
	live := health.Result{OK: true, Checks: []health.CheckResult{{Name: "service", OK: true}}}
	ready := health.Result{OK: false, Checks: []health.CheckResult{
		{Name: "runtime", OK: false, Reason: "runtime connection is disconnected, not connected"},
		{Name: "policy", OK: true},
		{Name: "kernel-state", OK: false, Reason: "the kernel state is 11m0s old, more than spec.kernel.maxStateAge 10m0s"},
	}}
	if err := service.WriteStatusFile(path, service.Status{PID: 1, UpdatedAt: time.Now(), Live: &live, Ready: &ready}); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	writeServiceStatus(&out, readServiceStatus(path))
	want := "probes             live, NOT READY (runtime: runtime connection is disconnected, not connected; kernel-state: the kernel state is 11m0s old, more than spec.kernel.maxStateAge 10m0s)\n"
	if !strings.Contains(out.String(), want) {
		t.Errorf("output lacks %q:\n%s", want, out.String())
	}
	ready.OK, ready.Checks = true, nil
	if err := service.WriteStatusFile(path, service.Status{PID: 1, UpdatedAt: time.Now(), Live: &live, Ready: &ready}); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	writeServiceStatus(&out, readServiceStatus(path))
	if !strings.Contains(out.String(), "probes             live, ready\n") {
		t.Errorf("output:\n%s", out.String())
	}
}
