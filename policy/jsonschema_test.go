package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	yaml "go.yaml.in/yaml/v3"

	"github.com/patchgate/patchgate/policy/internal/godoc"
)

const schemaFile = "../docs/policy.schema.json"

// TestSchemaFileIsGenerated: docs/policy.schema.json is what `go generate
// ./policy` writes from the Go types and comments. UPDATE_GOLDEN=1 rewrites it.
func TestSchemaFileIsGenerated(t *testing.T) {
	docs, err := godoc.FieldDocs(".")
	if err != nil {
		t.Fatal(err)
	}
	want, err := JSONSchema(docs)
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("UPDATE_GOLDEN") != "" {
		if err := os.WriteFile(schemaFile, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is stale: run `go generate ./policy` (or UPDATE_GOLDEN=1 go test ./policy)", schemaFile)
	}
}

// TestSchemaGeneratorRefusesGaps: a field without a doc comment, and a
// constraint for a key that does not exist, are errors, not silent gaps.
func TestSchemaGeneratorRefusesGaps(t *testing.T) {
	docs, err := godoc.FieldDocs(".")
	if err != nil {
		t.Fatal(err)
	}
	delete(docs, "KernelSpec.OnUnknown")
	if _, err := JSONSchema(docs); err == nil || !strings.Contains(err.Error(), "spec.kernel.onUnknown: KernelSpec.OnUnknown has no doc comment") {
		t.Errorf("err = %v", err)
	}
	docs, _ = godoc.FieldDocs(".")
	schemaExtra["spec.kernel.gone"] = obj{{"type", "string"}}
	defer delete(schemaExtra, "spec.kernel.gone")
	if _, err := JSONSchema(docs); err == nil || !strings.Contains(err.Error(), "spec.kernel.gone: schema constraint for a key the policy does not have") {
		t.Errorf("err = %v", err)
	}
}

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(SchemaID, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(SchemaID)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// yamlInstance turns a YAML document into the JSON value an editor's YAML
// language server validates (YAML 1.2 core types).
func yamlInstance(data []byte) (any, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	return nodeValue(doc.Content[0])
}

func nodeValue(n *yaml.Node) (any, error) {
	switch n.Kind {
	case yaml.MappingNode:
		m := map[string]any{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			v, err := nodeValue(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			m[n.Content[i].Value] = v
		}
		return m, nil
	case yaml.SequenceNode:
		l := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := nodeValue(c)
			if err != nil {
				return nil, err
			}
			l = append(l, v)
		}
		return l, nil
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return nil, nil
		case "!!bool":
			return strconv.ParseBool(strings.ToLower(n.Value))
		case "!!int":
			i, ok := new(big.Int).SetString(strings.ReplaceAll(n.Value, "_", ""), 0)
			if !ok {
				return nil, fmt.Errorf("integer %q", n.Value)
			}
			return json.Number(i.String()), nil
		case "!!float":
			if f, err := strconv.ParseFloat(n.Value, 64); err == nil {
				return f, nil
			}
		}
		return n.Value, nil
	}
	return nil, fmt.Errorf("YAML node kind %v", n.Kind)
}

// policyFilesInRepo lists every complete policy document in the repository.
func policyFilesInRepo(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, g := range []string{
		"../examples/policies/*.yaml", "../examples/policy-dir/*.yaml", "../examples/policy-dir/*/*.yaml",
		"default.yaml", "../plugin/testdata/policies/*.yaml", "../test/vm/guest/policies/*.yaml",
	} {
		m, err := filepath.Glob(g)
		if err != nil {
			t.Fatal(err)
		}
		if len(m) == 0 {
			t.Fatalf("no policy matches %s", g)
		}
		files = append(files, m...)
	}
	return files
}

// TestEveryPolicyFileValidates: every policy file in the repository loads
// with the strict decoder and validates against the schema.
func TestEveryPolicyFileValidates(t *testing.T) {
	s := compileSchema(t)
	for _, f := range policyFilesInRepo(t) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := LoadBytes(f, data); err != nil {
			t.Errorf("%s: the loader refuses it: %v", f, err)
		}
		inst, err := yamlInstance(data)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Validate(inst); err != nil {
			t.Errorf("%s: the schema refuses it: %v", f, err)
		}
	}
}

// TestManifestPoliciesValidate: the policies inside the example DaemonSet's
// ConfigMap, which carry no modeline, validate too.
func TestManifestPoliciesValidate(t *testing.T) {
	s := compileSchema(t)
	data, err := os.ReadFile("../examples/kubernetes/patchgate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	n := 0
	for {
		var m struct {
			Kind string            `yaml:"kind"`
			Data map[string]string `yaml:"data"`
		}
		if err := dec.Decode(&m); err != nil {
			break
		}
		if m.Kind != "ConfigMap" {
			continue
		}
		for key, body := range m.Data {
			if !strings.HasSuffix(key, ".yaml") {
				continue
			}
			n++
			if err := validateYAML(s, body); err != nil {
				t.Errorf("ConfigMap %s: %v", key, err)
			}
		}
	}
	if n == 0 {
		t.Fatal("no policy in the manifest's ConfigMap")
	}
}

// TestExamplesCarryTheModeline: every example and the built-in default open
// with the yaml-language-server modeline, whose relative path names
// docs/policy.schema.json from where the file lies.
func TestExamplesCarryTheModeline(t *testing.T) {
	want, err := filepath.Abs(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range policyFilesInRepo(t) {
		if !strings.HasPrefix(f, "../examples/") && f != "default.yaml" {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		first, _, _ := strings.Cut(string(data), "\n")
		rel, ok := strings.CutPrefix(first, "# yaml-language-server: $schema=")
		if !ok {
			t.Errorf("%s: first line %q is not the yaml-language-server modeline", f, first)
			continue
		}
		if got, _ := filepath.Abs(filepath.Join(filepath.Dir(f), rel)); got != want {
			t.Errorf("%s: the modeline names %s, not docs/policy.schema.json", f, rel)
		}
	}
}

// TestSchemaCoversEveryField walks every key of the Go types (as the
// decoder knows them) and finds it in the schema with a description and,
// for a mapping, additionalProperties false; and the schema has no key the
// Go types lack.
func TestSchemaCoversEveryField(t *testing.T) {
	raw, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	var root map[string]any
	if err := json.Unmarshal(raw, &root); err != nil {
		t.Fatal(err)
	}
	schemaPaths := map[string]map[string]any{}
	var walk func(s map[string]any, p string)
	walk = func(s map[string]any, p string) {
		if props, ok := s["properties"].(map[string]any); ok {
			if s["additionalProperties"] != false {
				t.Errorf("%q: a mapping of keys without additionalProperties: false", p)
			}
			for k, v := range props {
				kp := joinPath(p, k)
				schemaPaths[kp] = v.(map[string]any)
				walk(v.(map[string]any), kp)
			}
		}
		if items, ok := s["items"].(map[string]any); ok {
			walk(items, p+"[]")
		}
	}
	walk(root, "")
	keys := schemaKeys(reflect.TypeOf(Policy{}), "")
	for _, k := range keys {
		s, ok := schemaPaths[k]
		if !ok {
			t.Errorf("%s: not in the schema", k)
			continue
		}
		if d, _ := s["description"].(string); len(d) < 10 {
			t.Errorf("%s: description %q", k, d)
		}
	}
	for k := range schemaPaths {
		if !slices.Contains(keys, k) {
			t.Errorf("%s: in the schema, not in the Go types", k)
		}
	}
	if len(schemaPaths) != len(keys) {
		t.Errorf("schema has %d keys, the Go types %d", len(schemaPaths), len(keys))
	}
}

// TestSchemaAgreesWithTheDecoder: documents the strict decoder refuses are
// refused by the schema too, where a schema can say it; documents it
// accepts, including the odd corners, are accepted.
func TestSchemaAgreesWithTheDecoder(t *testing.T) {
	s := compileSchema(t)
	refused := []string{
		"metadata: {name: x, labels: {a: b}}\n",                      // unknown key
		"spec: {kernel: {onUnkown: warn}}\n",                         // unknown key, nested
		"spec: {rules: {kernelPatches: {action: warn}}}\n",           // kernel rule among container rules
		"spec: {defaultAction: block}\n",                             // wrong enum
		"spec: {rules: {runAsRoot: {whenKernelBehind: always}}}\n",   //
		"spec: {kernel: {provider: livepatchd}}\n",                   //
		"spec: {hook: {onError: ignore}}\n",                          //
		"spec: {rules: {hostNamespaces: {namespaces: [net]}}}\n",     //
		"spec: {rules: {capabilities: {allowed: [CAP_SYS_ADMN]}}}\n", //
		"spec: {rules: {seccomp: {mustBlock: [openat]}}}\n",          //
		"spec: {exemptions: [{name: a, namespaces: [x], rules: [nonsense]}]}\n",
		"spec: {audit: {sync: \"yes\"}}\n",                                              // wrong type
		"spec: {audit: {maxBackups: ten}}\n",                                            //
		"spec: {audit: {maxSizeMB: 1.5}}\n",                                             //
		"spec: {audit: {maxSizeMB: -1}}\n",                                              //
		"metadata: {name: [a]}\n",                                                       //
		"spec: {kernel: {tools: [kpatch]}}\n",                                           //
		"spec: {kernel: {maxStateAge: soon}}\n",                                         // bad duration
		"spec: {kernel: {maxStateAge: 10 minutes}}\n",                                   //
		"spec: {kernel: {maxStateAge: 5}}\n",                                            //
		"spec: {kernel: {maxStateAge: [1m]}}\n",                                         //
		"spec: {remediation: {admitWait: -1s}}\n",                                       //
		"spec: {kernel: {maxStateAge: 0s}}\n",                                           // zero where it must be positive
		"spec: {remediation: {timeout: 0}}\n",                                           //
		"spec: {kernel: {requiredCVEs: [CVE-24-1]}}\n",                                  // formats
		"spec: {kernel: {requiredPatches: [a/b]}}\n",                                    //
		"spec: {kernel: {tools: {kpatch: kpatch}}}\n",                                   // relative paths
		"spec: {kernel: {tools: {kpatch: ~}}}\n",                                        //
		"spec: {kernel: {tools: {\"\": /x}}}\n",                                         //
		"spec: {audit: {path: audit.log}}\n",                                            //
		"spec: {remediation: {command: [kcarectl, --update]}}\n",                        //
		"spec: {rules: {hostPathMounts: {denied: [etc]}}}\n",                            //
		"spec: {rules: {hostPathMounts: {runtimeDirs: [/]}}}\n",                         //
		"spec: {rules: {hostPathMounts: {runtimeDirs: [/./..]}}}\n",                     //
		"spec: {rules: {hostPathMounts: {kubeletDir: /}}}\n",                            //
		"spec: {rules: {hostPathMounts: {kubeletVolumePlugins: [..]}}}\n",               //
		"spec: {rules: {procMount: {maskedPaths: [proc/kcore]}}}\n",                     //
		"spec: {rules: {hostPathMounts: {allowed: [{path: /var/lib/kubelet/pods}]}}}\n", // protected
		"spec: {rules: {hostPathMounts: {allowed: [{path: /var/run/containerd}]}}}\n",
		"spec: {rules: {hostPathMounts: {allowed: [{readOnly: true}]}}}\n",
		"spec: {rules: {hostPathMounts: {allowReadOnly: true}}}\n", // deprecated, refused
		"spec: {rules: {hostDevices: {allowed: [/dev/fuse]}}}\n",
		"spec: {rules: {hostDevices: {allowed: [\"c *:*\"]}}}\n",
		"spec: {rules: {hostDevices: {allowed: [\"b 8:1048576\"]}}}\n",
		"spec: {rules: {hostDevices: {allowed: [\"c 4096:0\"]}}}\n",
		"spec: {rules: {sysctls: {allowed: [\"a=b\"]}}}\n",
		"spec: {exemptions: [{namespaces: [x]}]}\n",         // exemption rules
		"spec: {exemptions: [{name: all}]}\n",               //
		"spec: {exemptions: [{name: a, namespaces: []}]}\n", //
		"spec: {exemptions: [{name: a, images: [x], annotation: patchgate.dev/exempt}]}\n",
		"spec: {exemptions: [{name: a, images: [\"\"]}]}\n", //
		"spec: {exemptions: [{name: a, containers: [\"\"]}]}\n",
		"spec: {exemptions: [{name: a, namespaces: [a], containers: [\" \"]}]}\n",
		"spec: {exemptions: [{name: a, namespaces: [\"\\u00a0\"]}]}\n",
		"spec: {exemptions: [{name: \"\\t\", images: [x]}]}\n",
		"spec: {exemptions: [{name: a, podLabels: {\" \": x}}]}\n",
		"spec: {exemptions: [{name: a, namespaces: [a], annotation: \" \"}]}\n",
		"spec: {exemptions: [{name: a, namespaces: [a], containers: ~}]}\n",
		"spec: {exemptions: [{name: a, namespaces: [a], rules: }]}\n",
		"spec: {exemptions: [~]}\n",                   // empty item
		"spec: {kernel: {requiredPatches: [a, ~]}}\n", //
	}
	for _, body := range refused {
		doc := header + body
		if _, err := LoadBytes("x.yaml", []byte(doc)); err == nil || !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: the loader accepts it (err %v): the case is wrong", body, err)
		}
		if err := validateYAML(s, doc); err == nil {
			t.Errorf("%q: the loader refuses it, the schema accepts it", body)
		}
	}
	for _, doc := range []string{"kind: NodePolicy\n", "apiVersion: patchgate.dev/v1alpha1\nkind: Pod\n", "apiVersion: ~\nkind: NodePolicy\n"} {
		if err := validateYAML(s, doc); err == nil {
			t.Errorf("%q: the schema accepts it", doc)
		}
	}
	accepted := []string{
		"metadata: {name: 2024}\nspec: {kernel: {minimumVersion: 6.1}}\n", // any scalar is a string
		"metadata:\nspec:\n  kernel:\n    maxStateAge:\n  audit: ~\n",     // empty keeps the default
		"spec: {remediation: {admitWait: 0, timeout: 1h30m}}\n",
		"spec: {remediation: {admitWait: 0s, timeout: 1.5h}, kernel: {maxStateAge: +90s}}\n",
		"spec: {remediation: {command: [/usr/bin/kcarectl, --retries, 3, true]}}\n",
		"spec: {audit: {maxSizeMB: 0, maxBackups: 0x10, path: \"\"}}\n",
		"spec: {kernel: {requiredCVEs: [cve-2024-1086], tools: {kcarectl: /opt/kcarectl}}}\n",
		"spec: {rules: {capabilities: {allowed: [cap_net_raw, Sys_Chroot, CAP_BPF]}}}\n",
		"spec: {rules: {hostDevices: {allowed: [\"c 10:229\", \"b 7:*\", \" c  +010:0 \", \"c 4095:1048575\"]}}}\n",
		"spec: {rules: {hostPathMounts: {kubeletDir: \"\", runtimeDirs: [/...], allowed: [{path: /var/log, readOnly: true}, {path: /runx}], allowReadOnly: false}}}\n",
		"spec: {rules: {seccomp: {mustBlock: [clone(CLONE_NEWUSER)]}, runAsRoot: {action: \"off\"}}}\n",
		"spec: {exemptions: [{name: a, podLabels: {app: x}}, {name: b, annotation: x, namespaces: [y]}, {name: c, images: [\"*\"], rules: [kernelStateUnknown]}]}\n",
		// What policy show and the service's copy write for an exemption.
		"spec: {exemptions: [{name: d, namespaces: [a], images: [], containers: [], podLabels: {app: \"\"}, annotation: \"\", rules: []}]}\n",
	}
	for _, body := range accepted {
		doc := header + body
		if _, err := LoadBytes("x.yaml", []byte(doc)); err != nil {
			t.Errorf("%q: the loader refuses it: %v", body, err)
		}
		if err := validateYAML(s, doc); err != nil {
			t.Errorf("%q: the schema refuses it: %v", body, err)
		}
	}
}

func validateYAML(s *jsonschema.Schema, doc string) error {
	inst, err := yamlInstance([]byte(doc))
	if err != nil {
		return err
	}
	return s.Validate(inst)
}

// TestSchemaFormatsMatchTheDecoder compares the schema's patterns with the
// decoder's own parsing on many strings.
func TestSchemaFormatsMatchTheDecoder(t *testing.T) {
	durRE := regexp.MustCompile(strings.ReplaceAll(durationSchema(false).mustGet(t, "pattern").(string), "", ""))
	for _, s := range []string{"0", "+0", "-0", "1s", "1.5h", ".5m", "5.m", "1h30m", "300ms", "2µs", "2μs", "2us", "10ns", "+5m",
		"", "5", "-5m", "1d", "1 h", "h", ".s", "1.2.3s", "1hh", "0.0", "00", "1e3s"} {
		var d Duration
		err := d.decodeScalar(s)
		if got := durRE.MatchString(s); got != (err == nil) {
			t.Errorf("duration %q: schema %v, decoder %v", s, got, err)
		}
	}
	devRE := regexp.MustCompile(devNumPattern)
	for _, s := range []string{"c 10:229", "b 7:*", "c 0:0", "c 4095:1048575", "c 4096:0", "c 1:1048576", "c +1:+2", "c 007:008",
		"a 1:3", "c 10", "c *:1", "c 1:**", "/dev/fuse", "c  1:2", "cc 1:2", "c 1:2 x", "c -1:2", "c 1:-0", " b 1:2 "} {
		_, err := parseDevNum(s)
		if got := devRE.MatchString(s); got != (err == nil) {
			t.Errorf("device %q: schema %v, decoder %v", s, got, err)
		}
	}
	rootRE := regexp.MustCompile(rootOnly)
	for _, s := range []string{"/", "//", "/.", "/..", "/./..", "/../../", "/.../", "/a", "/a/..", "/.a", "/..a"} {
		// /a/.. cleans to / but the schema sees only the spelling: the
		// loader refuses it, the schema does not (a documented gap).
		if want := path.Clean(s) == "/"; rootRE.MatchString(s) != want && s != "/a/.." {
			t.Errorf("path %q: schema root %v, path.Clean %q", s, !want, path.Clean(s))
		}
	}
	// The schema's "not blank" is the decoder's, for every character up to
	// the last white space unicode.IsSpace knows.
	nonSpaceRE := regexp.MustCompile(nonSpace)
	for r := rune(0); r <= 0x3001; r++ {
		for _, s := range []string{string(r), " " + string(r) + "\t"} {
			if got := nonSpaceRE.MatchString(s); got != !blank(s) {
				t.Errorf("%q: schema not blank %v, decoder blank %v", s, got, blank(s))
			}
		}
	}
	capRE := regexp.MustCompile("^(?:" + ciPattern("CAP_") + ")?(?:" + ciAlternatives(capabilityNames) + ")$")
	for _, s := range []string{"CHOWN", "chown", "CAP_CHOWN", "cap_Sys_Admin", "CAP_", "SYS_ADMN", "CAPCHOWN", "CAP_CAP_CHOWN", "BPF"} {
		if got, want := capRE.MatchString(s), isCapability(strings.TrimPrefix(strings.ToUpper(s), "CAP_")); got != want {
			t.Errorf("capability %q: schema %v, decoder %v", s, got, want)
		}
	}
}

func (o obj) mustGet(t *testing.T, k string) any {
	t.Helper()
	v, ok := o.get(k)
	if !ok {
		t.Fatalf("no %s", k)
	}
	return v
}
