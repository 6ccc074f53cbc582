package thin

import (
	"os/exec"
	"strings"
	"testing"
)

// The thin hook is the process a runtime starts for every container: it
// must not link the policy engine, YAML, protobuf, logrus, or regexps
// (built at init by the packages that use them), nor the NRI plugin.
func TestThinHookDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/patchgate/patchgate/cmd/patchgate-hook").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps listed only %q", deps)
	}
	forbidden := []string{
		"sigs.k8s.io/yaml", "go.yaml.in/yaml", "gopkg.in/yaml",
		"google.golang.org/protobuf", "github.com/golang/protobuf",
		"github.com/sirupsen/logrus", "regexp", "github.com/containerd/nri",
		"net", // blocking system calls do (wire.AskBundle); no poller to start
		"github.com/patchgate/patchgate/plugin",
	}
	// Of patchgate's own packages, only these.
	own := map[string]bool{
		"github.com/patchgate/patchgate/cmd/patchgate-hook":    true,
		"github.com/patchgate/patchgate/hook/thin":             true,
		"github.com/patchgate/patchgate/hook/ocistate":         true,
		"github.com/patchgate/patchgate/service/decision/wire": true,
		"github.com/patchgate/patchgate/internal/uuid":         true,
	}
	for _, d := range deps {
		for _, f := range forbidden {
			if d == f || strings.HasPrefix(d, f+"/") {
				t.Errorf("cmd/patchgate-hook links %s", d)
			}
		}
		if strings.HasPrefix(d, "github.com/patchgate/patchgate/") && !own[d] {
			t.Errorf("cmd/patchgate-hook links %s", d)
		}
		if strings.Contains(strings.SplitN(d, "/", 2)[0], ".") && !strings.HasPrefix(d, "github.com/patchgate/patchgate/") {
			t.Errorf("cmd/patchgate-hook links the module package %s: the thin hook uses the standard library only", d)
		}
	}
}
