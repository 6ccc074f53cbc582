//go:build e2e

// Package e2e holds patchgate's end-to-end tests against a real containerd v2.4.2 with NRI,
// real runc and real crictl (test/harness). Run them with `make e2e` (scripts/e2e.sh), which
// builds the tools first; `go test -tags e2e ./test/e2e/...` works too and builds them on
// first use. Under CI=true a missing prerequisite is a failure, not a skip.
package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/patchgate/patchgate/test/harness"
)

// tools are the binaries every test in the package uses; toolsErr is set when they could
// not be built, and each test then skips (or fails under CI=true) through requireTools.
var (
	tools    *harness.Tools
	toolsErr error
)

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	began := time.Now()
	tools, toolsErr = harness.EnsureTools(ctx, harness.ToolsOptions{Log: os.Stderr})
	cancel()
	if toolsErr == nil {
		fmt.Fprintf(os.Stderr, "e2e: tools ready in %s (rebuilt: %t, NRI variant %s)\n", time.Since(began).Round(time.Millisecond), tools.Rebuilt, tools.Variant)
	} else if !errors.Is(toolsErr, harness.ErrMissingPrerequisite) {
		fmt.Fprintf(os.Stderr, "e2e: building tools: %v\n", toolsErr)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// requireTools skips (fails under CI=true) when the prerequisites are missing.
func requireTools(t *testing.T) *harness.Tools {
	t.Helper()
	if toolsErr != nil {
		harness.SkipOrFail(t, toolsErr)
	}
	return tools
}
