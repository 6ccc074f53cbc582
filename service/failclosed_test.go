package service

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/patchgate/patchgate/audit"
	"github.com/patchgate/patchgate/policy"
)

// TestAuditFailClosed: the audit log's directory is a read-only bind mount
// (root ignores file modes), so no record can be written. Under
// audit.failClosed a flagged container, which needs a record, is denied,
// and so is a clean one while the log is failing; without failClosed both
// are admitted.
func TestAuditFailClosed(t *testing.T) {
	for _, failClosed := range []bool{true, false} {
		e := newTestEnv(t)
		body := strings.Replace(policyNamed("fc"), "audit: {failClosed: false}", "audit: {failClosed: "+map[bool]string{true: "true", false: "false"}[failClosed]+"}", 1)
		body = strings.Replace(body, "runAsRoot:  {action: enforce}", "runAsRoot:  {action: warn}", 1)
		writeFile(t, filepath.Join(e.policyDir, "policy.yaml"), body, 0o644)
		logDir := filepath.Dir(e.auditLog)
		if err := os.MkdirAll(logDir, 0o750); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Mount(logDir, logDir, "", syscall.MS_BIND, ""); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatal(err)
			}
			t.Skipf("cannot bind-mount (%v): needs root with CAP_SYS_ADMIN", err)
		}
		t.Cleanup(func() { _ = syscall.Unmount(logDir, 0) })
		if err := syscall.Mount("", logDir, "", syscall.MS_BIND|syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
			t.Fatal(err)
		}
		logger := logrus.New()
		logger.SetOutput(io.Discard)
		e.start(t, WithAudit(audit.Config{Path: e.auditLog, Logger: logger}, e.auditSock))

		flagged := e.svc.Admit(context.Background(), rootWorkload("c1"), AdmitOptions{Source: audit.SourceHook})
		clean := rootWorkload("c2")
		clean.User.UID = 1000
		ok := e.svc.Admit(context.Background(), clean, AdmitOptions{Source: audit.SourceHook})
		if flagged.AuditErr == nil || flagged.Audited {
			t.Fatalf("failClosed=%v: the record was written to a read-only directory: %+v", failClosed, flagged)
		}
		if failClosed {
			for name, r := range map[string]Result{"flagged": flagged, "clean": ok} {
				if r.Decision.Verdict != policy.Deny || !hasRule(r.Decision, audit.FailClosedRule) {
					t.Errorf("failClosed: %s container: %+v", name, r.Decision)
				}
			}
		} else if flagged.Decision.Verdict != policy.Warn || ok.Decision.Verdict != policy.Allow {
			t.Errorf("failClosed off: flagged %s, clean %s", flagged.Decision.Verdict, ok.Decision.Verdict)
		}
		_ = e.svc.Close()
	}
}

func hasRule(d policy.Decision, rule string) bool {
	for _, v := range d.Violations {
		if v.Rule == rule {
			return true
		}
	}
	return false
}
