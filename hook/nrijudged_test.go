package hook

import (
	"context"
	"strings"
	"testing"

	"github.com/patchgate/patchgate/policy"
)

// A hook injected by the NRI plugin leaves the rules NRI judged alone: the
// root container (runAsRoot, judged by NRI) is admitted by the hook, while
// CAP_SYS_ADMIN, which NRI cannot see, is still refused.
func TestNRIJudgedFieldsAreLeftToNRI(t *testing.T) {
	pol := writePolicy(t, "deny", "enforce")
	judged := policy.FieldUser | policy.FieldHostNamespaces | policy.FieldMounts | policy.FieldDevices | policy.FieldSeccomp
	cfg := Config{PolicyPath: pol, Kernel: freshKernel, NRIJudged: judged}

	out := Run(context.Background(), cfg, strings.NewReader(stateFor(t, "default")))
	if out.Exit != ExitAdmit {
		t.Errorf("root judged by NRI was refused again by the hook: %s", out.Message)
	}
	out = Run(context.Background(), cfg, strings.NewReader(stateFor(t, "cap-sys-admin")))
	if out.Exit != ExitBlock || !strings.Contains(out.Message, "[capabilities]") {
		t.Errorf("CAP_SYS_ADMIN (invisible to NRI) not refused by the hook: %d %s", out.Exit, out.Message)
	}
	// Without the flag the hook judges everything.
	out = Run(context.Background(), Config{PolicyPath: pol, Kernel: freshKernel}, strings.NewReader(stateFor(t, "default")))
	if out.Exit != ExitBlock {
		t.Errorf("plain hook admitted root: %s", out.Message)
	}
}

func TestNRIJudgedFlag(t *testing.T) {
	var stderr strings.Builder
	if code := Main([]string{"--nri-judged=user,bogus"}, strings.NewReader("{}"), &stderr); code != ExitBlock ||
		!strings.Contains(stderr.String(), "--nri-judged") {
		t.Errorf("bad --nri-judged: exit %d, %q", code, stderr.String())
	}
}
