package policy

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/patchgate/patchgate/internal/trustedpath"
)

// writeTree writes files (relative path -> content) under a new directory with
// the modes Load accepts.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const header = "apiVersion: patchgate.dev/v1alpha1\nkind: NodePolicy\n"

func TestLoadMergesDropInsAndNodeOverlay(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"policy.yaml": header + `metadata: {name: fleet}
spec:
  defaultAction: warn
  kernel:
    tools: {kcarectl: /usr/bin/kcarectl, kpatch: /usr/sbin/kpatch}
    requiredPatches: [a, b]
  rules:
    runAsRoot: {action: enforce}
    capabilities: {allowed: [CHOWN, KILL]}
  exemptions:
    - {name: first, namespaces: [kube-system]}
`,
		"policy.d/20-later.yaml": header + `spec:
  kernel:
    requiredPatches: [c]
  exemptions:
    - {name: third, containers: [debug]}
`,
		"policy.d/10-earlier.yaml": header + `spec:
  kernel:
    tools: {kpatch: /opt/kpatch}
    maxStateAge: 5m
  rules:
    runAsRoot: {whenKernelBehind: enforce, action: audit}
  exemptions:
    - {name: second, images: ["registry.k8s.io/*"]}
`,
		"policy.d/30-ignored.yml":  "this is not read: only *.yaml",
		"policy.d/.hidden.yaml":    "nor this",
		"nodes/node-1.yaml":        header + "metadata: {name: fleet-node-1}\nspec:\n  rules:\n    seccomp: {action: off}\n",
		"nodes/node-2.yaml":        header + "spec: {defaultAction: off}\n",
		"nodes/node-1.yaml.rpmnew": "not read",
	})
	p, err := Load(dir, "node-1")
	if err != nil {
		t.Fatal(err)
	}
	s := p.Spec
	if p.Name() != "fleet-node-1" {
		t.Errorf("name = %q, want the node overlay's", p.Name())
	}
	if got := s.Kernel.Tools; len(got) != 2 || got["kcarectl"] != "/usr/bin/kcarectl" || got["kpatch"] != "/opt/kpatch" {
		t.Errorf("tools = %v: maps merge by key, later files win", got)
	}
	if !slices.Equal(s.Kernel.RequiredPatches, []string{"c"}) {
		t.Errorf("requiredPatches = %v: lists are replaced", s.Kernel.RequiredPatches)
	}
	if s.Kernel.MaxStateAge.String() != "5m" {
		t.Errorf("maxStateAge = %s", s.Kernel.MaxStateAge)
	}
	if s.Rules.RunAsRoot.Action != ActionAudit || s.Rules.RunAsRoot.WhenKernelBehind != ActionEnforce {
		t.Errorf("runAsRoot = %+v", s.Rules.RunAsRoot)
	}
	if !slices.Equal(s.Rules.Capabilities.Allowed, []string{"CHOWN", "KILL"}) {
		t.Errorf("capabilities.allowed = %v", s.Rules.Capabilities.Allowed)
	}
	if s.Rules.Privileged.Action != ActionWarn || s.Rules.Privileged.WhenKernelBehind != ActionWarn {
		t.Errorf("privileged = %+v, want defaultAction warn", s.Rules.Privileged)
	}
	if s.Rules.Seccomp.Action != ActionOff {
		t.Errorf("seccomp = %+v, want the node overlay's off", s.Rules.Seccomp)
	}
	var names []string
	for _, e := range s.Exemptions {
		names = append(names, e.Name)
	}
	if !slices.Equal(names, []string{"first", "second", "third"}) {
		t.Errorf("exemptions = %v: appended in file order", names)
	}
	wantSources := []string{"policy.yaml", "policy.d/10-earlier.yaml", "policy.d/20-later.yaml", "nodes/node-1.yaml"}
	for i := range wantSources {
		wantSources[i] = filepath.Join(dir, wantSources[i])
	}
	if !slices.Equal(p.Sources, wantSources) {
		t.Errorf("sources = %v, want %v", p.Sources, wantSources)
	}

	other, err := Load(dir, "node-3")
	if err != nil {
		t.Fatal(err)
	}
	if other.Name() != "fleet" || other.Digest() == p.Digest() {
		t.Errorf("node-3 got %q %s: no overlay applies", other.Name(), other.Digest())
	}
	none, err := Load(dir, "")
	if err != nil || none.Digest() != other.Digest() {
		t.Errorf("empty node name: %v, digest %s want %s", err, none.Digest(), other.Digest())
	}
	if _, err := Load(dir, "../policy"); !errors.Is(err, ErrInvalid) {
		t.Errorf("node name with a slash: %v", err)
	}
}

func TestLoadReportsEveryErrorWithFileAndLine(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"policy.yaml": header + `metadata: {name: x}
spec:
  defaultAction: block
  kernel:
    maxStateAge: soon
  rules:
    runAsRoot: {action: enforce, whenKernelBehind: always}
    privileged: {acton: enforce}
    hostPathMounts: {allowReadOnly: "yes"}
  exemptions:
    - namespaces: [kube-system]
      rules: [nonsense]
`,
		"policy.d/10-fix.yaml": header + "spec:\n  kernel:\n    maxStateAge: 5m\n    tools: {kpatch: kpatch}\n",
	})
	_, err := Load(dir, "")
	var ve *ValidationError
	if !errors.As(err, &ve) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v, want a *ValidationError", err)
	}
	main := filepath.Join(dir, "policy.yaml")
	drop := filepath.Join(dir, "policy.d/10-fix.yaml")
	want := []string{
		main + `:5: spec.defaultAction: unknown action "block" (want enforce, warn, audit or off)`,
		main + `:7: spec.kernel.maxStateAge: invalid duration "soon" (want a Go duration such as 30s, 10m, 1h)`,
		main + `:9: spec.rules.runAsRoot.whenKernelBehind: unknown action "always" (want enforce, warn, audit or off)`,
		main + `:10: spec.rules.privileged.acton: unknown key (known keys: action, whenKernelBehind)`,
		main + `:11: spec.rules.hostPathMounts.allowReadOnly: expected true or false, got string "yes"`,
		main + `:13: spec.exemptions[0].name: missing (every exemption needs a name for the audit log)`,
		main + `:14: spec.exemptions[0].rules[0]: unknown rule "nonsense" (known rules: ` + strings.Join(RuleIDs(), ", ") + `)`,
		drop + `:6: spec.kernel.tools.kpatch: "kpatch" must be an absolute path`,
	}
	var got []string
	for _, e := range ve.Errors {
		got = append(got, e.Error())
	}
	if !slices.Equal(got, want) {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestLoadBytesRejects(t *testing.T) {
	for _, tc := range []struct{ name, doc, want string }{
		{"empty", "", "x.yaml: empty policy file"},
		{"not a mapping", "- a\n- b\n", "x.yaml:1: a policy file must be a mapping"},
		{"syntax", header + "spec:\n  kernel: [\n", "x.yaml:4: did not find expected node content"},
		{"two documents", header + "---\n" + header, "x.yaml:3: more than one YAML document"},
		{"missing apiVersion", "kind: NodePolicy\n", "x.yaml:1: apiVersion: missing"},
		{"wrong kind", "apiVersion: patchgate.dev/v1alpha1\nkind: Pod\n", `x.yaml:2: kind: "Pod" is not supported`},
		{"duplicate key", header + "spec:\n  defaultAction: warn\n  defaultAction: off\n", "x.yaml:5: spec.defaultAction: duplicate key"},
		{"alias", header + "spec:\n  kernel:\n    requiredPatches: &p [a]\n    requiredCVEs: *p\n", "x.yaml:5: spec.kernel.requiredPatches: YAML anchors and aliases are not supported"},
		{"merge key", header + "spec:\n  rules:\n    <<: {}\n", "x.yaml:5: spec.rules: keys must be plain strings"},
		{"list for string", header + "metadata: {name: [a]}\n", "x.yaml:3: metadata.name: expected a string, got a list"},
		{"int for bool", header + "spec: {audit: {sync: 1}}\n", "x.yaml:3: spec.audit.sync: expected true or false, got integer 1"},
		{"string for int", header + "spec: {audit: {maxBackups: ten}}\n", `x.yaml:3: spec.audit.maxBackups: expected an integer, got string "ten"`},
		{"negative", header + "spec: {audit: {maxSizeMB: -1}}\n", "x.yaml:3: spec.audit.maxSizeMB: must not be negative"},
		{"int overflow", header + "spec: {audit: {maxSizeMB: 18446744073709551615}}\n", "x.yaml:3: spec.audit.maxSizeMB: integer 18446744073709551615 out of range"},
		{"float for int", header + "spec: {audit: {maxSizeMB: 1.5}}\n", "x.yaml:3: spec.audit.maxSizeMB: expected an integer, got number 1.5"},
		{"bad capability", header + "spec: {rules: {capabilities: {allowed: [CAP_SYS_ADMN]}}}\n", `unknown capability "CAP_SYS_ADMN"`},
		{"bad namespace", header + "spec: {rules: {hostNamespaces: {namespaces: [net]}}}\n", `unknown namespace type "net"`},
		{"relative denied", header + "spec: {rules: {hostPathMounts: {denied: [etc]}}}\n", `"etc" must be an absolute path`},
		{"device path", header + "spec: {rules: {hostDevices: {allowed: [/dev/fuse]}}}\n", `x.yaml:3: spec.rules.hostDevices.allowed[0]: "/dev/fuse" is a device path; devices are judged by type and number, not by path: write "c <major>:<minor>" or "b <major>:<minor>"`},
		{"device glob", header + "spec:\n  rules:\n    hostDevices:\n      allowed:\n        - c 10:229\n        - /dev/nvidia*\n", `x.yaml:8: spec.rules.hostDevices.allowed[1]: "/dev/nvidia*" is a device path`},
		{"device wildcard major", header + "spec: {rules: {hostDevices: {allowed: [\"c *:*\"]}}}\n", `"c *:*": major "*" must be a number from 0 to 4095`},
		{"device type a", header + "spec: {rules: {hostDevices: {allowed: [\"a 1:3\"]}}}\n", `"a 1:3" is not a device number`},
		{"device no minor", header + "spec: {rules: {hostDevices: {allowed: [\"c 10\"]}}}\n", `"c 10" is not a device number: want <major>:<minor>`},
		{"device minor range", header + "spec: {rules: {hostDevices: {allowed: [\"b 8:1048576\"]}}}\n", `minor "1048576" must be a number from 0 to 1048575, or *`},
		{"bad provider", header + "spec: {kernel: {provider: livepatchd}}\n", `unknown provider "livepatchd"`},
		{"bad CVE", header + "spec: {kernel: {requiredCVEs: [CVE-24-1]}}\n", `"CVE-24-1" is not a CVE ID`},
		{"zero maxStateAge", header + "spec: {kernel: {maxStateAge: 0s}}\n", "maxStateAge: must be greater than zero"},
		{"relative command", header + "spec: {remediation: {enabled: true, command: [kcarectl, --update]}}\n", `"kcarectl" must be an absolute path`},
		{"admitWait over timeout", header + "spec: {remediation: {timeout: 1s, admitWait: 2s}}\n", "admitWait: 2s must not exceed timeout 1s"},
		{"onError", header + "spec: {hook: {onError: ignore}}\n", `onError: "ignore" is not deny or allow`},
		{"exemption without matcher", header + "spec: {exemptions: [{name: all}]}\n", "an exemption must set at least one of"},
		{"annotation without namespaces", header + "spec: {exemptions: [{name: a, images: [x], annotation: patchgate.dev/exempt}]}\n", "must list the namespaces allowed to use it"},
		{"duplicate exemption", header + "spec: {exemptions: [{name: a, namespaces: [x]}, {name: a, namespaces: [y]}]}\n", `duplicate exemption name "a"`},
		{"empty container name", header + "spec:\n  exemptions:\n    - name: x\n      containers: [\"\"]\n", `x.yaml:6: spec.exemptions[0].containers[0]: empty container name`},
		{"blank container name", header + "spec: {exemptions: [{name: x, namespaces: [a], containers: [web, \" \"]}]}\n", "spec.exemptions[0].containers[1]: empty container name"},
		{"blank namespace", header + "spec: {exemptions: [{name: x, namespaces: [\"\\t\"]}]}\n", "spec.exemptions[0].namespaces[0]: empty namespace"},
		{"blank image", header + "spec: {exemptions: [{name: x, images: [\" \"]}]}\n", "spec.exemptions[0].images[0]: empty image pattern"},
		{"blank exemption name", header + "spec: {exemptions: [{name: \" \", images: [x]}]}\n", "spec.exemptions[0].name: missing"},
		{"blank label name", header + "spec: {exemptions: [{name: x, podLabels: {\" \": a}}]}\n", `spec.exemptions[0].podLabels: " " is not a label name`},
		{"blank annotation", header + "spec: {exemptions: [{name: x, namespaces: [a], annotation: \" \"}]}\n", `spec.exemptions[0].annotation: " " is not an annotation name`},
		{"null containers", header + "spec:\n  exemptions:\n    - name: x\n      namespaces: [a]\n      containers:\n", "x.yaml:7: spec.exemptions[0].containers: no value (leave the key out to match any)"},
		{"null rules", header + "spec: {exemptions: [{name: x, namespaces: [a], rules: ~}]}\n", "spec.exemptions[0].rules: no value"},
		{"null annotation", header + "spec: {exemptions: [{name: x, namespaces: [a], annotation: }]}\n", "spec.exemptions[0].annotation: no value"},
		{"null tag on a version", header + "spec: {kernel: {minimumVersion: !!null 6.1.0-18-amd64}}\n", `x.yaml:3: spec.kernel.minimumVersion: YAML tag !!null does not fit the value "6.1.0-18-amd64"`},
		{"null tag on a bool", header + "spec:\n  kernel:\n    denyWhenUpdatesPending: !!null true\n", `x.yaml:5: spec.kernel.denyWhenUpdatesPending: YAML tag !!null does not fit the value "true"`},
		{"null tag on an item", header + "spec: {kernel: {requiredPatches: [!!null a]}}\n", `spec.kernel.requiredPatches[0]: YAML tag !!null does not fit the value "a"`},
		{"custom tag on an action", header + "spec:\n  rules:\n    runAsRoot: {action: !x enforce}\n", "x.yaml:5: spec.rules.runAsRoot.action: unsupported YAML tag !x"},
		{"custom tag on a key", header + "metadata: {!x name: a}\n", "x.yaml:3: metadata.name: unsupported YAML tag !x"},
		{"custom tag on a mapping", header + "spec: {kernel: !x {}}\n", "spec.kernel: unsupported YAML tag !x"},
		{"custom tag on a label", header + "spec: {exemptions: [{name: a, podLabels: {app: !x web}}]}\n", "spec.exemptions[0].podLabels.app: unsupported YAML tag !x"},
		{"global tag", header + "spec: {defaultAction: !<tag:example.com,2024:action> warn}\n", "spec.defaultAction: unsupported YAML tag tag:example.com,2024:action"},
		{"binary tag", header + "metadata: {name: !!binary bmFtZQ==}\n", "metadata.name: unsupported YAML tag !!binary"},
		{"seq tag on a mapping", header + "spec: {audit: !!seq {}}\n", "spec.audit: unsupported YAML tag !!seq"},
		{"int tag on a word", header + "spec: {audit: {maxSizeMB: !!int ten}}\n", `spec.audit.maxSizeMB: YAML tag !!int does not fit the value "ten"`},
		{"bool tag on a word", header + "metadata: {name: !!bool maybe}\n", `metadata.name: YAML tag !!bool does not fit the value "maybe"`},
		{"line feed in name", header + "metadata:\n  name: \"team-a\\nnote: see wiki\"\n", `x.yaml:4: metadata.name: "team-a\nnote: see wiki": the character U+000A at byte 6 is not printable`},
		{"carriage return in name", header + "metadata: {name: \"a\\rb\"}\n", "x.yaml:3: metadata.name: \"a\\rb\": the character U+000D at byte 1"},
		{"next line in name", header + "metadata: {name: \"a\\Nb\"}\n", "metadata.name: \"a\\u0085b\": the character U+0085 at byte 1"},
		{"line separator in name", header + "metadata: {name: \"a\\Lb\"}\n", "metadata.name: \"a\\u2028b\": the character U+2028 at byte 1"},
		{"bidi override in name", header + "metadata: {name: \"a\\u202eb\"}\n", "metadata.name: \"a\\u202eb\": the character U+202E at byte 1"},
		{"tab in name", header + "metadata: {name: \"a\\tb\"}\n", "the character U+0009 at byte 1 is not printable"},
		{"line feed in exemption name", header + "spec: {exemptions: [{name: \"a\\nb\", images: [x]}]}\n", "spec.exemptions[0].name: \"a\\nb\": the character U+000A"},
		{"tools not a map", header + "spec: {kernel: {tools: [kpatch]}}\n", "x.yaml:3: spec.kernel.tools: expected a mapping, got a list"},
		{"tools duplicate", header + "spec:\n  kernel:\n    tools: {kpatch: /a, kpatch: /b}\n", "x.yaml:5: spec.kernel.tools.kpatch: duplicate key"},
		{"tools null value", header + "spec:\n  kernel:\n    tools: {kpatch: ~}\n", "x.yaml:5: spec.kernel.tools.kpatch: expected a value"},
		{"labels not strings", header + "spec: {exemptions: [{name: a, podLabels: {app: [x]}}]}\n", "spec.exemptions[0].podLabels.app: expected a string, got a list"},
		{"duration not a string", header + "spec: {kernel: {maxStateAge: [1m]}}\n", "spec.kernel.maxStateAge: expected a string, got a list"},
		{"negative duration", header + "spec: {kernel: {maxStateAge: -1m}}\n", `duration "-1m" must not be negative`},
		{"kernel rule in rules", header + "spec: {rules: {kernelPatches: {action: warn}}}\n", "spec.rules.kernelPatches: unknown key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadBytes("x.yaml", []byte(tc.doc))
			if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrInvalid containing %q", err, tc.want)
			}
		})
	}
}

// TestStandardTagsAccepted: a standard tag that says what the value already
// is changes nothing.
func TestStandardTagsAccepted(t *testing.T) {
	p, err := LoadBytes("x.yaml", []byte(header+`metadata: !!map {name: !!str 2024}
spec:
  kernel: {minimumVersion: !!str 6.1, denyWhenUpdatesPending: !!bool true, requiredPatches: !!seq [!!str a]}
  audit: {maxSizeMB: !!int 5, path: !!null , sync: !!null ~}
  exemptions: [{name: a, podLabels: {!!str app: !!str web}}]
`))
	if err != nil {
		t.Fatal(err)
	}
	k := p.Spec.Kernel
	if p.Name() != "2024" || k.MinimumVersion != "6.1" || !k.DenyWhenUpdatesPending || k.RequiredPatches[0] != "a" ||
		p.Spec.Audit.MaxSizeMB != 5 || p.Spec.Audit.Path != "/var/log/patchgate/audit.log" || p.Spec.Exemptions[0].PodLabels["app"] != "web" {
		t.Errorf("tagged values decoded as %+v %+v %+v", p.Metadata, k, p.Spec.Audit)
	}
}

func TestNullKeepsDefault(t *testing.T) {
	p, err := LoadBytes("x.yaml", []byte(header+"metadata: {name: n}\nspec:\n  kernel:\n    maxStateAge:\n  audit: ~\n"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Spec.Kernel.MaxStateAge.String() != "10m" || p.Spec.Audit.MaxSizeMB != 100 {
		t.Errorf("empty values did not keep the defaults: %+v %+v", p.Spec.Kernel, p.Spec.Audit)
	}
}

func TestLoadRefusesInsecureFiles(t *testing.T) {
	good := header + "metadata: {name: n}\n"
	t.Run("group-writable file", func(t *testing.T) {
		dir := writeTree(t, map[string]string{"policy.yaml": good})
		f := filepath.Join(dir, "policy.yaml")
		if err := os.Chmod(f, 0o664); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(f, ""); !errors.Is(err, ErrInsecure) {
			t.Fatalf("file: err = %v, want ErrInsecure", err)
		}
		if _, err := Load(dir, ""); !errors.Is(err, ErrInsecure) {
			t.Fatalf("dir: err = %v, want ErrInsecure", err)
		}
	})
	t.Run("other-writable drop-in directory", func(t *testing.T) {
		dir := writeTree(t, map[string]string{"policy.yaml": good, "policy.d/10.yaml": good})
		if err := os.Chmod(filepath.Join(dir, "policy.d"), 0o757); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(dir, ""); !errors.Is(err, ErrInsecure) {
			t.Fatalf("err = %v, want ErrInsecure", err)
		}
	})
	t.Run("group-writable policy directory", func(t *testing.T) {
		dir := writeTree(t, map[string]string{"policy.yaml": good})
		if err := os.Chmod(dir, 0o775); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(dir, ""); !errors.Is(err, ErrInsecure) {
			t.Fatalf("err = %v, want ErrInsecure", err)
		}
	})
	t.Run("insecure node overlay", func(t *testing.T) {
		dir := writeTree(t, map[string]string{"policy.yaml": good, "nodes/n1.yaml": good})
		if err := os.Chmod(filepath.Join(dir, "nodes/n1.yaml"), 0o646); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(dir, "n1"); !errors.Is(err, ErrInsecure) {
			t.Fatalf("err = %v, want ErrInsecure", err)
		}
		if _, err := Load(dir, "n2"); err != nil {
			t.Fatalf("another node's overlay is not read: %v", err)
		}
	})
	t.Run("not owned by root", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("needs root to give a file to another user")
		}
		dir := writeTree(t, map[string]string{"policy.yaml": good})
		f := filepath.Join(dir, "policy.yaml")
		if err := os.Chown(f, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(f, ""); !errors.Is(err, ErrInsecure) || !strings.Contains(err.Error(), "owned by uid 65534") {
			t.Fatalf("err = %v, want ErrInsecure", err)
		}
	})
	t.Run("missing policy.yaml", func(t *testing.T) {
		dir := writeTree(t, map[string]string{"policy.d/10.yaml": good})
		if _, err := Load(dir, ""); err == nil || !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("err = %v, want not exist", err)
		}
	})
}

func TestDigestIsOfTheEffectivePolicy(t *testing.T) {
	a, err := LoadBytes("a.yaml", []byte(header+"metadata: {name: n}\nspec: {rules: {seccomp: {action: warn}}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadBytes("b.yaml", []byte(header+"# same policy, other layout\nmetadata:\n  name: n\nspec:\n  defaultAction: enforce\n  rules:\n    seccomp:\n      action: warn\n      whenKernelBehind: warn\n"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := LoadBytes("c.yaml", []byte(header+"metadata: {name: n}\nspec: {rules: {seccomp: {action: audit}}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if a.Digest() != b.Digest() {
		t.Errorf("same effective policy, digests %s and %s", a.Digest(), b.Digest())
	}
	if a.Digest() == c.Digest() || !strings.HasPrefix(a.Digest(), "sha256:") || len(a.Digest()) != 71 {
		t.Errorf("digests %s %s", a.Digest(), c.Digest())
	}
}

func TestShowRoundTrips(t *testing.T) {
	for _, p := range append(examplePolicies(t), Default()) {
		out, err := p.MarshalYAML()
		if err != nil {
			t.Fatal(err)
		}
		back, err := LoadBytes("show.yaml", out)
		if err != nil {
			t.Fatalf("%s: policy show output does not load: %v\n%s", p.Name(), err, out)
		}
		if back.Digest() != p.Digest() {
			t.Errorf("%s: digest %s after show, %s before", p.Name(), back.Digest(), p.Digest())
		}
	}
}

// TestLoadReadOnlyBindIsNoException: a world-writable directory mounted
// read-only (a hostPath volume with readOnly, podman -v dir:ro) is still
// written through its host path by anyone, so the read-only mount alone does
// not make it safe: refused, with root's files in it and with a 0666 file.
// Only kubelet's ConfigMap layout is (TestLoadConfigMapLayout).
func TestLoadReadOnlyBindIsNoException(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to bind-mount")
	}
	src, dst := t.TempDir(), t.TempDir()
	if err := os.Chmod(src, 0o777); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(src, "policy.yaml")
	if err := os.WriteFile(f, []byte(header+"metadata: {name: bound}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount(src, dst, "", syscall.MS_BIND, ""); err != nil {
		t.Skipf("cannot bind-mount here: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dst, 0); err != nil {
			t.Errorf("unmount %s: %v", dst, err)
		}
	})
	if err := syscall.Mount("", dst, "", syscall.MS_REMOUNT|syscall.MS_BIND|syscall.MS_RDONLY, ""); err != nil {
		t.Fatal(err)
	}
	if !trustedpath.ReadOnlyFS(dst) || !trustedpath.MountRoot(dst) {
		t.Fatalf("%s: read-only %v, mount root %v: the test does not test the exception", dst, trustedpath.ReadOnlyFS(dst), trustedpath.MountRoot(dst))
	}
	for _, mode := range []os.FileMode{0o644, 0o666} {
		if err := os.Chmod(f, mode); err != nil {
			t.Fatal(err)
		}
		_, err := Load(dst, "")
		if !errors.Is(err, ErrInsecure) || !strings.Contains(err.Error(), "writable by group or others") {
			t.Errorf("file mode %04o through a read-only bind of a 0777 directory: err = %v, want ErrInsecure", mode, err)
		}
	}
}

func TestPolicyJSONRoundTrip(t *testing.T) {
	p := Default()
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var back Policy
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Spec.Kernel.MaxStateAge != p.Spec.Kernel.MaxStateAge || back.Digest() != p.Digest() {
		t.Errorf("JSON round trip: %s %s, digest %s %s", back.Spec.Kernel.MaxStateAge, p.Spec.Kernel.MaxStateAge, back.Digest(), p.Digest())
	}
	var d Duration
	for _, bad := range []string{`600`, `"10 minutes"`, `"`} {
		if err := json.Unmarshal([]byte(bad), &d); err == nil {
			t.Errorf("duration %s accepted", bad)
		}
	}
}

// The loader checks the whole way to each file, not only the file: a
// directory others may write, or a symlink another user owns, lets them
// choose the policy.
func TestLoadChecksTheWholePath(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give files to another user")
	}
	good := header + "metadata: {name: n}\n"
	t.Run("parent of the policy directory writable by group", func(t *testing.T) {
		top := writeTree(t, map[string]string{"etc/patchgate/policy.yaml": good})
		if err := os.Chmod(filepath.Join(top, "etc"), 0o775); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{filepath.Join(top, "etc/patchgate"), filepath.Join(top, "etc/patchgate/policy.yaml")} {
			_, err := Load(p, "")
			if !errors.Is(err, ErrInsecure) || !strings.Contains(err.Error(), "directory "+filepath.Join(top, "etc")+" (on the way to") {
				t.Fatalf("%s: err = %v", p, err)
			}
		}
	})
	t.Run("symlink owned by another user", func(t *testing.T) {
		top := writeTree(t, map[string]string{"real/policy.yaml": good})
		link := filepath.Join(top, "policy.yaml")
		if err := os.Symlink("real/policy.yaml", link); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(link, ""); err != nil {
			t.Fatalf("root's symlink refused: %v", err)
		}
		if err := os.Lchown(link, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(link, ""); !errors.Is(err, ErrInsecure) || !strings.Contains(err.Error(), link+" (on the way to") ||
			!strings.Contains(err.Error(), "owned by uid 65534") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("symlink into an other-writable directory", func(t *testing.T) {
		top := writeTree(t, map[string]string{"policy/policy.yaml": good, "drop/x.yaml": good})
		if err := os.Chmod(filepath.Join(top, "drop"), 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(top, "drop"), filepath.Join(top, "policy", "policy.d")); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(filepath.Join(top, "policy"), ""); !errors.Is(err, ErrInsecure) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("sticky root-owned directory with root's entry", func(t *testing.T) {
		top := writeTree(t, map[string]string{"tmp/p/policy.yaml": good})
		if err := os.Chmod(filepath.Join(top, "tmp"), 0o777|os.ModeSticky); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(filepath.Join(top, "tmp/p"), ""); err != nil {
			t.Fatalf("root's directory under a sticky /tmp-like directory refused: %v", err)
		}
		// Someone else's entry there is refused: they could swap it.
		if err := os.Chown(filepath.Join(top, "tmp/p"), 65534, 65534); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(filepath.Join(top, "tmp/p"), ""); !errors.Is(err, ErrInsecure) {
			t.Fatalf("err = %v", err)
		}
	})
}

// A Kubernetes ConfigMap volume: a read-only mount whose root directory is
// 0777, with the files behind kubelet's atomic-writer symlinks
// (policy.yaml -> ..data/policy.yaml, ..data -> ..<timestamp>). It loads;
// the same layout with a ..data symlink owned by another user does not (it
// is not kubelet's), nor, in kubelet's layout, a file others may write.
func TestLoadConfigMapLayout(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	for _, tc := range []struct {
		name      string
		dataOwner int
		wantErr   string
	}{{"root's symlinks", 0, ""}, {"..data owned by uid 65534", 65534, "is writable by group or others (mode 0777)"}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "mode=0777"); err != nil {
				t.Skipf("cannot mount a tmpfs here: %v", err)
			}
			t.Cleanup(func() {
				if err := syscall.Unmount(dir, 0); err != nil {
					t.Errorf("unmount %s: %v", dir, err)
				}
			})
			ts := filepath.Join(dir, "..2026_12_02_08_43_11.1234567890")
			if err := os.Mkdir(ts, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(ts, "policy.yaml"), []byte(header+"metadata: {name: cm}\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(filepath.Base(ts), filepath.Join(dir, "..data")); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("..data/policy.yaml", filepath.Join(dir, "policy.yaml")); err != nil {
				t.Fatal(err)
			}
			if err := os.Lchown(filepath.Join(dir, "..data"), tc.dataOwner, tc.dataOwner); err != nil {
				t.Fatal(err)
			}
			if tc.wantErr == "" {
				// Writable: the 0777 directory lets anyone swap ..data.
				if _, err := Load(dir, ""); !errors.Is(err, ErrInsecure) {
					t.Fatalf("writable mount: err = %v, want ErrInsecure", err)
				}
			}
			if err := syscall.Mount("", dir, "", syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
				t.Fatal(err)
			}
			p, err := Load(dir, "")
			if tc.wantErr == "" {
				if err != nil || p.Name() != "cm" {
					t.Fatalf("ConfigMap layout: %v", err)
				}
				// defaultMode 0666: the file itself is writable by
				// others, wherever it is reached from.
				if err := syscall.Mount("", dir, "", syscall.MS_REMOUNT, ""); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(filepath.Join(ts, "policy.yaml"), 0o666); err != nil {
					t.Fatal(err)
				}
				if err := syscall.Mount("", dir, "", syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
					t.Fatal(err)
				}
				if _, err := Load(dir, ""); !errors.Is(err, ErrInsecure) {
					t.Fatalf("a 0666 file in a ConfigMap: err = %v, want ErrInsecure", err)
				}
				return
			}
			if !errors.Is(err, ErrInsecure) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

// TestLoadRefusesAFIFO: a FIFO named *.yaml (in policy.d, given as the
// file, or behind a symlink) is refused as not a regular file at once.
// open(2) without O_NONBLOCK waits for a writer: `policy validate` and the
// service's watcher hung on it.
func TestLoadRefusesAFIFO(t *testing.T) {
	good := header + "metadata: {name: n}\n"
	dir := writeTree(t, map[string]string{"policy.yaml": good, "policy.d/10.yaml": good})
	fifo := filepath.Join(dir, "policy.d", "20.yaml")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.yaml")
	if err := os.Symlink("policy.d/20.yaml", link); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{dir, fifo, link} {
		done := make(chan error, 1)
		go func() {
			_, err := Load(path, "")
			done <- err
		}()
		select {
		case err := <-done:
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), ".yaml is not a regular file") {
				t.Errorf("Load(%s): err = %v, want not a regular file", path, err)
			}
		case <-time.After(5 * time.Second):
			// Let the blocked open return: a writer that comes and goes.
			if w, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
				_ = w.Close()
			}
			t.Fatalf("Load(%s) still waits on the FIFO after 5s", path)
		}
	}
}
