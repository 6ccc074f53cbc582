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
	"github.com/patchgate/patchgate/policy"
	"github.com/patchgate/patchgate/service"
	"github.com/patchgate/patchgate/service/decision"
)

// --nri-judged is accepted (hooks injected by older plugins carry it) but
// never makes the hook skip a rule: the root container it names as judged
// is still refused.
func TestNRIJudgedFlagSkipsNothing(t *testing.T) {
	pol := writePolicy(t, "deny", "enforce")
	var stderr strings.Builder
	args := []string{"--policy", pol, "--socket=", "--state-file", "/nonexistent/state.json",
		"--audit-spool", filepath.Join(t.TempDir(), "spool"),
		"--nri-judged=user,hostNamespaces,mounts,devices,seccomp"}
	code := Main(args, strings.NewReader(stateFor(t, "default")), &stderr)
	if code != ExitBlock || !strings.Contains(stderr.String(), "[runAsRoot]") {
		t.Errorf("--nri-judged made the hook skip runAsRoot: exit %d %q", code, stderr.String())
	}
}

func TestNRIJudgedFlag(t *testing.T) {
	var stderr strings.Builder
	if code := Main([]string{"--nri-judged=user,bogus"}, strings.NewReader("{}"), &stderr); code != ExitBlock ||
		!strings.Contains(stderr.String(), "--nri-judged") {
		t.Errorf("bad --nri-judged: exit %d, %q", code, stderr.String())
	}
}

// nriFields are the fields an NRI Container shows (plugin.ContainerWorkload).
const nriFields = policy.FieldUser | policy.FieldHostNamespaces | policy.FieldMounts | policy.FieldDevices | policy.FieldSeccomp

// startService runs a real node service with a decision socket and the
// given policy.
func startService(t *testing.T, pol string) (*service.Service, string, string) {
	t.Helper()
	dir := t.TempDir()
	sock := filepath.Join(dir, "decision.sock")
	auditLog := filepath.Join(dir, "audit.log")
	k, _ := freshKernel(context.Background(), nil)
	logger := logrus.New()
	logger.SetOutput(os.Stderr)
	logger.SetLevel(logrus.WarnLevel)
	svc, err := service.New(service.WithPolicy(pol, ""), service.WithSocket(sock), service.WithStatusFile(""),
		service.WithAudit(audit.Config{Path: auditLog, Logger: logger}, ""), service.WithKernelMonitor(fixedKernel{k}),
		service.WithLogger(logger), service.WithPollInterval(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Close() })
	return svc, sock, auditLog
}

// The NRI validator judged the container as it will run, but without its
// devices and mounts (as if a later plugin or CDI added one it could not
// judge). The hook asks the service, which judges everything the hook sees
// and leaves the validator's own findings to the validator's record: the
// host device /dev/kmsg is refused; root, which the validator judged and
// flagged (runAsRoot: warn), is not reported twice.
func TestHookJudgesWhatTheValidatorDidNot(t *testing.T) {
	pol := writePolicy(t, "deny", "warn")
	svc, sock, auditLog := startService(t, pol)
	kmsg := func(cfg string) string {
		return strings.Replace(cfg, `"linux":{`, `"linux":{"devices":[{"path":"/dev/kmsg","type":"c","major":1,"minor":11,"fileMode":420,"uid":0,"gid":0}],`, 1)
	}
	validate := func(id string, uid uint32) {
		t.Helper()
		w := &policy.Workload{Source: audit.SourceNRI, Container: policy.ContainerIdentity{ID: id},
			User: policy.User{UID: uid, GID: uid}, Seen: nriFields &^ (policy.FieldDevices | policy.FieldMounts),
			// A seccomp filter that blocks everything by default, as
			// NRI's seccompPolicy shows containerd's RuntimeDefault.
			Seccomp: policy.SeccompSummary{DefaultAction: "SCMP_ACT_ERRNO", DefaultBlocks: true}}
		res := svc.Admit(context.Background(), w, service.AdmitOptions{Source: audit.SourceNRI, NRIJudged: w.Seen, RememberJudged: true})
		if res.Decision.Verdict == policy.Deny {
			t.Fatalf("validator: %+v", res.Decision)
		}
	}
	cfg := Config{PolicyPath: pol, Kernel: freshKernel, Service: &decision.Client{Socket: sock}, NewID: audit.NewUUID}

	raw := editedState(t, "default", kmsg)
	st, err := ParseState([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	validate(st.ID, 0) // record 1 (nri): runAsRoot flagged
	out := Run(context.Background(), cfg, strings.NewReader(raw))
	if out.By != ByService || out.Exit != ExitBlock || !strings.Contains(out.Message, "[hostDevices]") ||
		strings.Contains(out.Message, "runAsRoot") {
		t.Fatalf("device added after the validator: by %s exit %d %q", out.By, out.Exit, out.Message)
	}

	// Control: the same container without the device is admitted.
	raw = stateFor(t, "default")
	validate(st.ID, 0) // record 3 (nri)
	out = Run(context.Background(), cfg, strings.NewReader(raw))
	if out.By != ByService || out.Exit != ExitAdmit || strings.Contains(out.Message, "runAsRoot") {
		t.Fatalf("control: by %s exit %d %q", out.By, out.Exit, out.Message)
	}

	// Without the validator's answer (asked once already) the hook judges
	// and records everything, root included.
	out = Run(context.Background(), cfg, strings.NewReader(raw))
	if out.By != ByService || out.Exit != ExitAdmit || !strings.Contains(out.Message, "[runAsRoot]") {
		t.Fatalf("unknown container: by %s exit %d %q", out.By, out.Exit, out.Message)
	}

	// Records: the validator's two (runAsRoot flagged), the hook's device
	// refusal and control (no runAsRoot: the validator's), and the unknown
	// container's (runAsRoot).
	data, err := os.ReadFile(auditLog)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	var hookRoot, nriRoot int
	for _, l := range lines {
		if strings.Contains(l, `"rule":"runAsRoot"`) {
			if strings.Contains(l, `"source":"hook"`) {
				hookRoot++
			} else {
				nriRoot++
			}
		}
	}
	if len(lines) != 5 || nriRoot != 2 || hookRoot != 1 || !strings.Contains(lines[1], `"rule":"hostDevices"`) {
		t.Fatalf("audit records (nri runAsRoot %d, hook runAsRoot %d):\n%s", nriRoot, hookRoot, data)
	}
}

// config.json with a key twice, or two keys that differ only in case, is
// refused: runc keeps the last, another runtime may keep the first.
func TestRunRefusesAmbiguousSpec(t *testing.T) {
	pol := writePolicy(t, "deny", "enforce")
	for _, edit := range []func(string) string{
		func(cfg string) string {
			return strings.Replace(cfg, `"process":{`, `"Process":{"user":{"uid":1000}},"process":{`, 1)
		},
		func(cfg string) string {
			return strings.Replace(cfg, `"user":{"uid":1000,`, `"user":{"uid":1000,"uid":0,`, 1)
		},
	} {
		out := Run(context.Background(), Config{PolicyPath: pol, Kernel: freshKernel}, strings.NewReader(editedState(t, "user1000-capdrop", edit)))
		if out.Exit != ExitBlock || out.By != ByOnError || !strings.Contains(out.Message, "ambiguous JSON key") {
			t.Errorf("exit %d by %s: %q", out.Exit, out.By, out.Message)
		}
	}
}
