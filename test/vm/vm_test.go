//go:build vmtest

package vm

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patchgate/patchgate/policy"
)

// bootTimeout bounds one boot. Both boots together take about 30 s on a
// quiet 2-core machine and were seen to take 140 s at a load average of 60.
const bootTimeout = 5 * time.Minute

// skipOrFail skips with a visible reason, except under CI=true where a skip
// would hide that the proof did not run.
func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("vmtest cannot run, and CI=true makes that a failure: %s", msg)
	}
	t.Skipf("vmtest skipped: %s", msg)
}

// TestRealKernel boots a Debian 6.1 kernel twice under qemu TCG (the normal
// scenario and one with module.sig_enforce=1) and asserts each step that the
// guest's /init (test/vm/guest/init) ran. `make vmtest` prepares the kernel
// and the initramfs and sets VMTEST_KERNEL and VMTEST_INITRD.
func TestRealKernel(t *testing.T) {
	kernel, initrd := os.Getenv("VMTEST_KERNEL"), os.Getenv("VMTEST_INITRD")
	if kernel == "" || initrd == "" {
		skipOrFail(t, "VMTEST_KERNEL and VMTEST_INITRD are not set; run `make vmtest`, which prepares them")
	}
	for _, f := range []string{kernel, initrd} {
		if _, err := os.Stat(f); err != nil {
			skipOrFail(t, "%v; run `make vmtest`", err)
		}
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		skipOrFail(t, "qemu-system-x86_64 not found (scripts/install-deps.sh installs qemu-system-x86): %v", err)
	}
	logDir := os.Getenv("VMTEST_OUT")
	if logDir == "" {
		logDir = t.TempDir()
	}

	boots := []Boot{
		{Kernel: kernel, Initrd: initrd, Scenario: "main"},
		{Kernel: kernel, Initrd: initrd, Scenario: "sigenforce", Append: []string{"module.sig_enforce=1"}},
	}
	results := make([]*Result, len(boots))
	errs := make([]error, len(boots))
	var wg sync.WaitGroup
	for i := range boots {
		boots[i].Log = filepath.Join(logDir, "serial-"+boots[i].Scenario+".log")
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
			defer cancel()
			results[i], errs[i] = boots[i].Start(ctx)
		}()
	}
	wg.Wait()

	runs := map[string]*Run{}
	for i, b := range boots {
		res, err := results[i], errs[i]
		if err != nil {
			t.Fatalf("boot %s: %v", b.Scenario, err)
		}
		t.Logf("boot %s: %.1fs, serial log %s", b.Scenario, res.Duration.Seconds(), b.Log)
		if res.Run == nil || res.Run.Scenario == "" {
			if res.ExitErr != nil {
				skipOrFail(t, "qemu could not run the guest (%v): %s", res.ExitErr, strings.TrimSpace(res.Stderr))
			}
			t.Fatalf("boot %s: the guest never reached /init; console tail:\n%s", b.Scenario, tail(res.Serial, 30))
		}
		if res.ParseErr != nil {
			t.Fatalf("boot %s: %v", b.Scenario, res.ParseErr)
		}
		if res.Run.Scenario != b.Scenario {
			t.Fatalf("boot %s: guest ran scenario %q", b.Scenario, res.Run.Scenario)
		}
		if !res.Run.Done {
			last := "(none)"
			if s := res.Run.Last(); s != nil {
				last = s.ID
			}
			t.Fatalf("boot %s: the guest stopped in step %s (qemu: %v); console tail:\n%s",
				b.Scenario, last, res.ExitErr, tail(res.Serial, 30))
		}
		runs[b.Scenario] = res.Run
	}

	main, sig := runs["main"], runs["sigenforce"]
	t.Run("0-guest", func(t *testing.T) { testGuest(t, main) })
	t.Run("1-no-patches", func(t *testing.T) { testNoPatches(t, main) })
	t.Run("2-load-sample", func(t *testing.T) { testLoadSample(t, main) })
	t.Run("3-stack-and-disable", func(t *testing.T) { testStackDisable(t, main) })
	t.Run("4-atomic-replace", func(t *testing.T) { testReplace(t, main) })
	t.Run("5-remediation", func(t *testing.T) { testRemediation(t, main) })
	t.Run("6-refused-remediation", func(t *testing.T) { testRefused(t, sig) })
	t.Run("mirror-sysfs", func(t *testing.T) { testMirror(t, main) })
	t.Run("sysfs-dumps", func(t *testing.T) { testDumps(t, main) })
}

func tail(b []byte, n int) string {
	lines := strings.Split(strings.ReplaceAll(string(b), "\r", ""), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// step returns a completed step or fails the test naming it.
func step(t *testing.T, r *Run, id string) *Step {
	t.Helper()
	s := r.Step(id)
	if s == nil {
		t.Fatalf("step %s: the guest never ran it", id)
	}
	if !s.Complete {
		t.Fatalf("step %s: never finished", id)
	}
	return s
}

func describe(s *Step) string {
	return fmt.Sprintf("step %s (`%s`, rc=%d)\n--- stdout\n%s\n--- stderr\n%s\n--- sysfs before\n%s--- sysfs after\n%s",
		s.ID, s.Text("cmd"), s.RC, s.Text("stdout"), s.Text("stderr"),
		strings.Join(append(s.Sections["sysfs-before"], ""), "\n"),
		strings.Join(append(s.Sections["sysfs-after"], ""), "\n"))
}

func wantRC(t *testing.T, s *Step, rc int) {
	t.Helper()
	if s.RC != rc {
		t.Fatalf("%s: want exit %d", describe(s), rc)
	}
}

// checkOutput is `patchgate check -o json`: kernel, compliant and
// violations, and with --apply the state before and the remediation outcome.
type checkOutput struct {
	Kernel     policy.KernelState `json:"kernel"`
	Compliant  bool               `json:"compliant"`
	Violations []policy.Violation `json:"violations"`
	Before     *struct {
		Kernel     policy.KernelState `json:"kernel"`
		Compliant  bool               `json:"compliant"`
		Violations []policy.Violation `json:"violations"`
	} `json:"before"`
	Remediation *struct {
		Status   string     `json:"status"`
		Reason   string     `json:"reason"`
		Commands [][]string `json:"commands"`
		Output   string     `json:"output"`
	} `json:"remediation"`
}

func decodeCheck(t *testing.T, s *Step) checkOutput {
	t.Helper()
	var out checkOutput
	var keys map[string]json.RawMessage
	stdout := []byte(s.Text("stdout"))
	if err := json.Unmarshal(stdout, &keys); err != nil {
		t.Fatalf("%s: stdout is not check JSON: %v", describe(s), err)
	}
	for _, k := range []string{"kernel", "compliant", "violations"} {
		if _, ok := keys[k]; !ok {
			t.Fatalf("%s: check JSON has no %q", describe(s), k)
		}
	}
	if err := json.Unmarshal(stdout, &out); err != nil {
		t.Fatalf("%s: stdout is not check JSON: %v", describe(s), err)
	}
	return out
}

func hasRule(vs []policy.Violation, rule string) bool {
	for _, v := range vs {
		if v.Rule == rule {
			return true
		}
	}
	return false
}

func patchMap(t *testing.T, s *Step, k policy.KernelState) map[string]PatchState {
	t.Helper()
	m := map[string]PatchState{}
	for _, p := range k.Patches {
		if _, dup := m[p.Name]; dup {
			t.Fatalf("%s: patch %s reported twice", describe(s), p.Name)
		}
		m[p.Name] = PatchState{Enabled: p.Enabled, Transition: p.Transition}
	}
	return m
}

// mirrors fails unless patchgate reported exactly the patches, with exactly
// the enabled and transition values, that sysfs showed before and after the
// command. It returns false when sysfs changed during the command, so that
// no single state can be asserted.
func mirrors(t *testing.T, s *Step, out checkOutput) bool {
	t.Helper()
	want, ok := s.Stable()
	if !ok {
		return false
	}
	got := patchMap(t, s, out.Kernel)
	if FormatState(got) != FormatState(want) {
		t.Fatalf("%s: patchgate reported\n%swhile sysfs showed\n%s", describe(s), FormatState(got), FormatState(want))
	}
	return true
}

// checkSteps are the guest's `patchgate check -o json` steps.
func checkSteps(r *Run) []*Step {
	var out []*Step
	for _, s := range r.Steps {
		if s.Complete && strings.HasPrefix(s.Text("cmd"), "check_json ") {
			out = append(out, s)
		}
	}
	return out
}

func testGuest(t *testing.T, r *Run) {
	s := step(t, r, "0-kernel")
	wantRC(t, s, 0)
	if !regexp.MustCompile(`^6\.1\.\d+-\d+-amd64$`).MatchString(s.Text("stdout")) {
		t.Errorf("%s: want a Debian 6.1 release", describe(s))
	}
	s = step(t, r, "0-tainted")
	wantRC(t, s, 0)
	if s.Text("stdout") != "0" {
		t.Errorf("%s: want an untainted kernel before any patch", describe(s))
	}
	s = step(t, r, "0-livepatch-dir")
	wantRC(t, s, 0) // CONFIG_LIVEPATCH=y: the directory exists, empty.
}

func testNoPatches(t *testing.T, r *Run) {
	s := step(t, r, "1-check")
	wantRC(t, s, 1)
	out := decodeCheck(t, s)
	if out.Compliant || !hasRule(out.Violations, "kernelPatches") || len(out.Kernel.Patches) != 0 {
		t.Fatalf("%s: want not compliant, a kernelPatches violation and no patches", describe(s))
	}
	if out.Kernel.Release != step(t, r, "0-kernel").Text("stdout") {
		t.Errorf("%s: release %q is not uname -r", describe(s), out.Kernel.Release)
	}
	testEval(t, r, "1-eval", policy.Deny)
	testEval(t, r, "1-eval-host", policy.Deny) // the state read from the real sysfs by eval itself

	s = step(t, r, "1-check-text")
	wantRC(t, s, 1)
	if !strings.Contains(s.Text("stdout"), "livepatch_sample") {
		t.Errorf("%s: the text report does not name the missing patch", describe(s))
	}
}

func testLoadSample(t *testing.T, r *Run) {
	// The load window: steps 2-window-<attempt>-<n>, run while sysfs showed
	// transition=1. Where sysfs showed enabled=1 transition=1 both before and
	// after the check, the check can only have seen that state.
	seen := 0
	windows := r.StepsWithPrefix("2-window-")
	for _, s := range windows {
		if !s.Complete {
			t.Fatalf("step %s: never finished", s.ID)
		}
		st, ok := s.Stable()
		if !ok || st["livepatch_sample"] != (PatchState{Enabled: true, Transition: true}) {
			continue
		}
		seen++
		wantRC(t, s, 1)
		out := decodeCheck(t, s)
		p := patchMap(t, s, out.Kernel)["livepatch_sample"]
		if !p.Enabled || !p.Transition || out.Compliant || !hasRule(out.Violations, "kernelPatches") {
			t.Fatalf("%s: want livepatch_sample enabled, in transition, not in force (kernelPatches violation)", describe(s))
		}
	}
	if seen == 0 {
		t.Fatalf("the load transition window was never seen around a check (%d checks in %d attempts)",
			len(windows), len(r.StepsWithPrefix("2-insmod-")))
	}
	t.Logf("in-transition state seen by %d checks", seen)

	s := step(t, r, "2-settled")
	wantRC(t, s, 0)
	out := decodeCheck(t, s)
	p := patchMap(t, s, out.Kernel)["livepatch_sample"]
	if !out.Compliant || !p.Enabled || p.Transition || len(out.Violations) != 0 {
		t.Fatalf("%s: want compliant with livepatch_sample enabled and transitioned", describe(s))
	}
	testEval(t, r, "2-eval", policy.Warn)
	testEval(t, r, "2-eval-host", policy.Warn) // the state read from the real sysfs by eval itself

	ts := step(t, r, "2-tainted")
	taint, err := strconv.ParseUint(ts.Text("stdout"), 10, 64)
	if err != nil || taint&(1<<15) == 0 {
		t.Fatalf("%s: want taint bit 15 (K) set", describe(ts))
	}
	if !out.Kernel.LivepatchTainted {
		t.Fatalf("%s: livepatchTainted is false, but /proc/sys/kernel/tainted is %d", describe(s), taint)
	}
	cs := step(t, r, "2-cmdline")
	if cs.Text("stdout") != "this has been live patched" {
		t.Fatalf("%s: the sample is not really in force", describe(cs))
	}
}

// testEval: `patchgate eval` of runc's default (root) spec under
// examples/policies/kernel-aware.yaml, with the kernel state the check before
// it printed (--kernel-state) or read by eval itself (--host-root /). Root is blocked while the required patch is missing and
// admitted with a warning once it is in force.
func testEval(t *testing.T, r *Run, id string, want policy.Verdict) {
	t.Helper()
	s := step(t, r, id)
	// eval -o json: the decision, and which policy it read (the flag here).
	var out struct {
		policy.Decision
		PolicySource struct {
			Path string `json:"path"`
			From string `json:"from"`
			Note string `json:"note"`
		} `json:"policySource"`
		IdentitySource string `json:"identitySource"`
	}
	dec := json.NewDecoder(strings.NewReader(s.Text("stdout")))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("%s: stdout is not a decision: %v", describe(s), err)
	}
	d := out.Decision
	if out.PolicySource.From != "flag" || out.PolicySource.Path != "/etc/patchgate/kernel-aware.yaml" {
		t.Fatalf("%s: policySource %+v, want the --policy flag's file", describe(s), out.PolicySource)
	}
	var root *policy.Violation
	for i := range d.Violations {
		if d.Violations[i].Rule == "runAsRoot" {
			root = &d.Violations[i]
		}
	}
	if d.Verdict != want || root == nil || d.Policy.Name != "kernel-aware" {
		t.Fatalf("%s: want %s with a runAsRoot violation under kernel-aware", describe(s), want)
	}
	switch want {
	case policy.Deny:
		wantRC(t, s, 1)
		if !d.KernelBehind || root.Action != policy.ActionEnforce || !hasRule(d.Violations, "kernelPatches") {
			t.Fatalf("%s: want the kernel behind (kernelPatches) and root enforced", describe(s))
		}
	case policy.Warn:
		wantRC(t, s, 0)
		if d.KernelBehind || root.Action != policy.ActionWarn || hasRule(d.Violations, "kernelPatches") {
			t.Fatalf("%s: want the kernel up to date and root only warned", describe(s))
		}
	}
}

func testStackDisable(t *testing.T, r *Run) {
	for _, id := range []string{"3-insmod-version", "3-insmod-version2"} {
		wantRC(t, step(t, r, id), 0)
	}
	s := step(t, r, "3-stacked")
	wantRC(t, s, 0)
	out := decodeCheck(t, s)
	if !mirrors(t, s, out) || len(out.Kernel.Patches) != 3 {
		t.Fatalf("%s: want the three patches sysfs shows, in a stable state", describe(s))
	}
	pv := step(t, r, "3-stacked-proc-version")
	if pv.Text("stdout") != "version patched by livepatch_version2" {
		t.Fatalf("%s: livepatch_version2 is not on top of the stack", describe(pv))
	}

	// 3-disable-<attempt>: echo 0 > enabled, retried (after a reload) until
	// a check ran inside the unpatch window.
	disables := r.StepsWithPrefix("3-disable-")
	if len(disables) == 0 {
		t.Fatal("step 3-disable-0: the guest never ran it")
	}
	for _, d := range disables {
		wantRC(t, d, 0)
		// enabled=0 transition=1 at once, or, when every task could be
		// switched back at the write itself (seen under qemu TCG on a
		// fresh machine), the unpatch already over and the patch's
		// directory gone: the guest then reloads it and tries again.
		st, ok := d.Sysfs("sysfs-after")
		if !ok {
			t.Fatalf("%s: the sysfs dump after the write does not parse", describe(d))
		}
		if p, present := st["livepatch_version2"]; present && p != (PatchState{Enabled: false, Transition: true}) {
			t.Fatalf("%s: echo 0 > enabled should give enabled=0 transition=1 at once (or the patch gone)", describe(d))
		}
	}
	// While the unpatch runs, patchgate shows the disabled patch in transition.
	seen := 0
	for _, s := range r.StepsWithPrefix("3-disabling-") {
		if !s.Complete {
			t.Fatalf("step %s: never finished", s.ID)
		}
		out := decodeCheck(t, s)
		if !mirrors(t, s, out) {
			continue
		}
		if p, ok := patchMap(t, s, out.Kernel)["livepatch_version2"]; ok {
			if p.Enabled || !p.Transition {
				t.Fatalf("%s: want livepatch_version2 disabled and in transition", describe(s))
			}
			seen++
		}
	}
	if seen == 0 {
		t.Fatalf("the unpatch window of livepatch_version2 was never seen around a check (%d attempts)", len(disables))
	}
	t.Logf("disabling state seen by %d checks", seen)

	s = step(t, r, "3-gone")
	out = decodeCheck(t, s)
	if !mirrors(t, s, out) {
		t.Fatalf("%s: sysfs changed during the check", describe(s))
	}
	if _, still := patchMap(t, s, out.Kernel)["livepatch_version2"]; still || len(out.Kernel.Patches) != 2 {
		t.Fatalf("%s: the disabled patch should be gone once its transition ended", describe(s))
	}
	wantRC(t, s, 0)
	pv = step(t, r, "3-gone-proc-version")
	if pv.Text("stdout") != "version patched by livepatch_version" {
		t.Fatalf("%s: want the stack back to livepatch_version", describe(pv))
	}
	wantRC(t, step(t, r, "3-rmmod"), 0)
}

func testReplace(t *testing.T, r *Run) {
	wantRC(t, step(t, r, "4-insmod-replace"), 0)
	s := step(t, r, "4-replaced")
	out := decodeCheck(t, s)
	if !mirrors(t, s, out) {
		t.Fatalf("%s: sysfs changed during the check", describe(s))
	}
	got := patchMap(t, s, out.Kernel)
	if len(got) != 1 || got["livepatch_replace"] != (PatchState{Enabled: true}) {
		t.Fatalf("%s: want only livepatch_replace, enabled and transitioned", describe(s))
	}
	// The replace patch does not carry the sample's cmdline fix, so a policy
	// requiring livepatch_sample is no longer met.
	wantRC(t, s, 1)
	if out.Compliant || !hasRule(out.Violations, "kernelPatches") {
		t.Fatalf("%s: livepatch_sample was replaced; want a kernelPatches violation", describe(s))
	}
	pv := step(t, r, "4-replaced-proc-version")
	if pv.Text("stdout") != "version patched by livepatch_replace" {
		t.Fatalf("%s: the replace patch is not in force", describe(pv))
	}
	cl := step(t, r, "4-replaced-cmdline")
	if strings.Contains(cl.Text("stdout"), "live patched") {
		t.Fatalf("%s: the sample's fix should be gone after the atomic replace", describe(cl))
	}
}

func testRemediation(t *testing.T, r *Run) {
	wantRC(t, step(t, r, "5-unload"), 0)
	if s := step(t, r, "5-empty"); s.Text("stdout") != "" {
		t.Fatalf("%s: want no live patches before remediation", describe(s))
	}
	s := step(t, r, "5-before")
	wantRC(t, s, 1)
	if out := decodeCheck(t, s); out.Compliant || !hasRule(out.Violations, "kernelPatches") {
		t.Fatalf("%s: want not compliant before remediation", describe(s))
	}
	s = step(t, r, "5-apply")
	wantRC(t, s, 0)
	out := decodeCheck(t, s)
	if out.Before == nil || out.Before.Compliant || out.Remediation == nil || out.Remediation.Status != "patched" {
		t.Fatalf("%s: want before not compliant and remediation patched", describe(s))
	}
	if len(out.Remediation.Commands) == 0 || strings.Join(out.Remediation.Commands[0], " ") != "/sbin/insmod /lib/patches/livepatch-sample.ko" {
		t.Fatalf("%s: want the policy's remediation.command to have run", describe(s))
	}
	if p := patchMap(t, s, out.Kernel)["livepatch_sample"]; !out.Compliant || !p.Enabled || p.Transition {
		t.Fatalf("%s: want compliant after, with livepatch_sample in force", describe(s))
	}
	// After --apply returned, sysfs must already show the transition done:
	// patchgate waited for it, not only for insmod.
	if st, ok := s.Sysfs("sysfs-after"); !ok || st["livepatch_sample"] != (PatchState{Enabled: true}) {
		t.Fatalf("%s: check --apply returned before livepatch_sample was in force", describe(s))
	}
	s = step(t, r, "5-after")
	wantRC(t, s, 0)
	out = decodeCheck(t, s)
	if !out.Compliant || !mirrors(t, s, out) {
		t.Fatalf("%s: want compliant after remediation", describe(s))
	}
	if cl := step(t, r, "5-cmdline"); cl.Text("stdout") != "this has been live patched" {
		t.Fatalf("%s: the remediated patch is not in force", describe(cl))
	}
}

func testRefused(t *testing.T, r *Run) {
	const refusal = "Key was rejected by service"
	s := step(t, r, "6-insmod")
	if s.RC == 0 || !strings.Contains(s.Text("stderr"), refusal) {
		t.Fatalf("%s: with module.sig_enforce=1 insmod should fail with %q", describe(s), refusal)
	}
	s = step(t, r, "6-before")
	wantRC(t, s, 1)
	s = step(t, r, "6-apply")
	wantRC(t, s, 1)
	out := decodeCheck(t, s)
	if out.Remediation == nil || out.Remediation.Status != "failed" ||
		!strings.Contains(out.Remediation.Reason+"\n"+out.Remediation.Output, refusal) {
		t.Fatalf("%s: want a failed remediation reporting the kernel's %q", describe(s), refusal)
	}
	if out.Before == nil || out.Before.Compliant || out.Compliant {
		t.Fatalf("%s: want not compliant before and after", describe(s))
	}
	if st, _ := s.Sysfs("sysfs-after"); len(st) != 0 {
		t.Fatalf("%s: no patch can be loaded here", describe(s))
	}
	s = step(t, r, "6-after")
	wantRC(t, s, 1)
	if out := decodeCheck(t, s); out.Compliant || len(out.Kernel.Patches) != 0 {
		t.Fatalf("%s: the node should stay not compliant", describe(s))
	}
}

// testMirror holds every check in the run to the sysfs state around it.
func testMirror(t *testing.T, r *Run) {
	stable := 0
	for _, s := range checkSteps(r) {
		var out checkOutput
		if json.Unmarshal([]byte(s.Text("stdout")), &out) != nil {
			continue // reported by the scenario that ran it
		}
		if mirrors(t, s, out) {
			stable++
		}
	}
	if stable < 8 {
		t.Fatalf("only %d checks ran in a stable sysfs state", stable)
	}
}

var dumpLine = regexp.MustCompile(`^(d [0-7]{3} \S+|f [0-7]{3} \S+ (= .*|!)|l [0-7]{3} \S+ -> \S+)$`)

// testDumps checks the guest's sysfs snapshots and, with UPDATE_GOLDEN=1,
// keeps them as fixtures for the sysfs provider's replay test in livepatch/.
func testDumps(t *testing.T, r *Run) {
	want := map[string]string{ // label -> a line the snapshot must hold
		"empty":     "d 755 sys/kernel/livepatch",
		"loading":   "f 444 sys/kernel/livepatch/livepatch_sample/transition = 1",
		"sample":    "f 644 sys/kernel/livepatch/livepatch_sample/enabled = 1",
		"stacked":   "d 755 sys/kernel/livepatch/livepatch_version2/vmlinux/version_proc_show,1",
		"disabling": "f 444 sys/kernel/livepatch/livepatch_version2/transition = 1",
		"replaced":  "f 444 sys/kernel/livepatch/livepatch_replace/transition = 0",
	}
	labels := make([]string, 0, len(want))
	for l := range want {
		labels = append(labels, l)
	}
	sort.Strings(labels)
	release := step(t, r, "0-kernel").Text("stdout")
	for _, d := range r.Dumps {
		if !d.Complete {
			t.Fatalf("dump %s: incomplete", d.Label)
		}
		for _, l := range d.Lines {
			if !dumpLine.MatchString(l) {
				t.Fatalf("dump %s: malformed line %q", d.Label, l)
			}
		}
	}
	for _, label := range labels {
		// The guest dumps loading-<attempt> after each load of the sample;
		// the first one taken while the transition still ran is "loading".
		var d *Dump
		for _, c := range r.Dumps {
			if (c.Label == label || strings.HasPrefix(c.Label, label+"-")) && slices.Contains(c.Lines, want[label]) {
				d = c
				break
			}
		}
		if d == nil {
			t.Fatalf("no dump %s holds the line %q", label, want[label])
		}
		if label != "empty" && !taintedK(d.Lines) {
			t.Fatalf("dump %s: taint bit 15 (K) not set:\n%s", label, strings.Join(d.Lines, "\n"))
		}
		if os.Getenv("UPDATE_GOLDEN") == "1" {
			var b bytes.Buffer
			fmt.Fprintf(&b, "# livepatch sysfs of a real %s kernel under qemu, state %q: written by `UPDATE_GOLDEN=1 make vmtest`\n", release, label)
			lines := slices.Clone(d.Lines)
			sort.Slice(lines, func(i, j int) bool { return dumpPath(lines[i]) < dumpPath(lines[j]) })
			b.WriteString(strings.Join(lines, "\n") + "\n")
			path := filepath.Join("..", "..", "livepatch", "testdata", "vm", label+".txt")
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("wrote %s", path)
		}
	}
}

func taintedK(lines []string) bool {
	for _, l := range lines {
		if v, ok := strings.CutPrefix(l, "f 644 proc/sys/kernel/tainted = "); ok {
			n, err := strconv.ParseUint(v, 10, 64)
			return err == nil && n&(1<<15) != 0
		}
	}
	return false
}

// dumpPath is the path field of a dump line ("KIND MODE PATH ...").
func dumpPath(line string) string {
	f := strings.Fields(line)
	if len(f) < 3 {
		return line
	}
	return f[2]
}
