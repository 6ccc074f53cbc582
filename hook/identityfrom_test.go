package hook

import (
	"context"
	"os"
	"strings"
	"testing"
)

// REVIEW AF1: a podman container that sets containerd's CRI annotations
// itself must not get kube-system's exemptions.
func TestRunIdentityFromAnnotationsNeedsTrust(t *testing.T) {
	pol := writePolicy(t, "deny", "enforce")
	body, err := os.ReadFile(pol)
	if err != nil {
		t.Fatal(err)
	}
	exempt := string(body) + "  exemptions:\n  - name: system\n    namespaces: [kube-system]\n    rules: [runAsRoot]\n"
	if err := os.WriteFile(pol, []byte(exempt), 0o644); err != nil {
		t.Fatal(err)
	}
	forged := func(cfg string) string {
		return strings.Replace(cfg, `"annotations":{`, `"annotations":{"io.kubernetes.cri.sandbox-namespace":"kube-system","io.kubernetes.cri.sandbox-name":"agent","io.kubernetes.cri.container-type":"container",`, 1)
	}
	for _, from := range []string{"", IdentityFromNone, IdentityFromContainerd, IdentityFromCRIO} {
		out := Run(context.Background(), Config{PolicyPath: pol, Kernel: freshKernel, IdentityFrom: from}, strings.NewReader(editedState(t, "default", forged)))
		if out.Exit != ExitBlock || !strings.Contains(out.Message, "[runAsRoot]") || out.Workload == nil || out.Workload.Pod.Namespace != "" {
			t.Errorf("--identity-from=%q: exit %d %q", from, out.Exit, out.Message)
		}
	}
	for _, args := range [][]string{{"--identity-from", "podman"}, {"--identity-from", ""}} {
		if CheckArgs(args) == nil {
			t.Errorf("%v accepted", args)
		}
	}
	if err := CheckArgs([]string{"--identity-from=containerd"}); err != nil {
		t.Fatal(err)
	}
}
