// Package policytest runs policy tests, `patchgate test`: a test file
// (patchgate-test.yaml) names a policy, kernel states and cases, each a
// container (an OCI spec or `crictl inspect` output) with the decision and
// rules the policy must give it. See docs/policy-testing.md for the format.
package policytest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"

	"github.com/patchgate/patchgate/policy"
)

// FileName is the name `patchgate test DIR` looks for under DIR.
const FileName = "patchgate-test.yaml"

// APIVersion and Kind of a test file.
const (
	APIVersion = "patchgate.dev/v1alpha1"
	Kind       = "PolicyTest"
)

// ErrInvalid: a test file that cannot be run (syntax, unknown key, missing
// or wrong value, an input that does not load). Its error lists every
// problem with file:line.
var ErrInvalid = errors.New("invalid policy test")

// maxFileSize bounds a test file.
const maxFileSize = 1 << 20

// Decisions as a test file states them: what the node does with the
// container.
const (
	Admit  = "admit"  // policy.Allow
	Flag   = "flag"   // policy.Warn: admitted and flagged
	Refuse = "refuse" // policy.Deny
)

// DecisionOf names a verdict in a test file's terms.
func DecisionOf(v policy.Verdict) string {
	switch v {
	case policy.Allow:
		return Admit
	case policy.Warn:
		return Flag
	case policy.Deny:
		return Refuse
	}
	return string(v)
}

// File is one decoded test file. Paths in it are absolute (resolved against
// the file's directory).
type File struct {
	Path     string
	Name     string
	Policy   []string
	NodeName string
	States   map[string]*KernelState
	Cases    []*Case
}

// KernelState is one named kernel state.
type KernelState struct {
	Name string
	// Exactly one of HostRoot, File and Unknown is set.
	HostRoot string // a host root read as `patchgate check --host-root`
	File     string // recorded state: `patchgate check -o json`, or its "kernel" object
	Unknown  bool   // no state: the kernel state is unknown
	// Now judges the state's age at this time; zero: the state's own
	// observedAt for File, the time of the read for HostRoot.
	Now  time.Time
	Line int
}

// Case is one container and what the policy must decide for it.
type Case struct {
	Name    string
	Spec    string // an OCI spec or crictl inspect output
	Sandbox string // optional: a sandbox spec or crictl inspectp output
	Kernel  string // a KernelState name
	// IdentityFrom is which runtime's annotations in a plain spec name the
	// pod and container, as the hook's --identity-from (none, containerd,
	// crio; "" is none).
	IdentityFrom string
	// Pod and Container fill the identity a plain spec does not carry
	// (as eval's --namespace, --label, --container ... do).
	Pod       policy.PodIdentity
	Container policy.ContainerIdentity
	Expect    Expect
	Line      int
}

// Expect is what a case must give.
type Expect struct {
	Decision string   // admit, flag or refuse
	Rules    []string // every rule with a violation (any action), sorted
	// Exemptions, when set, are the exemptions that must apply (sorted);
	// nil: not compared.
	Exemptions []string
	// Deferred are the rules that must be left unjudged (sorted); always
	// compared, so a rule nobody judged never passes unnoticed.
	Deferred []string
	// KernelBehind, when set, is compared with the decision's.
	KernelBehind *bool
}

// posErrors collects problems with their lines.
type posErrors struct {
	file string
	errs []posError
}

type posError struct {
	line int
	msg  string
}

func (p *posErrors) add(n *yaml.Node, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	msg := fmt.Sprintf(format, args...)
	if line > 0 {
		msg = fmt.Sprintf("%s:%d: %s", p.file, line, msg)
	} else {
		msg = fmt.Sprintf("%s: %s", p.file, msg)
	}
	p.errs = append(p.errs, posError{line, msg})
}

func (p *posErrors) err() error {
	if len(p.errs) == 0 {
		return nil
	}
	slices.SortStableFunc(p.errs, func(a, b posError) int { return a.line - b.line })
	msgs := make([]string, len(p.errs))
	for i, e := range p.errs {
		msgs[i] = e.msg
	}
	return fmt.Errorf("%w:\n  %s", ErrInvalid, strings.Join(msgs, "\n  "))
}

// ReadFile reads and decodes a test file.
func ReadFile(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalid, path, err)
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("%w: %s: larger than %d bytes", ErrInvalid, path, maxFileSize)
	}
	return Decode(path, data)
}

// Decode decodes test file data; path names it in errors and relative
// paths in it are resolved against its directory. Decoding is strict:
// unknown or repeated keys, aliases, wrong types, missing values, unknown
// rule or kernel state names, and decisions other than admit, flag and
// refuse are errors with file:line, all reported together.
func Decode(path string, data []byte) (*File, error) {
	pe := &posErrors{file: path}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: %s: empty test file", ErrInvalid, path)
		}
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalid, path, err)
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: %s: one YAML document per test file (a second one follows, or: %v)", ErrInvalid, path, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, fmt.Errorf("%w: %s: empty test file", ErrInvalid, path)
	}
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalid, path, err)
	}
	abs := func(p string) string {
		if filepath.IsAbs(p) {
			return filepath.Clean(p)
		}
		return filepath.Join(dir, p)
	}
	f := &File{Path: path, States: map[string]*KernelState{}}
	top := doc.Content[0]
	var casesNode, statesNode *yaml.Node
	seen := mapping(pe, top, "the test file", func(key string, k, v *yaml.Node) {
		switch key {
		case "apiVersion":
			if s := scalar(pe, v, key); s != "" && s != APIVersion {
				pe.add(v, "apiVersion %q: want %s", s, APIVersion)
			}
		case "kind":
			if s := scalar(pe, v, key); s != "" && s != Kind {
				pe.add(v, "kind %q: want %s", s, Kind)
			}
		case "metadata":
			mapping(pe, v, "metadata", func(key string, k, v *yaml.Node) {
				if key != "name" {
					pe.add(k, "metadata: unknown key %q (want name)", key)
					return
				}
				f.Name = scalar(pe, v, "metadata.name")
			})
		case "policy":
			for _, p := range stringOrList(pe, v, "policy") {
				f.Policy = append(f.Policy, abs(p))
			}
			if len(f.Policy) == 0 {
				pe.add(v, "policy: name a policy file or directory")
			}
		case "nodeName":
			f.NodeName = scalar(pe, v, key)
		case "kernelStates":
			statesNode = v
		case "cases":
			casesNode = v
		default:
			pe.add(k, "unknown key %q (want apiVersion, kind, metadata, policy, nodeName, kernelStates, cases)", key)
		}
	})
	for _, req := range []string{"apiVersion", "kind", "policy", "kernelStates", "cases"} {
		if top.Kind == yaml.MappingNode && !seen[req] {
			pe.add(top, "%s is required", req)
		}
	}
	if statesNode != nil {
		mapping(pe, statesNode, "kernelStates", func(name string, k, v *yaml.Node) {
			ks := decodeState(pe, name, v, abs)
			ks.Line = k.Line
			f.States[name] = ks
		})
		if statesNode.Kind == yaml.MappingNode && len(statesNode.Content) == 0 {
			pe.add(statesNode, "kernelStates: name at least one state")
		}
	}
	if casesNode != nil {
		if casesNode.Kind != yaml.SequenceNode {
			pe.add(casesNode, "cases: want a list")
		} else {
			if len(casesNode.Content) == 0 {
				pe.add(casesNode, "cases: list at least one case")
			}
			names := map[string]int{}
			for i, n := range casesNode.Content {
				c := decodeCase(pe, i, n, abs)
				if c.Name != "" {
					if prev, dup := names[c.Name]; dup {
						pe.add(n, "cases[%d]: name %q is also cases[%d]'s", i, c.Name, prev)
					}
					names[c.Name] = i
				}
				if c.Kernel != "" && statesNode != nil {
					if _, ok := f.States[c.Kernel]; !ok {
						pe.add(n, "cases[%d] %q: kernel %q is not in kernelStates", i, c.Name, c.Kernel)
					}
				}
				f.Cases = append(f.Cases, c)
			}
		}
	}
	if err := pe.err(); err != nil {
		return nil, err
	}
	return f, nil
}

func decodeState(pe *posErrors, name string, n *yaml.Node, abs func(string) string) *KernelState {
	ks := &KernelState{Name: name}
	var sources int
	mapping(pe, n, "kernelStates."+name, func(key string, k, v *yaml.Node) {
		switch key {
		case "hostRoot":
			if s := scalar(pe, v, key); s != "" {
				ks.HostRoot = abs(s)
			}
			sources++
		case "file":
			if s := scalar(pe, v, key); s != "" {
				ks.File = abs(s)
			}
			sources++
		case "unknown":
			ks.Unknown = boolean(pe, v, "kernelStates."+name+".unknown")
			if !ks.Unknown {
				pe.add(v, "kernelStates.%s.unknown: only true is meaningful", name)
			}
			sources++
		case "now":
			s := scalar(pe, v, key)
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				pe.add(v, "kernelStates.%s.now %q: want an RFC 3339 time, e.g. 2026-11-27T12:00:00Z", name, s)
			}
			ks.Now = t
		default:
			pe.add(k, "kernelStates.%s: unknown key %q (want hostRoot, file, unknown or now)", name, key)
		}
	})
	if n.Kind == yaml.MappingNode && sources != 1 {
		pe.add(n, "kernelStates.%s: give exactly one of hostRoot, file and unknown: true", name)
	}
	return ks
}

func decodeCase(pe *posErrors, i int, n *yaml.Node, abs func(string) string) *Case {
	c := &Case{Line: n.Line}
	at := func() string {
		if c.Name != "" {
			return fmt.Sprintf("cases[%d] %q", i, c.Name)
		}
		return fmt.Sprintf("cases[%d]", i)
	}
	var expectNode *yaml.Node
	seen := mapping(pe, n, fmt.Sprintf("cases[%d]", i), func(key string, k, v *yaml.Node) {
		switch key {
		case "name":
			c.Name = scalar(pe, v, key)
		case "spec":
			if s := scalar(pe, v, key); s != "" {
				c.Spec = abs(s)
			}
		case "sandbox":
			if s := scalar(pe, v, key); s != "" {
				c.Sandbox = abs(s)
			}
		case "kernel":
			c.Kernel = scalar(pe, v, key)
		case "identityFrom":
			c.IdentityFrom = scalar(pe, v, key)
			switch c.IdentityFrom {
			case "none", "containerd", "crio":
			default:
				pe.add(v, "%s.identityFrom: %q (want none, containerd or crio)", at(), c.IdentityFrom)
			}
		case "pod":
			mapping(pe, v, at()+".pod", func(key string, k, v *yaml.Node) {
				switch key {
				case "namespace":
					c.Pod.Namespace = scalar(pe, v, key)
				case "name":
					c.Pod.Name = scalar(pe, v, key)
				case "uid":
					c.Pod.UID = scalar(pe, v, key)
				case "labels":
					c.Pod.Labels = stringMap(pe, v, at()+".pod.labels")
				case "annotations":
					c.Pod.Annotations = stringMap(pe, v, at()+".pod.annotations")
				default:
					pe.add(k, "%s.pod: unknown key %q (want namespace, name, uid, labels, annotations)", at(), key)
				}
			})
		case "container":
			mapping(pe, v, at()+".container", func(key string, k, v *yaml.Node) {
				switch key {
				case "name":
					c.Container.Name = scalar(pe, v, key)
				case "image":
					c.Container.Image = scalar(pe, v, key)
				default:
					pe.add(k, "%s.container: unknown key %q (want name, image)", at(), key)
				}
			})
		case "expect":
			expectNode = v
		default:
			pe.add(k, "%s: unknown key %q (want name, spec, sandbox, kernel, identityFrom, pod, container, expect)", at(), key)
		}
	})
	if n.Kind == yaml.MappingNode {
		for _, req := range []string{"name", "spec", "kernel", "expect"} {
			if !seen[req] {
				pe.add(n, "%s: %s is required", at(), req)
			}
		}
	}
	if expectNode != nil {
		decodeExpect(pe, at(), expectNode, &c.Expect)
	}
	return c
}

func decodeExpect(pe *posErrors, at string, n *yaml.Node, e *Expect) {
	seen := mapping(pe, n, at+".expect", func(key string, k, v *yaml.Node) {
		switch key {
		case "decision":
			e.Decision = scalar(pe, v, key)
			if e.Decision != "" && e.Decision != Admit && e.Decision != Flag && e.Decision != Refuse {
				pe.add(v, "%s.expect.decision %q: want admit, flag or refuse", at, e.Decision)
			}
		case "rules":
			e.Rules = ruleList(pe, v, at+".expect.rules")
		case "deferred":
			e.Deferred = ruleList(pe, v, at+".expect.deferred")
		case "exemptions":
			e.Exemptions = sortedSet(pe, v, at+".expect.exemptions")
			if e.Exemptions == nil {
				e.Exemptions = []string{}
			}
		case "kernelBehind":
			b := boolean(pe, v, at+".expect.kernelBehind")
			e.KernelBehind = &b
		default:
			pe.add(k, "%s.expect: unknown key %q (want decision, rules, deferred, exemptions, kernelBehind)", at, key)
		}
	})
	if n.Kind == yaml.MappingNode {
		for _, req := range []string{"decision", "rules"} {
			if !seen[req] {
				pe.add(n, "%s.expect: %s is required (rules: [] for none)", at, req)
			}
		}
	}
}

func ruleList(pe *posErrors, n *yaml.Node, what string) []string {
	out := sortedSet(pe, n, what)
	for i, r := range out {
		if !policy.IsRuleID(r) && r != policy.RuleUnjudged {
			pe.add(n, "%s[%d]: unknown rule %q (rules: %s)", what, i, r, strings.Join(policy.RuleIDs(), ", "))
		}
	}
	return out
}

// mapping calls f for each key of mapping node n in order and returns the
// keys seen; a repeated key, an alias or a non-string key is an error.
func mapping(pe *posErrors, n *yaml.Node, what string, f func(key string, k, v *yaml.Node)) map[string]bool {
	seen := map[string]bool{}
	if n.Kind == yaml.AliasNode {
		pe.add(n, "%s: aliases are not allowed", what)
		return seen
	}
	if n.Kind != yaml.MappingNode {
		pe.add(n, "%s: want a mapping", what)
		return seen
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Tag == "!!merge" {
			pe.add(k, "%s: keys must be plain strings (no merge keys)", what)
			continue
		}
		if seen[k.Value] {
			pe.add(k, "%s: key %q appears twice", what, k.Value)
			continue
		}
		seen[k.Value] = true
		if v.Kind == yaml.AliasNode {
			pe.add(v, "%s.%s: aliases are not allowed", what, k.Value)
			continue
		}
		f(k.Value, k, v)
	}
	return seen
}

func scalar(pe *posErrors, n *yaml.Node, what string) string {
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!str" && n.Tag != "!!int" && n.Tag != "!!float" && n.Tag != "!!bool" && n.Tag != "!!timestamp") {
		pe.add(n, "%s: want a string", what)
		return ""
	}
	if n.Value == "" {
		pe.add(n, "%s: must not be empty", what)
	}
	return n.Value
}

func boolean(pe *posErrors, n *yaml.Node, what string) bool {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
		pe.add(n, "%s: want true or false", what)
		return false
	}
	return n.Value == "true"
}

func stringOrList(pe *posErrors, n *yaml.Node, what string) []string {
	if n.Kind == yaml.ScalarNode {
		if s := scalar(pe, n, what); s != "" {
			return []string{s}
		}
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		pe.add(n, "%s: want a path or a list of paths", what)
		return nil
	}
	var out []string
	for i, e := range n.Content {
		if s := scalar(pe, e, fmt.Sprintf("%s[%d]", what, i)); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// sortedSet decodes a list of strings, refusing repeats, and sorts it.
func sortedSet(pe *posErrors, n *yaml.Node, what string) []string {
	if n.Kind != yaml.SequenceNode {
		pe.add(n, "%s: want a list ([] for none)", what)
		return nil
	}
	out := []string{}
	for i, e := range n.Content {
		s := scalar(pe, e, fmt.Sprintf("%s[%d]", what, i))
		if s == "" {
			continue
		}
		if slices.Contains(out, s) {
			pe.add(e, "%s: %q appears twice", what, s)
			continue
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

func stringMap(pe *posErrors, n *yaml.Node, what string) map[string]string {
	out := map[string]string{}
	mapping(pe, n, what, func(key string, k, v *yaml.Node) {
		if v.Kind != yaml.ScalarNode {
			pe.add(v, "%s.%s: want a string", what, key)
			return
		}
		out[key] = v.Value
	})
	return out
}
