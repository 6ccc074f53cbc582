package hook

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/patchgate/patchgate/audit"
	"github.com/patchgate/patchgate/service"
	"github.com/patchgate/patchgate/service/decision"
)

// BenchmarkRun is the hook's work inside the process (state, bundle,
// config.json, workload, decision), without process start-up: through the
// node service's socket, and locally from the policy file. The whole-process
// figure is BenchmarkHookProcess in test/hooke2e.
func BenchmarkRun(b *testing.B) {
	for _, mode := range []string{"service", "local"} {
		b.Run(mode, func(b *testing.B) {
			pol := writePolicyB(b)
			state := stateFor(b, "user1000-capdrop")
			cfg := Config{PolicyPath: pol, Kernel: freshKernel}
			if mode == "service" {
				dir := b.TempDir()
				k, _ := freshKernel(context.Background(), nil)
				lg := logrus.New()
				lg.SetLevel(logrus.ErrorLevel)
				svc, err := service.New(service.WithPolicy(pol, ""), service.WithSocket(filepath.Join(dir, "d.sock")),
					service.WithStatusFile(""), service.WithAudit(audit.Config{Path: filepath.Join(dir, "audit.log"), Logger: lg}, ""),
					service.WithKernelMonitor(fixedKernel{k}), service.WithLogger(lg), service.WithPollInterval(time.Hour))
				if err != nil {
					b.Fatal(err)
				}
				if err := svc.Start(context.Background()); err != nil {
					b.Fatal(err)
				}
				defer func() { _ = svc.Close() }()
				cfg.Service = &decision.Client{Socket: filepath.Join(dir, "d.sock")}
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				out := Run(context.Background(), cfg, strings.NewReader(state))
				if out.Exit != ExitAdmit {
					b.Fatalf("exit %d: %s", out.Exit, out.Message)
				}
			}
		})
	}
}

func writePolicyB(b *testing.B) string {
	dir := b.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	p := filepath.Join(dir, "policy.yaml")
	body := strings.Replace(strings.Replace(testPolicy, "%s", "deny", 1), "%s", "enforce", 1)
	// podman sets no noNewPrivileges: make that rule silent for the admit path.
	body = strings.Replace(body, "privilegeEscalation: {action: warn}", "privilegeEscalation: {action: off}", 1)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		b.Fatal(err)
	}
	return p
}
