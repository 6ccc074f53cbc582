package policy

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLayering keeps the engine below its front ends and the node service:
// policy is a pure library, so nothing it builds on may come from the packages
// that read the node (livepatch), serve decisions (service), or convert runtime
// input (plugin, hook, cmd). Shared helpers belong in internal/ (kver, for one).
func TestLayering(t *testing.T) {
	const module = "github.com/patchgate/patchgate/"
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", module+"policy").Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("go list -deps policy: %v\n%s", err, stderr)
	}
	forbidden := []string{"livepatch", "service", "plugin", "hook", "cmd"}
	seen := 0
	for _, dep := range strings.Fields(string(out)) {
		rel, ok := strings.CutPrefix(dep, module)
		if !ok {
			continue
		}
		seen++
		for _, f := range forbidden {
			if rel == f || strings.HasPrefix(rel, f+"/") {
				t.Errorf("policy depends on %s: the engine must not import %s/", dep, f)
			}
		}
	}
	if seen == 0 {
		t.Fatalf("go list -deps policy named no package of %s: %q", module, out)
	}
}
