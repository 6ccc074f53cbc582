package metrics

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/sirupsen/logrus"

	"github.com/patchgate/patchgate/audit"
	"github.com/patchgate/patchgate/internal/buildinfo"
	"github.com/patchgate/patchgate/policy"
)

func TestCollectors(t *testing.T) {
	m := New()
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	m.now = func() time.Time { return now }
	d := policy.Decision{Verdict: policy.Deny, Violations: []policy.Violation{
		{Rule: "runAsRoot", Action: policy.ActionEnforce}, {Rule: "hostNamespaces", Action: policy.ActionEnforce},
	}}
	m.ObserveDecision("nri", &d, 30*time.Microsecond)
	m.ObserveDecision("nri", &policy.Decision{Verdict: policy.Allow}, 10*time.Microsecond)
	m.ObserveDecision("hook", &policy.Decision{Verdict: policy.Warn, Violations: []policy.Violation{{Rule: "seccomp"}}}, time.Millisecond)
	m.SetKernelState(&policy.KernelState{ObservedAt: now.Add(-90 * time.Second)}, false)
	m.ObserveRemediation("patched")
	m.ObserveRemediation("failed")
	m.ObserveRemediation("failed")
	m.ObserveRemediationWait("running")
	m.SetHookInjectionRefused(true)
	m.WatchAudit(func() audit.Health {
		return audit.Health{OK: false, Records: 7, Failures: 3, SpoolIngested: 2, SpoolDuplicates: 1}
	})

	want := `
# HELP patchgate_decisions_total Admission decisions, by action (blocked, flagged, allowed) and source (nri, hook, eval).
# TYPE patchgate_decisions_total counter
patchgate_decisions_total{action="allowed",source="nri"} 1
patchgate_decisions_total{action="blocked",source="nri"} 1
patchgate_decisions_total{action="flagged",source="hook"} 1
# HELP patchgate_decision_rules_total Rule violations in decisions, by decision action, rule ID and source.
# TYPE patchgate_decision_rules_total counter
patchgate_decision_rules_total{action="blocked",rule="hostNamespaces",source="nri"} 1
patchgate_decision_rules_total{action="blocked",rule="runAsRoot",source="nri"} 1
patchgate_decision_rules_total{action="flagged",rule="seccomp",source="hook"} 1
# HELP patchgate_kernel_compliant 1 when the host kernel meets the policy's kernel rules, 0 when it is behind.
# TYPE patchgate_kernel_compliant gauge
patchgate_kernel_compliant 0
# HELP patchgate_kernel_state_age_seconds Seconds since the kernel live-patch state was last read (-1 before the first read).
# TYPE patchgate_kernel_state_age_seconds gauge
patchgate_kernel_state_age_seconds 90
# HELP patchgate_remediation_runs_total Finished live-patch remediation runs, by outcome (patched, failed); one run however many containers waited for it.
# TYPE patchgate_remediation_runs_total counter
patchgate_remediation_runs_total{outcome="failed"} 2
patchgate_remediation_runs_total{outcome="patched"} 1
# HELP patchgate_remediation_waits_total Container admissions that found the kernel behind and asked for a remediation, by what they got (patched, running, failed, notNeeded).
# TYPE patchgate_remediation_waits_total counter
patchgate_remediation_waits_total{outcome="running"} 1
# HELP patchgate_hook_injection_refused 1 when the runtime refuses the OCI hook injection (checks NRI cannot see are lost), else 0.
# TYPE patchgate_hook_injection_refused gauge
patchgate_hook_injection_refused 1
# HELP patchgate_audit_records_total Audit records written to the log (live and from the spool).
# TYPE patchgate_audit_records_total counter
patchgate_audit_records_total 7
# HELP patchgate_audit_write_failures_total Audit records that could not be written to the log.
# TYPE patchgate_audit_write_failures_total counter
patchgate_audit_write_failures_total 3
# HELP patchgate_audit_healthy 1 when the last audit write succeeded, else 0.
# TYPE patchgate_audit_healthy gauge
patchgate_audit_healthy 0
# HELP patchgate_audit_spool_records_total Records found in the spool, by what happened to them (ingested, duplicate, rejected).
# TYPE patchgate_audit_spool_records_total counter
patchgate_audit_spool_records_total{result="duplicate"} 1
patchgate_audit_spool_records_total{result="ingested"} 2
patchgate_audit_spool_records_total{result="rejected"} 0
`
	names := []string{"patchgate_decisions_total", "patchgate_decision_rules_total", "patchgate_kernel_compliant",
		"patchgate_kernel_state_age_seconds", "patchgate_remediation_runs_total", "patchgate_remediation_waits_total", "patchgate_hook_injection_refused",
		"patchgate_audit_records_total", "patchgate_audit_write_failures_total", "patchgate_audit_healthy",
		"patchgate_audit_spool_records_total"}
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(m.latency); n != 2 {
		t.Fatalf("latency series = %d, want 2 (nri, hook)", n)
	}
}

func TestStateAgeBeforeFirstRead(t *testing.T) {
	m := New()
	want := `
# HELP patchgate_kernel_state_age_seconds Seconds since the kernel live-patch state was last read (-1 before the first read).
# TYPE patchgate_kernel_state_age_seconds gauge
patchgate_kernel_state_age_seconds -1
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "patchgate_kernel_state_age_seconds"); err != nil {
		t.Fatal(err)
	}
}

func TestCheckAddr(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:9464": true, "[::1]:9464": true, "localhost:1": true,
		"0.0.0.0:9464": false, ":9464": false, "10.0.0.1:80": false, "nonsense": false,
	} {
		err := CheckAddr(addr)
		if (err == nil) != ok {
			t.Errorf("CheckAddr(%q) = %v", addr, err)
		}
		if !ok && err != nil && addr != "nonsense" && !errors.Is(err, ErrNotLoopback) {
			t.Errorf("CheckAddr(%q) = %v, want ErrNotLoopback", addr, err)
		}
	}
}

func TestServe(t *testing.T) {
	m := New()
	m.ObserveDecision("eval", &policy.Decision{Verdict: policy.Deny}, time.Millisecond)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serveListener(ctx, ln, Mux(m, nil)) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if !strings.Contains(string(body), `patchgate_decisions_total{action="blocked",source="eval"} 1`) {
		t.Fatalf("scrape lacks the decision:\n%s", body)
	}
	if !strings.Contains(string(body), "go_goroutines") {
		t.Fatal("Go collector missing")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve after cancel: %v", err)
	}
}

// TestMuxRoutesProbes: /metrics is the registry whatever the probes
// handler is; every other path goes to the probes, and without them it is
// 404.
func TestMuxRoutesProbes(t *testing.T) {
	probes := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "probe "+r.URL.Path)
	})
	for _, tc := range []struct {
		probes     http.Handler
		path, want string
		code       int
	}{
		{probes, "/readyz", "probe /readyz", 200},
		{probes, "/healthz/service", "probe /healthz/service", 200},
		{probes, "/metrics", "patchgate_build_info", 200},
		{nil, "/readyz", "404 page not found", 404},
		{nil, "/metrics", "patchgate_build_info", 200},
	} {
		rec := httptest.NewRecorder()
		Mux(New(), tc.probes).ServeHTTP(rec, httptest.NewRequest("GET", tc.path, nil))
		if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.want) {
			t.Errorf("probes %v, GET %s = %d %.80q, want %d containing %q", tc.probes != nil, tc.path, rec.Code, rec.Body.String(), tc.code, tc.want)
		}
	}
}

// TestServeBoundsConnections: the listener is on the pod IP, which any pod
// may reach; one address cannot hold more than maxConnsPerIP connections,
// and an idle keep-alive connection is closed after idleTimeout, so idle
// connections cannot pile up until patchgate is OOM-killed.
func TestServeBoundsConnections(t *testing.T) {
	oldPer, oldIdle := maxConnsPerIP, idleTimeout
	maxConnsPerIP, idleTimeout = 3, 300*time.Millisecond
	t.Cleanup(func() { maxConnsPerIP, idleTimeout = oldPer, oldIdle })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serveListener(ctx, ln, Mux(New(), nil)) }()
	t.Cleanup(func() { cancel(); <-done })

	// get sends GET /metrics on a new keep-alive connection and reports
	// whether an answer came; the connection stays open.
	get := func() (net.Conn, bool) {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(c, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			return c, false
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return c, false
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return c, resp.StatusCode == http.StatusOK
	}
	var held []net.Conn
	for i := 0; i < maxConnsPerIP; i++ {
		c, ok := get()
		if !ok {
			t.Fatalf("connection %d got no answer", i+1)
		}
		held = append(held, c)
	}
	if _, ok := get(); ok {
		t.Errorf("connection %d from one address was served, want it closed (maxConnsPerIP %d)", maxConnsPerIP+1, maxConnsPerIP)
	}
	for i, c := range held {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Errorf("idle connection %d: read = %v, want EOF (closed after idleTimeout)", i+1, err)
		}
	}
	// Closed connections give their slots back.
	if _, ok := get(); !ok {
		t.Error("no answer after the idle connections were closed")
	}
}

func TestServeBusyPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	if err := Serve(context.Background(), ln.Addr().String(), New(), nil); err == nil {
		t.Fatal("Serve on a busy port returned nil")
	}
}

// TestAuditMetricsFromRealLog: a log whose directory cannot exist (its parent
// is a regular file) fails every write; the metrics show exactly the log's
// own counts.
func TestAuditMetricsFromRealLog(t *testing.T) {
	dir := t.TempDir()
	blocker := dir + "/file"
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	lg := logrus.New()
	lg.SetOutput(io.Discard)
	l, err := audit.Open(audit.Config{Path: blocker + "/audit.log", Logger: lg})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	d := policy.Decision{Verdict: policy.Deny}
	for i := 0; i < 2; i++ {
		if err := l.Write(context.Background(), audit.NewRecord(audit.SourceNRI, nil, &d, nil, nil)); err == nil {
			t.Fatal("write under a regular file succeeded")
		}
	}
	m := New()
	m.WatchAudit(l.Health)
	want := `
# HELP patchgate_audit_write_failures_total Audit records that could not be written to the log.
# TYPE patchgate_audit_write_failures_total counter
patchgate_audit_write_failures_total 2
# HELP patchgate_audit_healthy 1 when the last audit write succeeded, else 0.
# TYPE patchgate_audit_healthy gauge
patchgate_audit_healthy 0
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want),
		"patchgate_audit_write_failures_total", "patchgate_audit_healthy"); err != nil {
		t.Fatal(err)
	}
}

func TestRuntimeConnected(t *testing.T) {
	m := New()
	m.SetRuntimeConnected("validator", true)
	m.SetRuntimeConnected("hook-only", false)
	want := `
# HELP patchgate_runtime_connected 1 while the NRI plugin is registered with the container runtime, 0 while it is not (containers are then judged only by an OCI hook, if any). mode: validator, CreateContainer or hook-only (not connected).
# TYPE patchgate_runtime_connected gauge
patchgate_runtime_connected{mode="hook-only"} 0
`
	if err := testutil.GatherAndCompare(m.reg, strings.NewReader(want), "patchgate_runtime_connected"); err != nil {
		t.Error(err)
	}
}

func TestBuildInfo(t *testing.T) {
	bi := buildinfo.Get()
	want := fmt.Sprintf(`
# HELP patchgate_build_info Always 1; the labels name the running build (version, commit, build date, Go version).
# TYPE patchgate_build_info gauge
patchgate_build_info{commit=%q,date=%q,goversion=%q,version=%q} 1
`, bi.Commit, bi.Date, bi.GoVersion, bi.Version)
	if err := testutil.GatherAndCompare(New().Registry(), strings.NewReader(want), "patchgate_build_info"); err != nil {
		t.Fatal(err)
	}
}
