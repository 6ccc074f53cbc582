package livepatch

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patchgate/patchgate/policy"
)

// Update scripts used as spec.remediation.command in these tests. They
// change the copied fixture tree the way a real update changes the host: the
// kernel shows a new live patch in sysfs. Each run appends a line to
// var/log/fixture-update.runs so tests can count runs.
const updateScript = `#!/bin/sh
root="$(cd "$(dirname "$0")/../.." && pwd)"
mkdir -p "$root/var/log" && echo run >>"$root/var/log/fixture-update.runs"
sleep "${1:-0}"
d="$root/sys/kernel/livepatch/livepatch_fix"
mkdir -p "$d/vmlinux" && echo 1 >"$d/enabled" && echo 0 >"$d/transition" && echo 1 >"$d/vmlinux/patched"
echo "livepatch_fix loaded"
`

// The kernel's refusal under module.sig_enforce=1 (VM-FACTS.md).
const failingScript = `#!/bin/sh
root="$(cd "$(dirname "$0")/../.." && pwd)"
mkdir -p "$root/var/log" && echo run >>"$root/var/log/fixture-update.runs"
echo "insmod: ERROR: could not insert module livepatch_fix.ko: Key was rejected by service" >&2
exit 1
`

func writeScript(t *testing.T, root, rel, body string) {
	t.Helper()
	p := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
}

func runs(t *testing.T, root string) int {
	b, err := os.ReadFile(filepath.Join(root, "var/log/fixture-update.runs"))
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "\n")
}

// behindWithout says the kernel is behind until patch name is in force.
func behindWithout(name string) BehindFunc {
	return func(k *policy.KernelState) bool { return !patchInForce(k, name) }
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func setup(t *testing.T, tree string, ropts []ReaderOption, opts ...RemediatorOption) (string, *Monitor, *Remediator) {
	t.Helper()
	root := copyTree(t, tree)
	r, err := NewReader(append([]ReaderOption{WithHostRoot(root)}, ropts...)...)
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMonitor(r)
	if err != nil {
		t.Fatal(err)
	}
	m.Refresh(context.Background())
	rem, err := NewRemediator(r, m, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return root, m, rem
}

func TestRemediateSingleFlight(t *testing.T) {
	root := copyTree(t, "debian12-nolivepatch")
	writeScript(t, root, "usr/sbin/fixture-update", updateScript)
	if err := os.MkdirAll(filepath.Join(root, "sys/kernel/livepatch"), 0o755); err != nil {
		t.Fatal(err)
	}
	r := must(NewReader(WithHostRoot(root)))
	m := must(NewMonitor(r))
	m.Refresh(context.Background())
	var outcomes []Outcome
	var omu sync.Mutex
	rem, err := NewRemediator(r, m, WithCommand([]string{"/usr/sbin/fixture-update", "2"}), WithBehind(behindWithout("livepatch_fix")),
		WithOnOutcome(func(o Outcome) { omu.Lock(); outcomes = append(outcomes, o); omu.Unlock() }))
	if err != nil {
		t.Fatal(err)
	}
	before := m.Snapshot()
	if patchInForce(before, "livepatch_fix") {
		t.Fatal("fixture already patched")
	}

	const callers = 100
	got := make([]Outcome, callers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < callers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			got[i] = rem.Ensure(context.Background(), 30*time.Second)
		}()
	}
	close(start)
	wg.Wait()
	patched := 0
	for i, o := range got {
		switch o.Status {
		case StatusPatched:
			patched++
		case StatusNotNeeded:
			// A caller the scheduler started after the run had finished.
		default:
			t.Fatalf("caller %d: %+v", i, o)
		}
	}
	if patched < callers/2 {
		t.Errorf("only %d of %d callers shared the run", patched, callers)
	}
	if n := runs(t, root); n != 1 {
		t.Errorf("%d concurrent callers ran the update %d times, want 1", callers, n)
	}
	// The state was refreshed right after the run.
	after := m.Snapshot()
	if !patchInForce(after, "livepatch_fix") || !after.ObservedAt.After(before.ObservedAt) {
		t.Errorf("state not refreshed after the update: %+v", after)
	}
	omu.Lock()
	defer omu.Unlock()
	if len(outcomes) != 1 || outcomes[0].Output != "livepatch_fix loaded" || !reflect.DeepEqual(outcomes[0].Commands, [][]string{{"/usr/sbin/fixture-update", "2"}}) {
		t.Errorf("recorded outcomes: %+v", outcomes)
	}
	if last, ok := rem.Last(); !ok || last.Status != StatusPatched || last.FinishedAt.Before(last.StartedAt) {
		t.Errorf("Last() = %+v, %v", last, ok)
	}
	// Now compliant: nothing runs.
	if o := rem.Ensure(context.Background(), time.Second); o.Status != StatusNotNeeded {
		t.Errorf("after patching: %+v", o)
	}
	if n := runs(t, root); n != 1 {
		t.Errorf("runs = %d after a not-needed Ensure", n)
	}
}

func TestRemediateRunningThenTimeout(t *testing.T) {
	root := copyTree(t, "debian12-nolivepatch")
	writeScript(t, root, "usr/sbin/fixture-update", updateScript)
	r := must(NewReader(WithHostRoot(root)))
	m := must(NewMonitor(r))
	m.Refresh(context.Background())
	// The timeout leaves a loaded machine time to start the script.
	rem := must(NewRemediator(r, m, WithCommand([]string{"fixture-update", "60"}), WithBehind(behindWithout("livepatch_fix")),
		WithRemediationTimeout(3*time.Second)))
	// A caller that does not wait gets "running".
	if o := rem.Ensure(context.Background(), 0); o.Status != StatusRunning {
		t.Fatalf("no wait: %+v", o)
	}
	// A caller whose context ends gets "running" too, and the run goes on.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if o := rem.Ensure(ctx, time.Minute); o.Status != StatusRunning {
		t.Fatalf("cancelled caller: %+v", o)
	}
	// A caller that waits shares the run and sees it time out.
	o := rem.Ensure(context.Background(), time.Minute)
	if o.Status != StatusFailed || !strings.Contains(o.Reason, "timed out") {
		t.Fatalf("timeout: %+v", o)
	}
	if n := runs(t, root); n != 1 {
		t.Errorf("runs = %d, want 1", n)
	}
	if patchInForce(m.Snapshot(), "livepatch_fix") {
		t.Error("a killed update must not have patched")
	}
}

func TestRemediateFailureAndRateLimit(t *testing.T) {
	root := copyTree(t, "debian12-nolivepatch")
	writeScript(t, root, "usr/sbin/fixture-update", failingScript)
	clk := &clock{t: fixedNow}
	r := must(NewReader(WithHostRoot(root)))
	m := must(NewMonitor(r))
	m.Refresh(context.Background())
	rem := must(NewRemediator(r, m, WithCommand([]string{"fixture-update"}), WithBehind(behindWithout("livepatch_fix")),
		WithBackoff(5*time.Minute), WithRemediationClock(clk.now)))
	o := rem.Ensure(context.Background(), time.Minute)
	if o.Status != StatusFailed || !strings.Contains(o.Reason, "Key was rejected by service") || !strings.Contains(o.Reason, "exited 1") {
		t.Fatalf("failure: %+v", o)
	}
	// Within the backoff: no new run, the reason says why.
	clk.add(time.Minute)
	o = rem.Ensure(context.Background(), time.Minute)
	if o.Status != StatusFailed || !strings.Contains(o.Reason, "rate limited") || !strings.Contains(o.Reason, "Key was rejected") {
		t.Fatalf("rate limit: %+v", o)
	}
	if n := runs(t, root); n != 1 {
		t.Fatalf("runs = %d within the backoff, want 1", n)
	}
	// After the backoff it runs again.
	clk.add(5 * time.Minute)
	o = rem.Ensure(context.Background(), time.Minute)
	if o.Status != StatusFailed || strings.Contains(o.Reason, "rate limited") {
		t.Fatalf("after backoff: %+v", o)
	}
	if n := runs(t, root); n != 2 {
		t.Errorf("runs = %d after the backoff, want 2", n)
	}
}

func TestRemediateSucceedsButStillBehind(t *testing.T) {
	root := copyTree(t, "debian12-nolivepatch")
	writeScript(t, root, "usr/sbin/fixture-update", updateScript)
	r := must(NewReader(WithHostRoot(root)))
	m := must(NewMonitor(r))
	m.Refresh(context.Background())
	rem := must(NewRemediator(r, m, WithCommand([]string{"fixture-update"}), WithBehind(behindWithout("some_other_patch"))))
	o := rem.Ensure(context.Background(), time.Minute)
	if o.Status != StatusFailed || !strings.Contains(o.Reason, "still behind") {
		t.Errorf("%+v", o)
	}
}

func TestRemediateKernelCareDefault(t *testing.T) {
	// kcarectl --update (the provider's default argv) applies the next
	// patch level; the refreshed state then has the new CVE and no update
	// pending.
	const cve = "CVE-2021-20177"
	behind := func(k *policy.KernelState) bool {
		return !slices.Contains(k.FixedCVEs, cve) || k.UpdatesPending == nil || *k.UpdatesPending
	}
	_, m, rem := setup(t, "ubuntu20-kernelcare", nil, WithBehind(behind))
	cmds, err := rem.Commands(m.Snapshot())
	if err != nil || !reflect.DeepEqual(cmds, [][]string{{"kcarectl", "--update"}}) {
		t.Fatalf("Commands = %v, %v", cmds, err)
	}
	if !behind(m.Snapshot()) {
		t.Fatal("fixture not behind")
	}
	o := rem.Ensure(context.Background(), time.Minute)
	if o.Status != StatusPatched || !strings.Contains(o.Output, "Kernel is safe") {
		t.Fatalf("%+v", o)
	}
	k := m.Snapshot()
	if !slices.Contains(k.FixedCVEs, cve) || k.EffectiveVersion != "5.4.0-1028.32" || *k.UpdatesPending {
		t.Errorf("after update: %+v", k)
	}
}

func TestRemediateKpatchLoadsRequiredModules(t *testing.T) {
	const mod = "kpatch_4_18_0_513_9_1_2_1"
	_, m, rem := setup(t, "rhel8-kpatch", nil, WithModules([]string{"kpatch_4_18_0_513_9_1_1_1", mod}), WithBehind(behindWithout(mod)))
	cmds, err := rem.Commands(m.Snapshot())
	if err != nil || !reflect.DeepEqual(cmds, [][]string{{"kpatch", "load", mod}}) {
		t.Fatalf("Commands = %v, %v (only the missing module is loaded)", cmds, err)
	}
	o := rem.Ensure(context.Background(), time.Minute)
	if o.Status != StatusPatched {
		t.Fatalf("%+v", o)
	}
	k := m.Snapshot()
	if !patchInForce(k, mod) || *k.UpdatesPending || len(k.Conflicts) != 0 {
		t.Errorf("after kpatch load: %+v", k)
	}
}

func TestRemediateDefaults(t *testing.T) {
	for tree, want := range map[string][]string{
		"ubuntu18-canonical-json": {"canonical-livepatch", "refresh"},
		"ol6-ksplice":             {"uptrack-upgrade", "-y"},
	} {
		_, m, rem := setup(t, tree, nil, WithBehind(func(*policy.KernelState) bool { return true }))
		cmds, err := rem.Commands(m.Snapshot())
		if err != nil || !reflect.DeepEqual(cmds, [][]string{want}) {
			t.Errorf("%s: Commands = %v, %v", tree, cmds, err)
		}
	}
	// sysfs only: no default, a clear failure.
	_, _, rem := setup(t, "debian12-enabled", nil, WithBehind(func(*policy.KernelState) bool { return true }))
	o := rem.Ensure(context.Background(), time.Minute)
	if o.Status != StatusFailed || !strings.Contains(o.Reason, "remediation.command") {
		t.Errorf("sysfs: %+v", o)
	}
	// The policy's command replaces the default.
	_, m, rem := setup(t, "ubuntu20-kernelcare", nil, WithBehind(func(*policy.KernelState) bool { return true }), WithCommand([]string{"/usr/local/bin/site-update", "--now"}))
	if cmds := must(rem.Commands(m.Snapshot())); !reflect.DeepEqual(cmds, [][]string{{"/usr/local/bin/site-update", "--now"}}) {
		t.Errorf("override: %v", cmds)
	}
	o = rem.Ensure(context.Background(), time.Minute)
	if o.Status != StatusFailed || !strings.Contains(o.Reason, "tool not found") {
		t.Errorf("missing override command: %+v", o)
	}
	if _, err := NewRemediator(nil, m); err == nil {
		t.Error("nil reader accepted")
	}
}

func TestRemediateWithPolicy(t *testing.T) {
	// The node service's wiring: behind and modules from the policy.
	const mod = "kpatch_4_18_0_513_9_1_2_1"
	p, err := policy.LoadBytes("policy.yaml", []byte("apiVersion: patchgate.dev/v1alpha1\nkind: NodePolicy\nmetadata: {name: t}\nspec:\n  kernel:\n    requiredPatches: ["+mod+"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, m, rem := setup(t, "rhel8-kpatch", nil, WithPolicy(p))
	if cmds, err := rem.Commands(m.Snapshot()); err != nil || !reflect.DeepEqual(cmds, [][]string{{"kpatch", "load", mod}}) {
		t.Fatalf("Commands = %v, %v", cmds, err)
	}
	if o := rem.Ensure(context.Background(), time.Minute); o.Status != StatusPatched {
		t.Fatalf("%+v", o)
	}
	if o := rem.Ensure(context.Background(), time.Minute); o.Status != StatusNotNeeded {
		t.Errorf("after: %+v", o)
	}
	r := must(NewReader(WithHostRoot(hostDir(t, "rhel8-kpatch"))))
	if _, err := NewRemediator(r, m); err == nil || !strings.Contains(err.Error(), "WithPolicy") {
		t.Errorf("no judge: %v", err)
	}
}
