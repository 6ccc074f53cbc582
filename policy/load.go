package policy

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"

	yaml "go.yaml.in/yaml/v3"

	"github.com/patchgate/patchgate/internal/trustedpath"
)

// File and directory names inside a policy directory.
const (
	MainFile   = "policy.yaml"
	DropInDir  = "policy.d"
	NodesDir   = "nodes"
	DefaultDir = "/etc/patchgate"
)

// maxPolicyFileSize bounds one policy file; a policy is a few kilobytes.
const maxPolicyFileSize = 1 << 20

//go:embed default.yaml
var defaultYAML []byte

// Default returns the built-in policy (the policy of the example,
// without exemptions): what patchgate enforces when it is given no policy.
func Default() *Policy {
	p, err := LoadBytes("<built-in default>", defaultYAML)
	if err != nil {
		panic("patchgate: built-in default policy is invalid: " + err.Error())
	}
	return p
}

// Load reads the policy at path. A file is read on its own. A directory is read
// as policy.yaml, then every policy.d/*.yaml in lexical order, then
// nodes/<nodeName>.yaml if it exists (nodeName empty: no overlay). Every file
// and directory read must be owned by root (or by the user patchgate runs as)
// and not writable by group or others, otherwise Load fails with ErrInsecure.
// Decoding and validation problems are returned together as a
// *ValidationError (ErrInvalid) naming file:line.
func Load(path, nodeName string) (*Policy, error) {
	files, err := policyFiles(path, nodeName)
	if err != nil {
		return nil, err
	}
	srcs := make([]source, 0, len(files))
	for _, f := range files {
		data, err := readSecure(f)
		if err != nil {
			return nil, err
		}
		srcs = append(srcs, source{name: f, data: data})
	}
	return load(srcs)
}

// LoadPaths reads several policies as one: the files of each path (a file,
// or a directory read as Load reads it) in the order given, every later
// file merged over the earlier ones as a policy.d drop-in is. With one path
// it is Load. `patchgate test` uses it to add a drop-in to a policy under
// test without copying it.
func LoadPaths(nodeName string, paths ...string) (*Policy, error) {
	if len(paths) == 0 {
		return nil, fmt.Errorf("%w: no policy path", ErrInvalid)
	}
	var srcs []source
	for _, p := range paths {
		files, err := policyFiles(p, nodeName)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			data, err := readSecure(f)
			if err != nil {
				return nil, err
			}
			srcs = append(srcs, source{name: f, data: data})
		}
	}
	return load(srcs)
}

// LoadBytes decodes one policy document held in memory; name is used in error
// messages. It applies the same checks as Load except the file permissions.
func LoadBytes(name string, data []byte) (*Policy, error) {
	return load([]source{{name: name, data: data}})
}

type source struct {
	name string
	data []byte
}

func policyFiles(path, nodeName string) ([]string, error) {
	if nodeName != "" && (strings.ContainsAny(nodeName, "/\\\x00") || nodeName == "." || nodeName == "..") {
		return nil, fmt.Errorf("%w: node name %q cannot name a file", ErrInvalid, nodeName)
	}
	if _, err := checkChain(path); err != nil {
		return nil, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	if !fi.IsDir() {
		return []string{path}, nil
	}
	if err := checkSecure(path, fi); err != nil {
		return nil, err
	}
	files := []string{filepath.Join(path, MainFile)}
	dropIns := filepath.Join(path, DropInDir)
	if di, err := os.Stat(dropIns); err == nil && di.IsDir() {
		if err := checkSecure(dropIns, di); err != nil {
			return nil, err
		}
		entries, err := os.ReadDir(dropIns)
		if err != nil {
			return nil, fmt.Errorf("policy: %w", err)
		}
		for _, e := range entries { // ReadDir sorts by name
			if isPolicyFileName(e.Name()) {
				files = append(files, filepath.Join(dropIns, e.Name()))
			}
		}
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("policy: %w", err)
	}
	if nodeName != "" {
		nodes := filepath.Join(path, NodesDir)
		overlay := filepath.Join(nodes, nodeName+".yaml")
		if _, err := os.Stat(overlay); err == nil {
			ni, err := os.Stat(nodes)
			if err != nil {
				return nil, fmt.Errorf("policy: %w", err)
			}
			if err := checkSecure(nodes, ni); err != nil {
				return nil, err
			}
			files = append(files, overlay)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("policy: %w", err)
		}
	}
	return files, nil
}

// isPolicyFileName says which names in policy.d/ and nodes/ are policy
// files: *.yaml, not dotfiles (editor swap files, backups, a ConfigMap's
// ..data). Everything else there is never read (Unread).
func isPolicyFileName(name string) bool {
	return strings.HasSuffix(name, ".yaml") && !strings.HasPrefix(name, ".")
}

// checkSecure refuses a file or directory that group or others may write, or
// that is owned by anyone but root or the current user (trustedpath.Check).
func checkSecure(name string, fi fs.FileInfo) error {
	return pathErr(trustedpath.Check(name, fi))
}

// checkChain refuses name when anyone but root (or the user patchgate runs
// as) could change what it names, from "/" down (trustedpath.Chain), and
// returns the path it resolves to, with no symlink left in it.
func checkChain(name string) (string, error) {
	resolved, err := trustedpath.Chain(name)
	return resolved, pathErr(err)
}

// pathErr wraps what trustedpath refused in ErrInsecure, and the errors of
// reading the file system in "policy:".
func pathErr(err error) error {
	var te *trustedpath.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &te):
		return fmt.Errorf("%w: %w", ErrInsecure, err)
	default:
		return fmt.Errorf("policy: %w", err)
	}
}

// readSecure opens the file, checks the opened file (not the name again), and
// reads it.
//
// It opens the path checkChain resolved, without following a symlink there
// (checkChain has walked every one), and without blocking: open(2) of a
// FIFO waits for a writer, which would hang `policy validate` and the
// service's watcher on a FIFO named *.yaml in policy.d. What is opened is
// then refused unless fstat says it is a regular file.
func readSecure(name string) ([]byte, error) {
	resolved, err := checkChain(name)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(resolved, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOFOLLOW|syscall.O_CLOEXEC|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	data, err := readOpened(name, f)
	if cerr := f.Close(); err == nil && cerr != nil {
		return nil, fmt.Errorf("policy: %w", cerr)
	}
	return data, err
}

func readOpened(name string, f *os.File) ([]byte, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrInvalid, name)
	}
	if err := checkSecure(name, fi); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, maxPolicyFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("policy: %s: %w", name, err)
	}
	if len(data) > maxPolicyFileSize {
		return nil, &ValidationError{Errors: []PosError{{File: name, Msg: fmt.Sprintf("larger than %d bytes", maxPolicyFileSize)}}}
	}
	return data, nil
}

// parseFile parses one file into its top-level mapping node. An empty file
// gives nil.
func parseFile(src source, files map[*yaml.Node]string) (*yaml.Node, []PosError) {
	doc, extra, err := parseDocuments(src.data)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, []PosError{{File: src.name, Msg: "empty policy file"}}
		}
		return nil, []PosError{syntaxError(src.name, src.data, err)}
	}
	if extra != nil {
		return nil, []PosError{{File: src.name, Line: extra.Line, Msg: "more than one YAML document; a policy file holds exactly one"}}
	}
	if len(doc.Content) != 1 {
		return nil, []PosError{{File: src.name, Line: doc.Line, Msg: "empty policy file"}}
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, []PosError{{File: src.name, Line: root.Line, Msg: "a policy file must be a mapping (apiVersion, kind, metadata, spec)"}}
	}
	var mark func(n *yaml.Node)
	mark = func(n *yaml.Node) {
		files[n] = src.name
		for _, c := range n.Content {
			mark(c)
		}
	}
	mark(root)
	return root, nil
}

// parseDocuments parses the first YAML document of data and looks for a
// second one (extra, nil when there is none). err is io.EOF when data holds
// no document, or yaml's syntax error in either document.
func parseDocuments(data []byte) (doc *yaml.Node, extra *yaml.Node, err error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	doc = &yaml.Node{}
	if err := dec.Decode(doc); err != nil {
		return nil, nil, err
	}
	var next yaml.Node
	if err := dec.Decode(&next); err == nil {
		return doc, &next, nil
	} else if !errors.Is(err, io.EOF) {
		return nil, nil, err
	}
	return doc, nil, nil
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError turns yaml's syntax error in data into a PosError at the
// line the author must fix.
//
// yaml's own "line N" is not that line: for a parser error it is the line,
// counted from zero, where the enclosing block began, so that an
// indentation mistake on line 9 inside a mapping that starts on line 6 is
// reported as "line 5"; for a scanner error it is the line where the token
// being scanned began (a tab on line 9 after a value on line 8 is reported
// at line 8); and an unknown alias has no line at all. The problem's own
// position is not exported. syntaxLine finds it instead: the first line
// whose prefix of the file fails with the same error.
func syntaxError(file string, data []byte, err error) PosError {
	msg := strings.TrimSpace(err.Error())
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		msg = m[2]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	line := syntaxLine(data, err)
	if line == 0 {
		// UTF-16 input: yaml's line is the best there is.
		if m := yamlLineRE.FindStringSubmatch(strings.TrimSpace(err.Error())); m != nil {
			line, _ = strconv.Atoi(m[1])
		}
	}
	return PosError{File: file, Line: line, Msg: msg + syntaxHint(msg, lineText(data, line))}
}

// syntaxHint adds what the usual cause of a terse yaml message is.
func syntaxHint(msg, line string) string {
	indent := line[:len(line)-len(strings.TrimLeft(line, " \t"))]
	switch {
	case strings.Contains(indent, "\t") || (strings.Contains(msg, "tab character") && strings.Contains(line, "\t")):
		return " (indent with spaces: YAML does not allow tabs in indentation)"
	case msg == "did not find expected key" || msg == "did not find expected '-' indicator":
		return " (check this line's indentation against the keys above it)"
	}
	return ""
}

// syntaxLine returns the first line L (counted from 1) such that the file
// cut after line L fails to parse with the same error as the whole file,
// while the file cut after line L-1 does not. That is the line where the
// parser met the problem: the mis-indented key, the tab, the unclosed quote
// or bracket. It returns 0 for UTF-16 input, which it does not cut.
//
// The search is a bisection, so it costs a few parses of the file, and only
// on the error path. Its answer always has the property above: the upper
// end always fails with the error (the whole file does) and the lower end
// moves only past a prefix that does not.
func syntaxLine(data []byte, err error) int {
	if bytes.HasPrefix(data, []byte{0xfe, 0xff}) || bytes.HasPrefix(data, []byte{0xff, 0xfe}) {
		return 0
	}
	ends := lineEnds(data)
	want := err.Error()
	fails := func(l int) bool {
		_, _, e := parseDocuments(data[:ends[l-1]])
		return e != nil && e.Error() == want
	}
	lo, hi := 1, len(ends)
	for lo < hi {
		mid := lo + (hi-lo)/2
		if fails(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// lineEnds returns, for each line of data, the offset just after it (after
// its line break), counting line breaks as yaml does: LF, CR LF, CR, NEL,
// LS and PS. The last entry is len(data).
func lineEnds(data []byte) []int {
	var ends []int
	for i := 0; i < len(data); i++ {
		switch {
		case data[i] == '\n':
			ends = append(ends, i+1)
		case data[i] == '\r':
			if i+1 < len(data) && data[i+1] == '\n' {
				i++
			}
			ends = append(ends, i+1)
		case data[i] == 0xc2 && i+1 < len(data) && data[i+1] == 0x85:
			i++
			ends = append(ends, i+1)
		case data[i] == 0xe2 && i+2 < len(data) && data[i+1] == 0x80 && (data[i+2] == 0xa8 || data[i+2] == 0xa9):
			i += 2
			ends = append(ends, i+1)
		}
	}
	if len(ends) == 0 || ends[len(ends)-1] != len(data) {
		ends = append(ends, len(data))
	}
	return ends
}

// lineText returns line l (from 1) of data without its line break, or "".
func lineText(data []byte, l int) string {
	ends := lineEnds(data)
	if l < 1 || l > len(ends) {
		return ""
	}
	start := 0
	if l > 1 {
		start = ends[l-2]
	}
	return strings.TrimRight(string(data[start:ends[l-1]]), "\r\n\u0085\u2028\u2029")
}

// mergeNodes merges src over dst (both mapping nodes of the top level or
// below) and returns a new node; neither input is changed. Mappings merge by
// key; scalars and lists from src replace those in dst; the list at
// spec.exemptions is appended to instead.
func mergeNodes(dst, src *yaml.Node, path string, files map[*yaml.Node]string) *yaml.Node {
	if dst == nil || dst.Kind != yaml.MappingNode || src.Kind != yaml.MappingNode {
		if path == "spec.exemptions" && dst != nil && dst.Kind == yaml.SequenceNode && src.Kind == yaml.SequenceNode {
			out := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Line: src.Line, Column: src.Column}
			files[out] = files[src]
			out.Content = append(append(out.Content, dst.Content...), src.Content...)
			return out
		}
		return src
	}
	out := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: src.Line, Column: src.Column}
	files[out] = files[src]
	out.Content = append(out.Content, dst.Content...)
	for i := 0; i+1 < len(src.Content); i += 2 {
		k, v := src.Content[i], src.Content[i+1]
		found := false
		for j := 0; j+1 < len(out.Content); j += 2 {
			if out.Content[j].Kind == yaml.ScalarNode && k.Kind == yaml.ScalarNode && out.Content[j].Value == k.Value {
				out.Content[j+1] = mergeNodes(out.Content[j+1], v, joinPath(path, k.Value), files)
				found = true
				break
			}
		}
		if !found {
			out.Content = append(out.Content, k, v)
		}
	}
	return out
}

func load(srcs []source) (*Policy, error) {
	files := map[*yaml.Node]string{}
	var errs []PosError
	var merged *yaml.Node
	// Decode each file on its own first, so that a mistake in one file is
	// reported even when a later file overrides the key.
	for _, src := range srcs {
		if len(src.data) > maxPolicyFileSize {
			errs = append(errs, PosError{File: src.name, Msg: fmt.Sprintf("larger than %d bytes", maxPolicyFileSize)})
			continue
		}
		root, perrs := parseFile(src, files)
		if len(perrs) > 0 {
			errs = append(errs, perrs...)
			continue
		}
		d := &decoder{files: files}
		p := basePolicy()
		d.decode(root, reflect.ValueOf(p).Elem(), "")
		errs = append(errs, d.errs...)
		if merged == nil {
			merged = root
		} else {
			merged = mergeNodes(merged, root, "", files)
		}
	}
	if len(errs) > 0 {
		return nil, &ValidationError{Errors: dedupe(errs)}
	}
	if merged == nil {
		return nil, &ValidationError{Errors: []PosError{{File: "policy", Msg: "no policy files"}}}
	}
	d := &decoder{files: files}
	p := basePolicy()
	d.decode(merged, reflect.ValueOf(p).Elem(), "")
	if len(d.errs) > 0 {
		return nil, &ValidationError{Errors: dedupe(d.errs)}
	}
	for _, s := range srcs {
		p.Sources = append(p.Sources, s.name)
	}
	p.finalize()
	if err := p.prepare(); err != nil {
		return nil, err
	}
	return p, nil
}

func dedupe(errs []PosError) []PosError {
	seen := map[PosError]bool{}
	out := errs[:0]
	for _, e := range errs {
		if !seen[e] {
			seen[e] = true
			out = append(out, e)
		}
	}
	// Keep file order (the merge order) and sort by line within a file.
	order := map[string]int{}
	for _, e := range out {
		if _, ok := order[e.File]; !ok {
			order[e.File] = len(order)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if order[out[i].File] != order[out[j].File] {
			return order[out[i].File] < order[out[j].File]
		}
		return out[i].Line < out[j].Line
	})
	return out
}

// finalize fills in the actions that the policy left to defaults and
// normalises names.
func (p *Policy) finalize() {
	s := &p.Spec
	if s.Kernel.Action == "" {
		s.Kernel.Action = s.DefaultAction
	}
	for _, r := range s.Rules.all() {
		if r.Action == "" {
			r.Action = s.DefaultAction
		}
		if r.WhenKernelBehind == "" {
			r.WhenKernelBehind = r.Action
		}
	}
	for i, c := range s.Rules.Capabilities.Allowed {
		s.Rules.Capabilities.Allowed[i] = strings.TrimPrefix(strings.ToUpper(c), "CAP_")
	}
	for i, c := range s.Kernel.RequiredCVEs {
		s.Kernel.RequiredCVEs[i] = strings.ToUpper(c)
	}
	fillEmpty(reflect.ValueOf(s).Elem())
}

// fillEmpty replaces nil slices and maps with empty ones, so that a key left
// out and a key written as [] or {} give the same effective policy, the same
// `policy show` output and the same digest.
func fillEmpty(v reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				fillEmpty(v.Field(i))
			}
		}
	case reflect.Slice:
		if v.IsNil() {
			v.Set(reflect.MakeSlice(v.Type(), 0, 0))
		}
		for i := 0; i < v.Len(); i++ {
			fillEmpty(v.Index(i))
		}
	case reflect.Map:
		if v.IsNil() {
			v.Set(reflect.MakeMap(v.Type()))
		}
	}
}

// all returns the common part of every container rule, in registry order.
func (r *RulesSpec) all() []*RuleSpec {
	return []*RuleSpec{
		&r.RunAsRoot, &r.Privileged, &r.Capabilities.RuleSpec, &r.HostNamespaces.RuleSpec,
		&r.HostPathMounts.RuleSpec, &r.HostDevices.RuleSpec, &r.PrivilegeEscalation, &r.Seccomp.RuleSpec,
		&r.AppArmor.RuleSpec, &r.Sysctls.RuleSpec, &r.ProcMount.RuleSpec,
	}
}

// prepare compiles the policy for Evaluate and computes its digest.
func (p *Policy) prepare() error {
	c, err := compile(p)
	if err != nil {
		return err
	}
	d, err := digestOf(p)
	if err != nil {
		return err
	}
	p.compiled = c
	p.digest = d
	return nil
}

func digestOf(p *Policy) (string, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return "", fmt.Errorf("policy digest: %w", err)
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// basePolicy holds the defaults every policy file is decoded over. Rule
// actions are empty here: they default to spec.defaultAction in finalize.
func basePolicy() *Policy {
	return &Policy{
		Spec: Spec{
			DefaultAction: ActionEnforce,
			Kernel: KernelSpec{
				Provider:    "auto",
				Tools:       map[string]string{},
				MaxStateAge: Duration(10 * 60 * 1e9),
				OnUnknown:   ActionWarn,
			},
			Remediation: RemediationSpec{
				Timeout:   Duration(10 * 60 * 1e9),
				AdmitWait: Duration(1e9),
			},
			Rules: RulesSpec{
				Capabilities: CapabilitiesRule{Allowed: []string{
					"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
					"NET_BIND_SERVICE", "NET_RAW", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
				}},
				HostNamespaces: HostNamespacesRule{Namespaces: []string{"pid", "ipc", "network", "uts"}},
				HostPathMounts: HostPathMountsRule{
					Allowed: []AllowedHostPath{},
					Denied:  []string{},
					RuntimeDirs: []string{
						"/var/lib/containerd/io.containerd.grpc.v1.cri/sandboxes",
						"/run/containerd/io.containerd.grpc.v1.cri/sandboxes",
						"/var/lib/containers/storage",
						"/run/containers/storage",
					},
					KubeletDir: "/var/lib/kubelet",
					KubeletVolumePlugins: []string{
						"kubernetes.io~empty-dir", "kubernetes.io~configmap", "kubernetes.io~secret",
						"kubernetes.io~projected", "kubernetes.io~downward-api",
						"kubernetes.io~csi", "kubernetes.io~local-volume",
					},
				},
				HostDevices: HostDevicesRule{Allowed: []string{}},
				// What every runtime patchgate supports masks and makes
				// read-only by default: the intersection of containerd's
				// (pkg/oci/spec.go populateDefaultUnixSpec ReadonlyPaths and
				// defaultLinuxMaskedPaths, v2.4.2), runc's (`runc spec`,
				// hook/testdata/runc), podman's (4.3.1, hook/testdata/podman/
				// default: it makes /proc/asound read-only instead of masking
				// it) and the kubelet's (recorded through containerd's CRI,
				// hook/testdata/containerd).
				ProcMount: ProcMountRule{
					MaskedPaths: []string{
						"/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
						"/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
					},
					ReadonlyPaths: []string{
						"/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
					},
				},
				Seccomp:  SeccompRule{MustBlock: slices.Clone(defaultSeccompMustBlock)},
				AppArmor: AppArmorRule{RequireProfile: true},
				Sysctls:  SysctlsRule{Allowed: slices.Clone(kubernetesSafeSysctls)},
			},
			Audit: AuditSpec{
				Path:       "/var/log/patchgate/audit.log",
				MaxSizeMB:  100,
				MaxBackups: 10,
			},
			Hook: HookSpec{OnError: OnErrorDeny},
		},
	}
}
