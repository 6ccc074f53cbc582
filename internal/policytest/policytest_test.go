package policytest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// repo is the repository root, absolute, so test files written to a
// temporary directory can name its fixtures.
func repo(t *testing.T) string {
	t.Helper()
	abs, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// writeTest writes a test file whose %REPO% is the repository root.
func writeTest(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, FileName)
	if err := os.WriteFile(p, []byte(strings.ReplaceAll(body, "%REPO%", repo(t))), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

const header = `apiVersion: patchgate.dev/v1alpha1
kind: PolicyTest
metadata: {name: t}
policy: %REPO%/examples/policies/baseline.yaml
kernelStates:
  patched: {file: %REPO%/policy/testdata/kernel/patched.json}
  behind: {file: %REPO%/policy/testdata/kernel/behind.json}
  stale: {file: %REPO%/policy/testdata/kernel/patched.json, now: "2030-01-01T00:00:00Z"}
  none: {unknown: true}
  host: {hostRoot: %REPO%/livepatch/testdata/hosts/debian12-enabled}
`

func run(t *testing.T, dir, format string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Main(context.Background(), []string{dir}, format, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestPassingCases(t *testing.T) {
	dir := writeTest(t, header+`cases:
  - name: root admitted on a patched kernel
    spec: %REPO%/policy/testdata/specs/runAsRoot-fail/config.json
    kernel: patched
    expect: {decision: admit, rules: [], kernelBehind: false}
  - name: root refused on a stale state
    spec: %REPO%/policy/testdata/specs/runAsRoot-fail/config.json
    kernel: stale
    expect: {decision: refuse, rules: [kernelStateUnknown, runAsRoot], kernelBehind: true}
  - name: root refused with no state
    spec: %REPO%/policy/testdata/specs/runAsRoot-fail/config.json
    kernel: none
    expect: {decision: refuse, rules: [kernelStateUnknown, runAsRoot]}
  - name: privileged refused
    spec: %REPO%/policy/testdata/specs/privileged-fail/config.json
    kernel: host
    expect: {decision: refuse, rules: [capabilities, hostPathMounts, privileged, procMount, seccomp]}
  - name: annotated exporter in monitoring
    spec: %REPO%/policy/testdata/specs/exempt-annotation/config.json
    kernel: behind
    pod: {namespace: monitoring, annotations: {patchgate.dev/exempt: "true"}}
    expect: {decision: admit, rules: [], exemptions: [annotated-monitoring]}
`)
	code, out, errOut := run(t, dir, "text")
	if code != ExitPass {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "5 cases: 5 passed, 0 failed") || strings.Contains(out, "FAIL") {
		t.Errorf("report:\n%s", out)
	}
}

// TestWrongExpectationFails is the self-check: a case whose expectation
// is wrong fails with exit 1 and says what differs, in text and JSON.
func TestWrongExpectationFails(t *testing.T) {
	dir := writeTest(t, header+`cases:
  - name: privileged wrongly expected to pass
    spec: %REPO%/policy/testdata/specs/privileged-fail/config.json
    kernel: patched
    expect: {decision: admit, rules: [runAsRoot]}
  - name: right
    spec: %REPO%/policy/testdata/specs/baseline/config.json
    kernel: patched
    expect: {decision: admit, rules: []}
`)
	code, out, errOut := run(t, dir, "text")
	if code != ExitFail {
		t.Fatalf("exit %d, want 1\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"FAIL  privileged wrongly expected to pass",
		"decision: want admit, got refuse",
		"rules: expected but not reported: [runAsRoot]",
		"rules: reported but not expected: [capabilities hostPathMounts privileged procMount seccomp]",
		"enforce privileged:",
		"PASS  right",
		"2 cases: 1 passed, 1 failed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = run(t, dir, "json")
	if code != ExitFail {
		t.Fatalf("json: exit %d", code)
	}
	var rep Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Failed != 1 || rep.Passed != 1 || len(rep.Files) != 1 || rep.Files[0].Cases[0].Pass || len(rep.Files[0].Cases[0].Diff) != 3 ||
		rep.Files[0].Cases[0].Got.Decision != Refuse || rep.Files[0].Policy.Name != "baseline" {
		t.Errorf("json report: %s", out)
	}
}

// A rule left unjudged fails a case that does not expect it.
func TestDeferredIsCompared(t *testing.T) {
	dir := writeTest(t, header+`cases:
  - name: namespaces joined by path, no sandbox
    spec: %REPO%/policy/testdata/specs/hostNamespaces-deferred-cri/config.json
    kernel: patched
    expect: {decision: admit, rules: []}
`)
	code, out, _ := run(t, dir, "text")
	if code != ExitFail || !strings.Contains(out, "deferred: reported but not expected: [hostNamespaces]") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}

func TestInvalidTestFiles(t *testing.T) {
	for _, c := range []struct {
		name, body string
		want       []string
	}{
		{"unknown key and bad decision", header + `cases:
  - name: a
    spec: x.json
    kernel: patched
    expect: {decision: allow, rules: [runasroot]}
    extra: 1
`, []string{":15: cases[0] \"a\".expect.decision \"allow\": want admit, flag or refuse", ":15: cases[0] \"a\".expect.rules[0]: unknown rule \"runasroot\"", ":16: cases[0] \"a\": unknown key \"extra\""}},
		{"unknown kernel state", header + `cases:
  - name: a
    spec: x.json
    kernel: nope
    expect: {decision: admit, rules: []}
`, []string{":12: cases[0] \"a\": kernel \"nope\" is not in kernelStates"}},
		{"duplicate key", header + `cases:
  - name: a
    name: b
    spec: x.json
    kernel: patched
    expect: {decision: admit, rules: []}
`, []string{":13: cases[0]: key \"name\" appears twice"}},
		{"missing expect and duplicate case", header + `cases:
  - name: a
    spec: x.json
    kernel: patched
  - name: a
    spec: x.json
    kernel: patched
    expect: {decision: admit}
`, []string{":12: cases[0] \"a\": expect is required", ":15: cases[1]: name \"a\" is also cases[0]'s", ":18: cases[1] \"a\".expect: rules is required"}},
		{"yaml syntax", header + "cases:\n  - name: a\n   spec: x\n", []string{"yaml: line"}},
		{"missing spec file", header + `cases:
  - name: a
    spec: does-not-exist.json
    kernel: patched
    expect: {decision: admit, rules: []}
`, []string{`:12: case "a": spec: open `}},
		{"malformed spec", header + `cases:
  - name: a
    spec: %REPO%/policy/testdata/kernel/patched.json
    kernel: patched
    expect: {decision: admit, rules: []}
`, []string{`:12: case "a": spec: `, "process is missing"}},
		{"state with two sources", strings.Replace(header, "none: {unknown: true}", "none: {unknown: true, file: x.json}", 1) + `cases: []
`, []string{":9: kernelStates.none: give exactly one of", "cases: list at least one case"}},
		{"bad now", strings.Replace(header, `"2030-01-01T00:00:00Z"`, "yesterday", 1) + `cases: []
`, []string{`kernelStates.stale.now "yesterday": want an RFC 3339 time, e.g. 2026-11-27T12:00:00Z`}},
		{"wrong kind", strings.Replace(header, "kind: PolicyTest", "kind: NodePolicy", 1) + "cases: []\n", []string{":2: kind \"NodePolicy\": want PolicyTest"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := writeTest(t, c.body)
			code, out, errOut := run(t, dir, "text")
			if code != ExitInvalid {
				t.Fatalf("exit %d, want 2\n%s\n%s", code, out, errOut)
			}
			for _, w := range c.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("error lacks %q:\n%s", w, errOut)
				}
			}
			if !strings.Contains(errOut, FileName) {
				t.Errorf("error does not name the file:\n%s", errOut)
			}
		})
	}
}

// A directory without a test file is an error: a run that runs nothing
// must not pass.
func TestNoTestFile(t *testing.T) {
	code, _, errOut := run(t, t.TempDir(), "text")
	if code != ExitInvalid || !strings.Contains(errOut, "no "+FileName) {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if _, err := Find([]string{"/nonexistent"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Find: %v", err)
	}
}
