package hook

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/patchgate/patchgate/audit"
	"github.com/patchgate/patchgate/policy"
	"github.com/patchgate/patchgate/service"
	"github.com/patchgate/patchgate/service/decision"
)

type fixedKernel struct{ k *policy.KernelState }

func (f fixedKernel) Snapshot() *policy.KernelState               { return f.k }
func (f fixedKernel) Refresh(context.Context) *policy.KernelState { return f.k }

// The hook asks a real in-process service: the decision comes from the
// service's policy (not the hook's --policy), and the service writes the
// audit record with the hook's UUID.
func TestRunAsksService(t *testing.T) {
	svcPolicy := writePolicy(t, "deny", "enforce")
	dir := t.TempDir()
	sock := filepath.Join(dir, "decision.sock")
	auditLog := filepath.Join(dir, "audit.log")
	k, _ := freshKernel(context.Background(), nil)
	logger := logrus.New()
	logger.SetOutput(os.Stderr)
	logger.SetLevel(logrus.WarnLevel)
	svc, err := service.New(service.WithPolicy(svcPolicy, ""), service.WithSocket(sock), service.WithStatusFile(""),
		service.WithAudit(audit.Config{Path: auditLog, Logger: logger}, ""), service.WithKernelMonitor(fixedKernel{k}),
		service.WithLogger(logger), service.WithPollInterval(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = svc.Close() }()

	var audited []string
	cfg := Config{
		PolicyPath: "/nonexistent/policy", // never read: the service decides
		Service:    &decision.Client{Socket: sock},
		Kernel:     freshKernel,
		NewID:      func() string { return "7f0c1d2e-0000-4000-8000-000000000001" },
		Audit: func(_ context.Context, id string, _ *policy.Policy, _ *policy.Workload, _ *policy.Decision, _ *policy.KernelState) error {
			audited = append(audited, id)
			return nil
		},
	}
	out := Run(context.Background(), cfg, strings.NewReader(stateFor(t, "default")))
	if out.By != ByService || out.Exit != ExitBlock || !strings.Contains(out.Message, "[runAsRoot]") {
		t.Fatalf("by %s exit %d: %q (%v)", out.By, out.Exit, out.Message, out.Err)
	}
	if len(audited) != 0 {
		t.Fatalf("hook audited %v itself although the service did", audited)
	}
	data, err := os.ReadFile(auditLog)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(string(data), "\n") != 1 || !strings.Contains(string(data), `"uuid":"7f0c1d2e-0000-4000-8000-000000000001"`) {
		t.Fatalf("audit log:\n%s", data)
	}
}

// A service that accepts and never answers: after the service timeout the
// hook decides locally and audits itself, with the request's id.
func TestRunServiceHangsFallsBack(t *testing.T) {
	pol := writePolicy(t, "deny", "enforce")
	sock := filepath.Join(t.TempDir(), "hang.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer func() { _ = c.Close() }() // hold it open, say nothing
		}
	}()
	var audited []string
	cfg := Config{
		PolicyPath: pol, Kernel: freshKernel,
		Service: &decision.Client{Socket: sock, Timeout: 200 * time.Millisecond},
		NewID:   func() string { return "id-2" },
		Audit: func(_ context.Context, id string, _ *policy.Policy, _ *policy.Workload, _ *policy.Decision, _ *policy.KernelState) error {
			audited = append(audited, id)
			return nil
		},
	}
	out := Run(context.Background(), cfg, strings.NewReader(stateFor(t, "default")))
	if out.By != ByLocal || out.Exit != ExitBlock {
		t.Fatalf("by %s exit %d: %q", out.By, out.Exit, out.Message)
	}
	if len(audited) != 1 || audited[0] != "id-2" {
		t.Fatalf("audited %v, want the request's id once", audited)
	}
}
