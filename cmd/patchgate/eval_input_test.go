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
