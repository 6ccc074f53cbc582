package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/patchgate/patchgate/internal/fstree"
	"github.com/patchgate/patchgate/policy"
)

func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPolicyValidateExamples(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(examplePolicy, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCmd(t, append([]string{"policy", "validate"}, files...)...)
	if code != exitOK || errs != "" || strings.Count(out, ": valid (policy ") != 4 {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, out, errs)
	}
}

func TestPolicyValidateListsEveryError(t *testing.T) {
	bad := writeTemp(t, "bad.yaml", `apiVersion: patchgate.dev/v1alpha1
kind: NodePolicy
spec:
  defaultAction: deny
  rules:
    runAsRoot: {action: enforce, whenKernelBehnd: enforce}
  exemptions:
    - {name: x, rules: [runAsRoot]}
`)
	good := filepath.Join(examplePolicy, "baseline.yaml")
	code, out, errs := runCmd(t, "policy", "validate", bad, good)
	want := bad + `:4: spec.defaultAction: unknown action "deny" (want enforce, warn, audit or off)
` + bad + `:6: spec.rules.runAsRoot.whenKernelBehnd: unknown key (known keys: action, whenKernelBehind)
` + bad + `:8: spec.exemptions[0]: an exemption must set at least one of namespaces, images, containers, podLabels
`
	if code != exitInvalid || errs != want {
		t.Fatalf("exit %d, stderr:\n%s\nwant:\n%s", code, errs, want)
	}
	if !strings.Contains(out, good+": valid") {
		t.Errorf("the valid file is not reported: %s", out)
	}
	if code, _, errs := runCmd(t, "policy", "validate"); code != exitInvalid || !strings.Contains(errs, "give at least 1 policy file or directory") {
		t.Errorf("no path: %d %s", code, errs)
	}
	if code, _, _ := runCmd(t, "policy", "frobnicate"); code != exitInvalid {
		t.Errorf("unknown subcommand: %d", code)
	}
}

func TestPolicyShow(t *testing.T) {
	code, out, errs := runCmd(t, "policy", "show")
	if code != exitOK || !strings.HasPrefix(out, `# effective policy "default", sha256:`) {
		t.Fatalf("default: %d %s %s", code, out, errs)
	}
	// The defaults are printed.
	for _, want := range []string{
		"allowed: [AUDIT_WRITE, CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, MKNOD, NET_BIND_SERVICE, NET_RAW, SETFCAP, SETGID, SETPCAP, SETUID, SYS_CHROOT]",
		"denied: []",
		"maskedPaths: [/proc/acpi, /proc/kcore, /proc/keys, /proc/latency_stats, /proc/timer_list, /proc/timer_stats, /proc/sched_debug, /proc/scsi, /sys/firmware]",
		"readonlyPaths: [/proc/asound, /proc/bus, /proc/fs, /proc/irq, /proc/sys, /proc/sysrq-trigger]",
		"# protected host paths, which no policy can allow (hostPathMounts): /run/patchgate, /var/lib/patchgate, /var/log/patchgate, /etc/patchgate,",
		"namespaces: [pid, ipc, network, uts]",
		"maxStateAge: 10m", "onError: deny", "admitWait: 1s",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("policy show lacks %q", want)
		}
	}
	// A minimal file gets every default, and show's output loads back to
	// the same effective policy.
	min := writeTemp(t, "min.yaml", "apiVersion: patchgate.dev/v1alpha1\nkind: NodePolicy\nmetadata: {name: min}\nspec: {defaultAction: warn}\n")
	code, out, errs = runCmd(t, "policy", "show", "--policy", min)
	if code != exitOK {
		t.Fatalf("%d %s", code, errs)
	}
	orig, err := policy.Load(min, "")
	if err != nil {
		t.Fatal(err)
	}
	back, err := policy.LoadBytes("shown.yaml", []byte(out))
	if err != nil || back.Digest() != orig.Digest() || !strings.Contains(out, "runAsRoot:\n      action: warn\n      whenKernelBehind: warn") {
		t.Errorf("round trip: %v %s %s\n%s", err, back.Digest(), orig.Digest(), out)
	}
	code, out, _ = runCmd(t, "policy", "show", "--policy", min, "-o", "json")
	if code != exitOK || !strings.Contains(out, `"defaultAction": "warn"`) {
		t.Errorf("json: %d %s", code, out)
	}
	if code, _, _ := runCmd(t, "policy", "show", "-o", "xml"); code != exitInvalid {
		t.Errorf("-o xml: %d", code)
	}
}

func TestEvalInvalidInput(t *testing.T) {
	spec := filepath.Join(specFixtures, "baseline", "config.json")
	badSpec := writeTemp(t, "config.json", `{"ociVersion": "1.2.0", "process": {"user": {"uid": 0}}}`)
	notJSON := writeTemp(t, "config.json", `{"process": `)
	badState := writeTemp(t, "state.json", `{"release": "x"}`)
	insecure := writeTemp(t, "p.yaml", "apiVersion: patchgate.dev/v1alpha1\nkind: NodePolicy\n")
	if err := os.Chmod(insecure, 0o666); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{}, "--spec is required"},
		{[]string{"--spec", badSpec}, "linux is missing"},
		{[]string{"--spec", notJSON}, "invalid OCI runtime spec"},
		{[]string{"--spec", spec + ".missing"}, "no such file"},
		{[]string{"--spec", spec, "--sandbox-spec", notJSON}, "--sandbox-spec"},
		{[]string{"--spec", spec, "--kernel-state", badState}, "observedAt is missing"},
		{[]string{"--spec", spec, "--policy", insecure}, "insecure policy file"},
		{[]string{"--spec", spec, "-o", "xml"}, `-o "xml"`},
		{[]string{"--spec", spec, "--now", "yesterday"}, "--now"},
		{[]string{"--spec", spec, "--label", "novalue"}, "not key=value"},
		{[]string{"--spec", spec, "extra"}, "unexpected argument"},
		{[]string{"--spec", spec, "--identity-from", "podman"}, `--identity-from "podman"`},
	} {
		code, out, errs := runCmd(t, append([]string{"eval"}, tc.args...)...)
		if code != exitInvalid || !strings.Contains(errs, tc.want) || out != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q, want exit 2 and %q", tc.args, code, out, errs, tc.want)
		}
	}
}

func TestEvalTextOutput(t *testing.T) {
	dir := filepath.Join(specFixtures, "runAsRoot-fail")
	code, out, _ := runCmd(t, "eval", "--policy", filepath.Join(examplePolicy, "kernel-aware.yaml"), "--spec", filepath.Join(dir, "config.json"),
		"--container", "app", "--kernel-state", filepath.Join(kernelFixtures, "patched.json"), "--now", fixtureNow)
	want := "decision: warn\npolicy: kernel-aware "
	if code != exitOK || !strings.HasPrefix(out, want) || !strings.Contains(out, "kernel: ok\nviolations:\n  warn     runAsRoot: container \"app\" must not run as uid 0 (process.user.uid)\n") {
		t.Errorf("patched: exit %d\n%s", code, out)
	}
	if !strings.Contains(out, "\nidentity: pod -, container app, image -; from flags (--identity-from none: the spec's annotations name nobody)\n") {
		t.Errorf("identity line missing:\n%s", out)
	}
	code, out, _ = runCmd(t, "eval", "--policy", filepath.Join(examplePolicy, "kernel-aware.yaml"), "--spec", filepath.Join(dir, "config.json"),
		"--container", "app", "--kernel-state", filepath.Join(kernelFixtures, "behind.json"), "--now", fixtureNow)
	if code != exitDenied || !strings.Contains(out, "decision: deny") || !strings.Contains(out, "enforce  runAsRoot:") {
		t.Errorf("behind: exit %d\n%s", code, out)
	}
	// The line the runtime would show names the kernel's cause and what
	// would admit the container; without --pod it is no pod: OCI words.
	for _, s := range []string{
		"\nmessage: [runAsRoot] container \"app\" must not run as uid 0 (process.user.uid); the node's kernel is behind ([kernelPatches] required live patch is not in force: \"livepatch_sample\" (in transition) (spec.kernel.requiredPatches); [kernelVersion] kernel release \"6.1.0-17-amd64\" is older than spec.kernel.minimumVersion \"6.1.0-18-amd64\"), so whenKernelBehind applies: on a patched kernel runAsRoot is warn",
		"what would admit it: the required live patch in force and an effective kernel version of at least spec.kernel.minimumVersion (patchgate check --apply on the node",
	} {
		if !strings.Contains(out, s) {
			t.Errorf("behind: output lacks %q:\n%s", s, out)
		}
	}
	// With the pod's identity, the pod's field.
	_, out, _ = runCmd(t, "eval", "--policy", filepath.Join(examplePolicy, "kernel-aware.yaml"), "--spec", filepath.Join(dir, "config.json"),
		"--namespace", "default", "--pod", "web", "--container", "app", "--kernel-state", filepath.Join(kernelFixtures, "behind.json"), "--now", fixtureNow)
	if !strings.Contains(out, "(process.user.uid); Kubernetes: must set securityContext.runAsNonRoot=true") {
		t.Errorf("behind, pod: output lacks the pod's field:\n%s", out)
	}
	// Stale state: the same file judged an hour later is unknown.
	code, out, _ = runCmd(t, "eval", "--policy", filepath.Join(examplePolicy, "kernel-aware.yaml"), "--spec", filepath.Join(dir, "config.json"),
		"--kernel-state", filepath.Join(kernelFixtures, "patched.json"), "--now", "2026-11-27T13:00:00Z")
	if code != exitDenied || !strings.Contains(out, "kernelStateUnknown: kernel live-patch state is 1h old") {
		t.Errorf("stale: exit %d\n%s", code, out)
	}
}

// Flags may follow the paths (as with kubectl): --node-name after the
// directory selects the overlay, and is not taken as a second path.
func TestPolicyValidateFlagsAfterArgs(t *testing.T) {
	dir := filepath.Join("..", "..", "examples", "policy-dir")
	_, before, _ := runCmd(t, "policy", "validate", "--node-name", "gpu-worker-1", dir)
	code, after, errs := runCmd(t, "policy", "validate", dir, "--node-name", "gpu-worker-1")
	if code != exitOK || errs != "" || strings.Count(after, ": valid (policy ") != 1 {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, after, errs)
	}
	if after != before {
		t.Fatalf("flag after the path read differently:\n%s\nvs flag first:\n%s", after, before)
	}
	_, other, _ := runCmd(t, "policy", "validate", dir, "--node-name", "other-node")
	if other == after {
		t.Fatalf("--node-name after the path was ignored: %s", other)
	}
}

// policy validate DIR checks the directory as every node reads it: the
// base and the base with each nodes/*.yaml overlay (--node-name: that
// node's alone), and refuses what no node reads (a *.yml drop-in, a
// dotfile), which the loader skips without a word at run time.
func TestPolicyValidateEveryNode(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pd")
	if err := fstree.Copy(filepath.Join("..", "..", "examples", "policy-dir"), dir); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCmd(t, "policy", "validate", dir)
	if code != exitOK || errs != "" || !strings.Contains(out, dir+": valid (policy \"fleet\"") || !strings.Contains(out, dir+" for node gpu-worker-1: valid (policy \"fleet-gpu\"") {
		t.Fatalf("the example: exit %d\nstdout %s\nstderr %s", code, out, errs)
	}
	broken := "apiVersion: patchgate.dev/v1alpha1\nkind: NodePolicy\nspec:\n  rules:\n    runAsRoot:\n      action: maybe\n"
	for _, f := range []string{"nodes/worker-3.yaml", "policy.d/20-x.yml", "policy.d/.30-y.yaml", "nodes/worker-4.yml"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(broken), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want := []validateError{
		{File: filepath.Join(dir, "policy.d/.30-y.yaml"), Message: "ignored by patchgate (only policy.d/*.yaml files are read, never names that begin with a dot); remove it, or rename it without the dot"},
		{File: filepath.Join(dir, "policy.d/20-x.yml"), Message: "ignored by patchgate (only policy.d/*.yaml files are read); rename it to 20-x.yaml"},
		{File: filepath.Join(dir, "nodes/worker-4.yml"), Message: "ignored by patchgate (only nodes/<node name>.yaml files are read, each by the node of that name); rename it to worker-4.yaml"},
		{File: filepath.Join(dir, "nodes/worker-3.yaml"), Line: 6, Key: "spec.rules.runAsRoot.action", Message: `unknown action "maybe" (want enforce, warn, audit or off)`},
	}
	for _, o := range []string{"json", "yaml"} {
		code, out, errs = runCmd(t, "policy", "validate", dir, "-o", o)
		var res validateResult
		if err := yaml.Unmarshal([]byte(out), &res); err != nil || code != exitInvalid || res.Valid {
			t.Fatalf("-o %s: exit %d, %v\nstdout %s\nstderr %s", o, code, err, out, errs)
		}
		if !slices.Equal(res.Errors, want) {
			t.Errorf("-o %s: errors\n%+v\nwant\n%+v", o, res.Errors, want)
		}
		var checked []string
		for _, p := range res.Policies {
			checked = append(checked, fmt.Sprintf("%s %v", p.Node, p.Valid))
		}
		if !slices.Equal(checked, []string{" true", "gpu-worker-1 true", "worker-3 false"}) {
			t.Errorf("-o %s: checked %q", o, checked)
		}
	}
	code, _, errs = runCmd(t, "policy", "validate", dir)
	if code != exitInvalid || !strings.Contains(errs, "nodes/worker-3.yaml:6: spec.rules.runAsRoot.action") || !strings.Contains(errs, "policy.d/20-x.yml: ignored by patchgate") || !strings.Contains(errs, dir+" for node worker-3: not valid") {
		t.Errorf("text: exit %d, stderr %s", code, errs)
	}
	// --node-name: that node's policy alone; the unread files still fail.
	code, out, errs = runCmd(t, "policy", "validate", dir, "--node-name", "gpu-worker-1")
	if code != exitInvalid || strings.Contains(errs, "worker-3.yaml") || !strings.Contains(errs, "20-x.yml") || strings.Count(out, ": valid") != 1 {
		t.Errorf("--node-name: exit %d\nstdout %s\nstderr %s", code, out, errs)
	}
	// A base error is reported once, not again for every overlay.
	if err := os.WriteFile(filepath.Join(dir, "policy.d", "20-x.yaml"), []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, errs = runCmd(t, "policy", "validate", dir)
	if n := strings.Count(errs, "policy.d/20-x.yaml:6:"); n != 1 {
		t.Errorf("a base error reported %d times:\n%s", n, errs)
	}
}
