package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// evalStdin runs `patchgate eval` with in as its stdin.
func evalStdin(t *testing.T, in []byte, args ...string) (int, string, string) {
	t.Helper()
	old := stdin
	stdin = bytes.NewReader(in)
	defer func() { stdin = old }()
	var out, errOut bytes.Buffer
	code := dispatch(builtinUnlessPolicy(append([]string{"eval"}, args...)), &out, &errOut)
	return code, out.String(), errOut.String()
}

// --spec - reads the spec from stdin and decides as the file does.
func TestEvalSpecFromStdin(t *testing.T) {
	spec := filepath.Join(specFixtures, "privileged-fail", "config.json")
	data, err := os.ReadFile(spec)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"--policy", filepath.Join(examplePolicy, "baseline.yaml"), "--kernel-state", filepath.Join(kernelFixtures, "patched.json"), "--now", fixtureNow, "-o", "json"}
	code, fromStdin, errOut := evalStdin(t, data, append([]string{"--spec", "-"}, args...)...)
	if code != exitDenied {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var out, errOut2 bytes.Buffer
	if c := dispatch(builtinUnlessPolicy(append([]string{"eval", "--spec", spec}, args...)), &out, &errOut2); c != exitDenied || out.String() != fromStdin {
		t.Fatalf("file: exit %d\n%s\nstdin:\n%s", c, out.String(), fromStdin)
	}
}

// Malformed input is an error (exit 2), never a pass: from a file or stdin,
// as the container or as the pod.
func TestEvalMalformedInput(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(specFixtures, "baseline", "config.json")
	for name, in := range map[string]string{
		"empty":             "",
		"not json":          "process: {}\n",
		"empty object":      "{}",
		"trailing":          `{"process":{},"linux":{}} {}`,
		"duplicate key":     `{"process":{},"process":{},"linux":{}}`,
		"crictl no spec":    `{"status":{"id":"a","metadata":{"name":"n"}},"info":{"sandboxID":"b"}}`,
		"crictl list":       `[{"status":{}}]`,
		"crictl other kind": `{"status":{"id":"a","metadata":{"name":"n"}},"info":{"runtimeSpec":{"process":{},"linux":{}}}}`,
	} {
		t.Run(name, func(t *testing.T) {
			code, out, errOut := evalStdin(t, []byte(in), "--spec", "-")
			if code != exitInvalid || out != "" || !strings.Contains(errOut, "--spec: stdin: invalid container input") {
				t.Errorf("stdin: exit %d out %q err %q", code, out, errOut)
			}
			p := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".json")
			if err := os.WriteFile(p, []byte(in), 0o600); err != nil {
				t.Fatal(err)
			}
			var o, e bytes.Buffer
			if c := dispatch(builtinUnlessPolicy([]string{"eval", "--spec", good, "--sandbox-spec", p}), &o, &e); c != exitInvalid || o.Len() != 0 || !strings.Contains(e.String(), "--sandbox-spec: "+p) {
				t.Errorf("sandbox: exit %d out %q err %q", c, o.String(), e.String())
			}
		})
	}
	if code, _, errOut := evalStdin(t, nil, "--spec", "-", "--sandbox-spec", "-"); code != exitInvalid || !strings.Contains(errOut, "only one of") {
		t.Errorf("both stdin: exit %d %s", code, errOut)
	}
}

// crictl inspect output on stdin with the pod's crictl inspectp: the pod's
// annotation exempts the hostPID exporter from hostNamespaces under
// baseline, as the NRI plugin would decide; the container's output alone
// says what it lacks. (The recording containerd's private root makes its
// /etc/hosts mounts host paths here: examples/tests/crictl adds the
// runtimeDirs drop-in that admits them.)
func TestEvalCrictlInspect(t *testing.T) {
	specs := "../../examples/tests/specs"
	data, err := os.ReadFile(filepath.Join(specs, "exporter.inspect.json"))
	if err != nil {
		t.Fatal(err)
	}
	pol := []string{"--policy", filepath.Join(examplePolicy, "baseline.yaml"), "--kernel-state", filepath.Join(kernelFixtures, "patched.json"), "--now", fixtureNow}
	code, out, errOut := evalStdin(t, data, append([]string{"--spec", "-", "--sandbox-spec", filepath.Join(specs, "exporter.inspectp.json")}, pol...)...)
	if code != exitDenied || !strings.Contains(out, `"exporter" in pod monitoring/exporter (crictl inspect)`) || !strings.Contains(out, "exemptions applied: annotated-monitoring") ||
		strings.Contains(out, "hostNamespaces") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, _ = evalStdin(t, data, append([]string{"--spec", "-"}, pol...)...)
	if code != exitDenied || !strings.Contains(out, "pod: labels and annotations not given") || !strings.Contains(out, "deferred (input not seen): hostNamespaces") ||
		strings.Contains(out, "annotated-monitoring") {
		t.Fatalf("without the pod: exit %d\n%s", code, out)
	}
	// Another pod's inspectp is refused.
	code, _, errOut = evalStdin(t, data, append([]string{"--spec", "-", "--sandbox-spec", filepath.Join(specs, "root.inspectp.json")}, pol...)...)
	if code != exitInvalid || !strings.Contains(errOut, "is not container \"exporter\"'s") {
		t.Fatalf("another pod: exit %d %s", code, errOut)
	}
}
