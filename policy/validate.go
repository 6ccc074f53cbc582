package policy

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	yaml "go.yaml.in/yaml/v3"
)

func (a *Action) decodeScalar(s string) error {
	switch Action(s) {
	case ActionEnforce, ActionWarn, ActionAudit, ActionOff:
		*a = Action(s)
		return nil
	}
	return fmt.Errorf("unknown action %q (want enforce, warn, audit or off)", s)
}

func (d *Duration) decodeScalar(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q (want a Go duration such as 30s, 10m, 1h)", s)
	}
	if v < 0 {
		return fmt.Errorf("duration %q must not be negative", s)
	}
	*d = Duration(v)
	return nil
}

// capabilityNames are the Linux capabilities, without the CAP_ prefix, in
// number order (capability.h).
var capabilityNames = []string{
	"CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
	"SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
	"IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
	"SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
	"LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
	"WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
}

// classicCapabilities is how many of capabilityNames every supported kernel
// knows (up to AUDIT_READ, Linux 3.16). A bounding set holding all of them is
// "all capabilities" for the privileged rule.
const classicCapabilities = 38

func isCapability(s string) bool {
	for _, c := range capabilityNames {
		if c == s {
			return true
		}
	}
	return false
}

// namespaceTypes are the namespace names the hostNamespaces rule knows, as the
// OCI spec spells them.
var namespaceTypes = []string{"cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"}

var providers = []string{"auto", "sysfs", "kpatch", "kernelcare", "canonical", "ksplice", "klp"}

var cveRE = regexp.MustCompile(`^CVE-[0-9]{4}-[0-9]{4,}$`)

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

type reportFunc = func(at *yaml.Node, format string, args ...any)

func (p *Policy) validateNode(n *yaml.Node, report reportFunc) {
	if av := mappingValue(n, "apiVersion"); av == nil {
		report(nil, "apiVersion: missing (want %s)", APIVersion)
	} else if p.APIVersion != APIVersion {
		report(av, "apiVersion: %q is not supported (want %s)", p.APIVersion, APIVersion)
	}
	if k := mappingValue(n, "kind"); k == nil {
		report(nil, "kind: missing (want %s)", Kind)
	} else if p.Kind != Kind {
		report(k, "kind: %q is not supported (want %s)", p.Kind, Kind)
	}
}

func (m *Metadata) validateNode(n *yaml.Node, report reportFunc) {
	if err := printable(m.Name); err != nil {
		report(mappingValue(n, "name"), "name: %v", err)
	}
}

// printable refuses a name with a character that is not printable: a
// control character, a line break (\n, \r, U+0085, U+2028, U+2029), a
// format character such as a bidi override. Names are written into log
// lines, messages, audit records and the header comment of the service's
// policy copy, where a line break once ended the comment and turned the
// rest of the name into YAML.
func printable(s string) error {
	for i, r := range s {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return fmt.Errorf("%q: the character %U at byte %d is not printable", s, r, i)
		}
	}
	return nil
}

func (s *Spec) validateNode(n *yaml.Node, report reportFunc) {
	seen := map[string]bool{}
	exNode := mappingValue(n, "exemptions")
	for i, e := range s.Exemptions {
		if e.Name != "" && seen[e.Name] {
			report(seqItem(exNode, i), "exemptions[%d]: duplicate exemption name %q", i, e.Name)
		}
		seen[e.Name] = true
	}
}

// exemptionNullable are the keys of an exemption that, left out, match (or
// lift) everything: the matchers, the annotation and the rules lifted.
var exemptionNullable = []string{"namespaces", "images", "containers", "podLabels", "annotation", "rules"}

func (e *Exemption) validateNode(n *yaml.Node, report reportFunc) {
	if blank(e.Name) {
		report(mappingValue(n, "name"), "name: missing (every exemption needs a name for the audit log)")
	} else if err := printable(e.Name); err != nil {
		report(mappingValue(n, "name"), "name: %v", err)
	}
	if len(e.Namespaces) == 0 && len(e.Images) == 0 && len(e.Containers) == 0 && len(e.PodLabels) == 0 {
		report(nil, "an exemption must set at least one of namespaces, images, containers, podLabels")
	}
	// A key written with no value (key: or key: ~) would keep the default,
	// "any": the widest exemption there is, and what a template renders for
	// an unset value. Leaving the key out says "any". ([] and "" stay
	// accepted: `policy show` and the service's policy copy write them.)
	for _, key := range exemptionNullable {
		if v := mappingValue(n, key); v != nil && isNull(v) {
			report(v, "%s: no value (leave the key out to match any)", key)
		}
	}
	if v := mappingValue(n, "annotation"); v != nil && v.Kind == yaml.ScalarNode && e.Annotation != "" && blank(e.Annotation) {
		report(v, "annotation: %q is not an annotation name", e.Annotation)
	}
	if e.Annotation != "" && len(e.Namespaces) == 0 {
		report(mappingValue(n, "annotation"), "annotation: an annotation exemption must list the namespaces allowed to use it")
	}
	for i, r := range e.Rules {
		if !IsRuleID(r) {
			report(seqItem(mappingValue(n, "rules"), i), "rules[%d]: unknown rule %q (known rules: %s)", i, r, strings.Join(RuleIDs(), ", "))
		}
	}
	// An empty or blank item matches what has no name: container "" is
	// every container podman, plain runc and the hook-judged sandboxes
	// run; no namespace, image or container is called " ".
	for _, m := range []struct {
		key, what string
		list      []string
	}{{"namespaces", "namespace", e.Namespaces}, {"images", "image pattern", e.Images}, {"containers", "container name", e.Containers}} {
		for i, v := range m.list {
			if blank(v) {
				report(seqItem(mappingValue(n, m.key), i), "%s[%d]: empty %s", m.key, i, m.what)
			}
		}
	}
	for k := range e.PodLabels {
		if blank(k) {
			report(mappingKey(mappingValue(n, "podLabels"), k), "podLabels: %q is not a label name", k)
		}
	}
}

// blank reports whether s is empty or white space only.
func blank(s string) bool { return strings.TrimSpace(s) == "" }

func (k *KernelSpec) validateNode(n *yaml.Node, report reportFunc) {
	if !contains(providers, k.Provider) {
		report(mappingValue(n, "provider"), "provider: unknown provider %q (want one of %s)", k.Provider, strings.Join(providers, ", "))
	}
	for name, p := range k.Tools {
		if !path.IsAbs(p) {
			report(mappingValue(mappingValue(n, "tools"), name), "tools.%s: %q must be an absolute path", name, p)
		}
	}
	for i, c := range k.RequiredCVEs {
		if !cveRE.MatchString(strings.ToUpper(c)) {
			report(seqItem(mappingValue(n, "requiredCVEs"), i), "requiredCVEs[%d]: %q is not a CVE ID (CVE-YYYY-NNNN)", i, c)
		}
	}
	for i, p := range k.RequiredPatches {
		if p == "" || strings.ContainsAny(p, "/ \t\n") {
			report(seqItem(mappingValue(n, "requiredPatches"), i), "requiredPatches[%d]: %q is not a live patch name", i, p)
		}
	}
	if k.MaxStateAge <= 0 {
		report(mappingValue(n, "maxStateAge"), "maxStateAge: must be greater than zero")
	}
}

func (r *RemediationSpec) validateNode(n *yaml.Node, report reportFunc) {
	if len(r.Command) > 0 && !path.IsAbs(r.Command[0]) {
		report(seqItem(mappingValue(n, "command"), 0), "command[0]: %q must be an absolute path (commands never run through a shell)", r.Command[0])
	}
	if r.Timeout <= 0 {
		report(mappingValue(n, "timeout"), "timeout: must be greater than zero")
	}
	if r.AdmitWait > r.Timeout {
		report(mappingValue(n, "admitWait"), "admitWait: %s must not exceed timeout %s", r.AdmitWait.D(), r.Timeout.D())
	}
}

func (c *CapabilitiesRule) validateNode(n *yaml.Node, report reportFunc) {
	for i, name := range c.Allowed {
		if !isCapability(strings.TrimPrefix(strings.ToUpper(name), "CAP_")) {
			report(seqItem(mappingValue(n, "allowed"), i), "allowed[%d]: unknown capability %q", i, name)
		}
	}
}

func (h *HostNamespacesRule) validateNode(n *yaml.Node, report reportFunc) {
	for i, ns := range h.Namespaces {
		if !contains(namespaceTypes, ns) {
			report(seqItem(mappingValue(n, "namespaces"), i), "namespaces[%d]: unknown namespace type %q (want one of %s)", i, ns, strings.Join(namespaceTypes, ", "))
		}
	}
}

func (h *HostPathMountsRule) validateNode(n *yaml.Node, report reportFunc) {
	for i, p := range h.Denied {
		if !path.IsAbs(p) {
			report(seqItem(mappingValue(n, "denied"), i), "denied[%d]: %q must be an absolute path", i, p)
		}
	}
	for i, a := range h.Allowed {
		at := seqItem(mappingValue(n, "allowed"), i)
		if !path.IsAbs(a.Path) {
			report(at, "allowed[%d].path: %q must be an absolute path", i, a.Path)
			continue
		}
		for _, d := range protectedHostPaths {
			if underDir(canonRun(path.Clean(a.Path)), d) {
				report(at, "allowed[%d].path: %q lies in %s, which no policy can allow (see docs/policy.md, protected host paths)", i, a.Path, d)
				break
			}
		}
	}
	if h.AllowReadOnly {
		report(mappingValue(n, "allowReadOnly"), "allowReadOnly: true is no longer supported: host paths are allow-listed; list the paths a container may mount read-only under allowed with readOnly: true (see docs/policy.md)")
	}
	for i, p := range h.RuntimeDirs {
		if !path.IsAbs(p) || path.Clean(p) == "/" {
			report(seqItem(mappingValue(n, "runtimeDirs"), i), "runtimeDirs[%d]: %q must be an absolute path other than /", i, p)
		}
	}
	if h.KubeletDir != "" && (!path.IsAbs(h.KubeletDir) || path.Clean(h.KubeletDir) == "/") {
		report(mappingValue(n, "kubeletDir"), "kubeletDir: %q must be an absolute path other than /", h.KubeletDir)
	}
	for i, p := range h.KubeletVolumePlugins {
		if p == "" || p == "." || p == ".." || strings.ContainsAny(p, "/\x00") {
			report(seqItem(mappingValue(n, "kubeletVolumePlugins"), i), "kubeletVolumePlugins[%d]: %q must be a directory name (such as kubernetes.io~csi)", i, p)
		}
	}
}

func (r *ProcMountRule) validateNode(n *yaml.Node, report reportFunc) {
	for _, key := range []string{"maskedPaths", "readonlyPaths"} {
		list := r.MaskedPaths
		if key == "readonlyPaths" {
			list = r.ReadonlyPaths
		}
		for i, p := range list {
			if !path.IsAbs(p) || path.Clean(p) == "/" {
				report(seqItem(mappingValue(n, key), i), "%s[%d]: %q must be an absolute path other than /", key, i, p)
			}
		}
	}
}

func (h *HostDevicesRule) validateNode(n *yaml.Node, report reportFunc) {
	for i, d := range h.Allowed {
		if _, err := parseDevNum(d); err != nil {
			report(seqItem(mappingValue(n, "allowed"), i), "allowed[%d]: %v", i, err)
		}
	}
}

func (s *SeccompRule) validateNode(n *yaml.Node, report reportFunc) {
	for i, name := range s.MustBlock {
		if _, ok := slices.BinarySearch(seccompJudged, name); !ok {
			report(seqItem(mappingValue(n, "mustBlock"), i), "mustBlock[%d]: %q is not a system call patchgate judges (see docs/policy.md)", i, name)
		}
	}
}

func (s *SysctlsRule) validateNode(n *yaml.Node, report reportFunc) {
	for i, name := range s.Allowed {
		if name == "" || strings.ContainsAny(name, " \t\n=") {
			report(seqItem(mappingValue(n, "allowed"), i), "allowed[%d]: %q is not a sysctl name", i, name)
		}
	}
}

func (a *AuditSpec) validateNode(n *yaml.Node, report reportFunc) {
	if a.Path != "" && !path.IsAbs(a.Path) {
		report(mappingValue(n, "path"), "path: %q must be an absolute path", a.Path)
	}
	if a.MaxSizeMB < 0 {
		report(mappingValue(n, "maxSizeMB"), "maxSizeMB: must not be negative")
	}
	if a.MaxBackups < 0 {
		report(mappingValue(n, "maxBackups"), "maxBackups: must not be negative")
	}
}

func (h *HookSpec) validateNode(n *yaml.Node, report reportFunc) {
	if h.OnError != OnErrorDeny && h.OnError != OnErrorAllow {
		report(mappingValue(n, "onError"), "onError: %q is not deny or allow", h.OnError)
	}
}
