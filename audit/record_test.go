package audit

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/policy"
)

// rootHostNet is a workload the default policy blocks: uid 0 and the host's
// network namespace.
func rootHostNet(name string) *policy.Workload {
	return &policy.Workload{
		Source: SourceNRI,
		Seen:   policy.FieldUser | policy.FieldHostNamespaces | policy.FieldMounts | policy.FieldDevices | policy.FieldSeccomp | policy.FieldSysctls,
		Pod:    policy.PodIdentity{Namespace: "payments", Name: "api-7d4b9c", UID: "5f0c2a8e-3b1d-4e7a-9c61-2d8f0b6e4a13"},
		Container: policy.ContainerIdentity{
			ID: "3f2a9c1b7e4d", Name: name, Image: "registry.example.com/payments/api:1.4.2",
		},
		HostNamespaces: []string{"network"},
		Seccomp:        policy.SeccompSummary{DefaultAction: "SCMP_ACT_ERRNO", DefaultBlocks: true},
	}
}

func kernelState(now time.Time) *policy.KernelState {
	f := false
	return &policy.KernelState{
		Release:        "6.1.0-18-amd64",
		Patches:        []policy.Patch{{Name: "livepatch_6_1_0_18_1", Enabled: true, Provider: "sysfs"}},
		UpdatesPending: &f, Providers: []string{"sysfs"}, ObservedAt: now.Add(-42 * time.Second),
	}
}

// blockedRecord is a record built from a real Evaluate of the default policy.
func blockedRecord(t testing.TB, source, name string) Record {
	t.Helper()
	r, err := makeBlockedRecord(source, name)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func makeBlockedRecord(source, name string) (Record, error) {
	now := time.Now()
	w := rootHostNet(name)
	w.Source = source
	k := kernelState(now)
	d := policy.Evaluate(policy.Default(), w, k, now)
	if d.Verdict != policy.Deny {
		return Record{}, fmt.Errorf("default policy did not deny uid 0 + host network: %+v", d)
	}
	return NewRecord(source, w, &d, k, nil), nil
}

func TestNewRecordFromEvaluate(t *testing.T) {
	r := blockedRecord(t, SourceHook, "api")
	if r.Action != ActionBlocked || r.Result != ResultFail || r.Severity != SeverityHigh || r.Priority != "Error" {
		t.Fatalf("classification = %s/%s/%s/%s", r.Action, r.Result, r.Severity, r.Priority)
	}
	rules := []string{}
	for _, v := range r.Violations {
		rules = append(rules, v.Rule)
	}
	if got := strings.Join(rules, ","); got != "hostNamespaces,runAsRoot" {
		t.Fatalf("rules = %s", got)
	}
	if r.Pod.Namespace != "payments" || r.Container.Image != "registry.example.com/payments/api:1.4.2" {
		t.Fatalf("identity not copied: %+v %+v", r.Pod, r.Container)
	}
	if r.Kernel.Release != "6.1.0-18-amd64" || len(r.Kernel.Patches) != 1 || r.Policy.Name != "default" ||
		!strings.HasPrefix(r.Policy.Digest, "sha256:") {
		t.Fatalf("kernel/policy not copied: %+v %+v", r.Kernel, r.Policy)
	}
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(r.UUID) {
		t.Fatalf("uuid %q is not a v4 UUID", r.UUID)
	}
	want := `patchgate blocked container "api" in pod payments/api-7d4b9c (image registry.example.com/payments/api:1.4.2): host namespaces, run as root`
	if r.Output != want {
		t.Fatalf("output\n got %s\nwant %s", r.Output, want)
	}
	line, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^\{"time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z",`).Match(line) {
		t.Fatalf("time is not RFC 3339 UTC with nanoseconds: %s", line[:60])
	}
	checkSchema(t, line)
	back, err := ParseRecord(line)
	if err != nil {
		t.Fatal(err)
	}
	if !back.Time.Equal(r.Time.Time) || back.UUID != r.UUID || len(back.Violations) != 2 {
		t.Fatalf("round trip changed the record: %+v", back)
	}
}

func TestRecordWithRemediationMatchesSchema(t *testing.T) {
	r := blockedRecord(t, SourceNRI, "api")
	r2 := NewRecord(SourceNRI, rootHostNet("api"), &policy.Decision{Verdict: policy.Deny, KernelBehind: true}, kernelState(time.Now()),
		&Remediation{Started: true, Outcome: "running", Reason: "kpatch load is transitioning"})
	for _, rec := range []Record{r, r2} {
		line, err := rec.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		checkSchema(t, line)
	}
	if !strings.HasSuffix(r2.Output, "[kernel behind]") || !r2.Kernel.Behind {
		t.Fatalf("kernel behind not shown: %q", r2.Output)
	}
}

func TestClassify(t *testing.T) {
	v := []policy.Violation{{Rule: "apparmor", Action: policy.ActionAudit, Reason: "apparmor unconfined"}}
	for _, tc := range []struct {
		d                                  policy.Decision
		action, result, severity, priority string
		record, recordAllowed              bool
	}{
		{policy.Decision{Verdict: policy.Deny}, ActionBlocked, ResultFail, SeverityHigh, "Error", true, true},
		{policy.Decision{Verdict: policy.Warn}, ActionFlagged, ResultWarn, SeverityMedium, "Warning", true, true},
		{policy.Decision{Verdict: policy.Allow, Violations: v}, ActionAllowed, ResultWarn, SeverityLow, "Notice", true, true},
		{policy.Decision{Verdict: policy.Allow, Exemptions: []string{"kube-system"}}, ActionAllowed, ResultPass, SeverityLow, "Notice", true, true},
		{policy.Decision{Verdict: policy.Allow}, ActionAllowed, ResultPass, SeverityInfo, "Informational", false, true},
	} {
		r := NewRecord(SourceEval, nil, &tc.d, nil, nil)
		if r.Action != tc.action || r.Result != tc.result || r.Severity != tc.severity || r.Priority != tc.priority {
			t.Errorf("%s: got %s/%s/%s/%s", tc.d.Verdict, r.Action, r.Result, r.Severity, r.Priority)
		}
		if got := ShouldRecord(&tc.d, false); got != tc.record {
			t.Errorf("%s: ShouldRecord(false) = %v", tc.d.Verdict, got)
		}
		if got := ShouldRecord(&tc.d, true); got != tc.recordAllowed {
			t.Errorf("%s: ShouldRecord(true) = %v", tc.d.Verdict, got)
		}
		line, err := r.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		checkSchema(t, line)
	}
}

func TestParseRecordRejects(t *testing.T) {
	rec := blockedRecord(t, SourceNRI, "api")
	good, err := rec.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	s := string(good)
	for name, line := range map[string]string{
		"empty":          "",
		"not json":       "hello",
		"null":           "null",
		"array":          "[1,2]",
		"truncated":      s[:len(s)/2],
		"two objects":    strings.TrimSpace(s) + strings.TrimSpace(s),
		"trailing brace": strings.TrimSpace(s) + "}",
		"unknown key":    strings.Replace(s, `"uuid"`, `"bogus":1,"uuid"`, 1),
		"bad source":     strings.Replace(s, `"source":"nri"`, `"source":"cli"`, 1),
		"bad action":     strings.Replace(s, `"action":"blocked"`, `"action":"denied"`, 1),
		"bad result":     strings.Replace(s, `"result":"fail"`, `"result":"error"`, 1),
		"bad time":       strings.Replace(s, `"time":"`, `"time":"x`, 1),
		"bad uuid":       strings.Replace(s, `"uuid":"`, `"uuid":"../`, 1),
	} {
		if _, err := ParseRecord([]byte(line)); !errors.Is(err, ErrInvalidRecord) {
			t.Errorf("%s: err = %v, want ErrInvalidRecord", name, err)
		}
	}
	if _, err := ParseRecord(good); err != nil {
		t.Fatalf("good line rejected: %v", err)
	}
}

func TestFailClosed(t *testing.T) {
	d := policy.Decision{Verdict: policy.Allow}
	FailClosed(&d, ErrUnavailable)
	if d.Verdict != policy.Deny || len(d.Violations) != 1 || d.Violations[0].Rule != FailClosedRule ||
		!strings.Contains(d.Violations[0].Detail, "audit log unavailable") {
		t.Fatalf("FailClosed: %+v", d)
	}
	r := NewRecord(SourceHook, nil, &d, nil, nil)
	if r.Action != ActionBlocked {
		t.Fatalf("action %s", r.Action)
	}
}

func TestExemptionNamedInOutput(t *testing.T) {
	d := policy.Decision{Verdict: policy.Allow, Exemptions: []string{"system-pods"}}
	r := NewRecord(SourceNRI, rootHostNet("api"), &d, nil, nil)
	if !strings.Contains(r.Output, "(exemptions: system-pods)") {
		t.Fatalf("output %q", r.Output)
	}
}

func TestFieldsForOperationalLogs(t *testing.T) {
	r := blockedRecord(t, SourceNRI, "api")
	f := r.Fields()
	if f["pod"] != "payments/api-7d4b9c" || f["container"] != "api" || f["decision"] != ActionBlocked ||
		f["rule"] != "hostNamespaces,runAsRoot" || f["audit_uuid"] != r.UUID {
		t.Fatalf("fields %v", f)
	}
}
