package livepatch

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// transitionScript loads livepatch_fix the way insmod does on a real kernel:
// the command returns while the patch is enabled but still in transition, and
// the kernel finishes the transition on its own about a second later
// (test/vm shows 0.7-1.7 s on 6.1). $1 is the delay before transition drops to
// 0; "never" leaves it at 1.
const transitionScript = `#!/bin/sh
root="$(cd "$(dirname "$0")/../.." && pwd)"
d="$root/sys/kernel/livepatch/livepatch_fix"
mkdir -p "$d/vmlinux" && echo 1 >"$d/enabled" && echo 1 >"$d/transition" && echo 1 >"$d/vmlinux/patched"
if [ "$1" != never ]; then
  (sleep "$1"; echo 0 >"$d/transition") >/dev/null 2>&1 &
fi
echo "livepatch_fix loaded, transition running"
`

func transitionSetup(t *testing.T, delay string, timeout time.Duration) (string, *Remediator) {
	t.Helper()
	root := copyTree(t, "debian12-nolivepatch")
	writeScript(t, root, "usr/sbin/fixture-insmod", transitionScript)
	if err := os.MkdirAll(filepath.Join(root, "sys/kernel/livepatch"), 0o755); err != nil {
		t.Fatal(err)
	}
	r, err := NewReader(WithHostRoot(root))
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMonitor(r)
	if err != nil {
		t.Fatal(err)
	}
	m.Refresh(context.Background())
	rem, err := NewRemediator(r, m, WithCommand([]string{"/usr/sbin/fixture-insmod", delay}),
		WithBehind(behindWithout("livepatch_fix")), WithRemediationTimeout(timeout), WithBackoff(0))
	if err != nil {
		t.Fatal(err)
	}
	return root, rem
}

// An update is done when the kernel's transition is, not when the command
// returns.
func TestRemediateWaitsForTransition(t *testing.T) {
	_, rem := transitionSetup(t, "0.6", 30*time.Second)
	o := rem.Ensure(context.Background(), time.Minute)
	if o.Status != StatusPatched {
		t.Fatalf("want patched once the transition ended, got %+v", o)
	}
}

func TestRemediateTransitionNeverEnds(t *testing.T) {
	_, rem := transitionSetup(t, "never", time.Second)
	o := rem.Ensure(context.Background(), time.Minute)
	if o.Status != StatusFailed || !strings.Contains(o.Reason, "still in transition") {
		t.Fatalf("want failed, still in transition, got %+v", o)
	}
}
