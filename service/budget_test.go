package service

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patchgate/patchgate/audit"
	"github.com/patchgate/patchgate/service/decision"
)

// waitingRemediator behaves like livepatch.Remediator.Ensure on a patch
// that never finishes: it waits wait or until ctx is done, then reports
// "running". It records the wait and the ctx deadline it was given.
type waitingRemediator struct {
	mu       sync.Mutex
	wait     time.Duration
	deadline time.Time
	calls    int
}

func (r *waitingRemediator) Remediate(ctx context.Context, wait time.Duration) (string, string) {
	r.mu.Lock()
	r.calls++
	r.wait = wait
	r.deadline, _ = ctx.Deadline()
	r.mu.Unlock()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
	return "running", "kernel live patch in progress"
}

// TestSocketRemediationWaitBoundedByClientBudget: the policy lets admission
// wait 30s for remediation, the client waits 0.6s. The service must answer
// within the client's budget (REVIEW F2) — else the hook gives up, decides
// locally and both write a record — and remediation must still have been
// started.
func TestSocketRemediationWaitBoundedByClientBudget(t *testing.T) {
	e := newTestEnv(t)
	writeFile(t, filepath.Join(e.policyDir, "policy.yaml"), strings.Replace(policyNamed("first"),
		"  kernel: {onUnknown: warn}\n",
		"  kernel: {onUnknown: warn, requiredCVEs: [CVE-2024-1086]}\n"+
			"  remediation: {enabled: true, timeout: 1m, admitWait: 30s}\n", 1), 0o644)
	rem := &waitingRemediator{}
	e.start(t, WithRemediator(rem))
	if !e.svc.Policy().Spec.Remediation.Enabled || e.svc.Policy().Spec.Remediation.AdmitWait.D() != 30*time.Second {
		t.Fatalf("test policy not loaded: %+v", e.svc.Policy().Spec.Remediation)
	}

	// Far longer than decision.DefaultTimeout, so that the wait handed to
	// the remediator shows whether the client sent its budget (below), and
	// so that the quarter of the budget the service keeps for answering is
	// 2s: with 0.6s (its 0.15s) the answer came late on a starved machine.
	const clientTimeout = 8 * time.Second
	c := &decision.Client{Socket: e.socket, Timeout: clientTimeout}
	id := audit.NewUUID()
	sent := time.Now()
	resp, err := c.Ask(context.Background(), id, rootWorkload("c1"))
	if err != nil {
		t.Fatalf("the service did not answer within the client's budget: %v", err)
	}
	if resp.Remediation != "running" || resp.Decision == nil || !resp.Decision.KernelBehind {
		t.Fatalf("resp = %+v", resp)
	}
	rem.mu.Lock()
	defer rem.mu.Unlock()
	if rem.calls != 1 {
		t.Fatalf("remediation started %d times, want 1", rem.calls)
	}
	// The structural guarantee: the wait handed to the remediator and its
	// ctx deadline both lie within the budget the client sent.
	if rem.wait <= decision.DefaultTimeout {
		t.Errorf("remediation wait %v: the service assumed the default budget %v, not the client's %v", rem.wait, decision.DefaultTimeout, clientTimeout)
	}
	if rem.wait >= clientTimeout {
		t.Errorf("remediation wait %v, want less than the client's budget %v", rem.wait, clientTimeout)
	}
	if rem.deadline.IsZero() || !rem.deadline.Before(sent.Add(clientTimeout)) {
		t.Errorf("remediation ctx deadline %v, want one before the client's %v", rem.deadline, sent.Add(clientTimeout))
	}
	if recs := auditLines(t, e.auditLog); len(recs) != 1 || recs[0].UUID != id {
		t.Fatalf("audit records = %+v", recs)
	}
}

// TestSocketRequestWithoutBudgetImpliesDefault: a request from a client that
// does not send its budget is answered within the default client timeout.
func TestSocketRequestWithoutBudgetImpliesDefault(t *testing.T) {
	budget, err := requestBudget(&decision.DecideRequest{})
	if err != nil || budget != decision.DefaultTimeout {
		t.Fatalf("budget %v, %v; want %v", budget, err, decision.DefaultTimeout)
	}
	budget, err = requestBudget(&decision.DecideRequest{BudgetMillis: 2500})
	if err != nil || budget != 2500*time.Millisecond {
		t.Fatalf("budget %v, %v; want 2.5s", budget, err)
	}
	if _, err := requestBudget(&decision.DecideRequest{BudgetMillis: -1}); err == nil {
		t.Fatal("negative budget accepted")
	}
}
