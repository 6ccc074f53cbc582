package service

import (
	"path/filepath"
	"testing"

	"github.com/patchgate/patchgate/livepatch"
	"github.com/patchgate/patchgate/policy"
)

// fixtureMonitor is a real livepatch monitor reading a recorded host tree;
// nobody runs it, so only Start can have read it.
func fixtureMonitor(t *testing.T, host string) *livepatch.Monitor {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", "livepatch", "testdata", "hosts", host))
	if err != nil {
		t.Fatal(err)
	}
	r, err := livepatch.NewReader(livepatch.WithHostRoot(root))
	if err != nil {
		t.Fatal(err)
	}
	m, err := livepatch.NewMonitor(r)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// REVIEW BFG1: the first decision after Start must see a read kernel, not
// "kernel state not read yet".
func TestFirstDecisionAfterStartSeesReadKernel(t *testing.T) {
	e := newTestEnv(t)
	mon := fixtureMonitor(t, "debian12-enabled")
	if mon.Snapshot() != nil {
		t.Fatal("monitor has a state before Start")
	}
	e.start(t, WithKernelMonitor(mon))
	k := e.svc.Kernel()
	if k.Release != "6.1.0-18-amd64" || len(k.Unknown) != 0 {
		t.Fatalf("kernel after Start = release %q unknown %+v, want the fixture's 6.1.0-18-amd64, nothing unknown", k.Release, k.Unknown)
	}
	d := e.svc.Decide(rootWorkload("c1"))
	if hasRule(d, policy.RuleKernelStateUnknown) {
		t.Errorf("first decision judged an unread kernel: %+v", d.Violations)
	}
	if !hasRule(d, "runAsRoot") {
		t.Errorf("first decision misses the runAsRoot violation (decision not evaluated?): %+v", d.Violations)
	}
}

// With the start-up read turned off the first decision sees an unread
// kernel: the case above is what the read changes.
func TestStartupReadOff(t *testing.T) {
	e := newTestEnv(t)
	mon := fixtureMonitor(t, "debian12-enabled")
	e.start(t, WithKernelMonitor(mon), WithStartupRead(0))
	if d := e.svc.Decide(rootWorkload("c1")); !hasRule(d, policy.RuleKernelStateUnknown) {
		t.Errorf("with no start-up read the kernel should be unread: %+v", d.Violations)
	}
	if _, err := New(WithStartupRead(-1)); err == nil {
		t.Error("negative start-up read timeout accepted")
	}
}
