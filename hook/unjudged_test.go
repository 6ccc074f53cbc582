package hook

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patchgate/patchgate/policy"
	"github.com/patchgate/patchgate/service"
	"github.com/patchgate/patchgate/service/decision"
)

// editedState is stateFor with the bundle's config.json passed through edit.
func editedState(t *testing.T, fixture string, edit func(string) string) string {
	t.Helper()
	raw := stateFor(t, fixture)
	st, err := ParseState([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(st.Bundle, "config.json")
	cfg, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	out := edit(string(cfg))
	if out == string(cfg) {
		t.Fatal("edit changed nothing")
	}
	if err := os.WriteFile(p, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	return raw
}

// goneNetNS points the network namespace at a process that does not exist:
// the hook cannot tell whether it is the host's (REVIEW F1).
func goneNetNS(cfg string) string {
	return strings.Replace(cfg, `{"type":"network"}`, `{"type":"network","path":"/proc/999999/ns/net"}`, 1)
}

func TestRunUnjudgedFollowsOnError(t *testing.T) {
	deny := writePolicy(t, "deny", "enforce")
	allow := writePolicy(t, "allow", "enforce")

	out := Run(context.Background(), Config{PolicyPath: deny, Kernel: freshKernel}, strings.NewReader(editedState(t, "user1000-capdrop", goneNetNS)))
	if out.Exit != ExitBlock || !strings.HasPrefix(out.Message, "patchgate: blocked") ||
		!strings.Contains(out.Message, "[unjudged]") || !strings.Contains(out.Message, "hostNamespaces") ||
		!strings.Contains(out.Message, "input not visible") || strings.Contains(out.Message, "\n") {
		t.Fatalf("onError deny: exit %d %q", out.Exit, out.Message)
	}

	out = Run(context.Background(), Config{PolicyPath: allow, Kernel: freshKernel}, strings.NewReader(editedState(t, "user1000-capdrop", goneNetNS)))
	if out.Exit != ExitAdmit || !strings.HasPrefix(out.Message, "patchgate: warning:") ||
		!strings.Contains(out.Message, "hostNamespaces") || !strings.Contains(out.Message, "input not visible") {
		t.Fatalf("onError allow: exit %d %q", out.Exit, out.Message)
	}

	// Judged by the NRI validator (the service remembers it): not unjudged.
	svc, sock, _ := startService(t, deny)
	raw := editedState(t, "user1000-capdrop", goneNetNS)
	st, err := ParseState([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	nri := &policy.Workload{Container: policy.ContainerIdentity{ID: st.ID}, User: policy.User{UID: 1000, GID: 1000}, Seen: nriFields}
	if res := svc.Admit(context.Background(), nri, service.AdmitOptions{Source: "nri", NRIJudged: nri.Seen, RememberJudged: true}); res.Decision.Verdict == policy.Deny {
		t.Fatalf("validator: %+v", res.Decision)
	}
	out = Run(context.Background(), Config{PolicyPath: deny, Kernel: freshKernel, Service: &decision.Client{Socket: sock}}, strings.NewReader(raw))
	if out.By != ByService || out.Exit != ExitAdmit || strings.Contains(out.Message, "unjudged") {
		t.Fatalf("judged by NRI: by %s exit %d %q", out.By, out.Exit, out.Message)
	}
	// Asked without the service, the hook cannot know: unjudged.
	out = Run(context.Background(), Config{PolicyPath: deny, Kernel: freshKernel}, strings.NewReader(raw))
	if out.Exit != ExitBlock || !strings.Contains(out.Message, "[unjudged]") {
		t.Fatalf("no service: exit %d %q", out.Exit, out.Message)
	}

	// Every recorded real container is complete: still admitted.
	out = Run(context.Background(), Config{PolicyPath: deny, Kernel: freshKernel}, strings.NewReader(stateFor(t, "user1000-capdrop")))
	if out.Exit != ExitAdmit || strings.Contains(out.Message, "unjudged") {
		t.Fatalf("complete spec: exit %d %q", out.Exit, out.Message)
	}
}

// A relative bind source is resolved against the bundle (REVIEW A1).
func TestRunRelativeBindSource(t *testing.T) {
	deny := writePolicy(t, "deny", "enforce")
	state := editedState(t, "user1000-capdrop", func(cfg string) string {
		return strings.Replace(cfg, `"mounts":[`, `"mounts":[{"destination":"/hostetc","type":"bind","source":"../../../../../../../../../../../../etc","options":["rbind","rw"]},`, 1)
	})
	out := Run(context.Background(), Config{PolicyPath: deny, Kernel: freshKernel}, strings.NewReader(state))
	if out.Exit != ExitBlock || !strings.Contains(out.Message, "[hostPathMounts]") || !strings.Contains(out.Message, "(from /etc, contains protected /etc/patchgate)") {
		t.Fatalf("exit %d %q", out.Exit, out.Message)
	}
}
