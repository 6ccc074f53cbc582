package harness

import (
	"fmt"
	"os"
	"slices"
	"strings"
)

// Scenario is one row of the containerd support matrix (issue 11): what test/e2e's
// TestContainerdMatrix proves on every release in ContainerdVersions. The README's support
// matrix is checked against this list, so the table claims nothing a test does not prove.
type Scenario struct {
	ID    string // stable, used as the subtest name
	Title string // what a reader of the matrix sees
}

// Scenarios is the matrix, in the order the test runs them on one containerd.
var Scenarios = []Scenario{
	{"compliant-runs", "a compliant container runs, with exactly one patchgate createRuntime hook"},
	{"flagged-audited-once", "a flagged container (root on a patched kernel) runs and gets exactly one audit record"},
	{"privileged-refused", "a privileged container is refused with the patchgate: line"},
	{"root-kernel-behind-refused", "a root container is refused while the kernel is behind"},
	{"host-pid-refused", "a pod with host PID is refused"},
	{"killed-fails-closed", "while patchgate is killed (SIGKILL), a non-compliant container is refused"},
	{"reconnects-after-restart", "patchgate reconnects after a containerd restart and enforces again"},
}

// Support is how patchgate runs on one containerd release, as the matrix test sets it up.
type Support struct {
	Version string
	NRI     string // the NRI version the release links
	// Mode is the NRI protocol mode: "validator" (ValidateContainerAdjustment) or
	// "CreateContainer" (NRI v0.8.0 has no validation event).
	Mode string
	// FailClosed lists what refuses containers while patchgate is down.
	FailClosed []string
	// Unseen is what the NRI plugin cannot see on this release; the OCI hook judges it from
	// the final spec, at task creation (crictl start), not at create.
	Unseen []string
	// Example is the config snippet directory under examples/containerd.
	Example string
}

// Fail-closed mechanisms.
const (
	FailClosedBaseSpecHook    = "base_runtime_spec hook"
	FailClosedRequiredPlugins = "default_validator required_plugins"
)

// SupportOf returns how release v is run and what closes it.
func SupportOf(v string) Support {
	s := Support{Version: v, Mode: "CreateContainer", NRI: "v0.8.0", FailClosed: []string{FailClosedBaseSpecHook}}
	switch v {
	case Containerd22:
		s.NRI = "v0.11.0"
	case Containerd24:
		s.NRI = "v0.12.3"
	}
	if HasValidation(v) {
		s.Mode = "validator"
		s.FailClosed = append(s.FailClosed, FailClosedRequiredPlugins)
	}
	if !NRIShowsUser(v) {
		s.Unseen = append(s.Unseen, "the user (uid/gid) and the seccomp filter: containerd sends them from 2.3 (2.2 only the requested seccomp profile type, NRI v0.8.0 neither)")
	}
	if !HasValidation(v) {
		s.Unseen = append(s.Unseen, "adjustments by NRI plugins ordered after patchgate", "CDI devices resolved after NRI")
	}
	s.Unseen = append(s.Unseen, "capabilities, privileged, noNewPrivileges, AppArmor, SELinux, masked and read-only paths, pod sysctls (never in NRI)")
	var ma, mi int
	_, _ = fmt.Sscanf(v, "v%d.%d", &ma, &mi)
	s.Example = fmt.Sprintf("examples/containerd/v%d.%d", ma, mi)
	return s
}

// NRIShowsUser reports whether containerd release v puts the container's user and its
// seccomp filter into the NRI container (2.3 and later; internal/nri/container*.go): before,
// patchgate's hook judges runAsRoot and seccomp at task creation.
func NRIShowsUser(v string) bool { return !versionBefore(v, 2, 3) }

// MatrixVersions returns the releases the matrix runs: $PATCHGATE_E2E_CONTAINERD (one
// release or a comma-separated list, e.g. v2.4.2 for a quick run), else all of
// ContainerdVersions.
func MatrixVersions() ([]string, error) {
	env := strings.TrimSpace(os.Getenv("PATCHGATE_E2E_CONTAINERD"))
	if env == "" || env == "all" {
		return slices.Clone(ContainerdVersions), nil
	}
	var out []string
	for _, v := range strings.Split(env, ",") {
		v = strings.TrimSpace(v)
		if !slices.Contains(ContainerdVersions, v) {
			return nil, fmt.Errorf("PATCHGATE_E2E_CONTAINERD: %q is not one of %s", v, strings.Join(ContainerdVersions, ", "))
		}
		out = append(out, v)
	}
	return out, nil
}

// SupportTable renders the support matrix of docs/containerd.md from SupportOf and
// Scenarios; TestSupportTableInDocs keeps the document equal to it. The fail-open window is
// "none" on every release because TestContainerdMatrix's killed-fails-closed scenario
// fails if any non-compliant container is admitted after patchgate is killed.
func SupportTable() string { return SupportTableFrom("..") }

// SupportTableFrom is SupportTable for a document in another directory:
// root is the repository root relative to it ("." for the README).
func SupportTableFrom(root string) string {
	var b strings.Builder
	b.WriteString("| containerd | NRI | mode | fails closed by | NRI cannot see (the hook judges it at start) | fail-open window after SIGKILL | snippet |\n")
	b.WriteString("|---|---|---|---|---|---|---|\n")
	for _, v := range ContainerdVersions {
		s := SupportOf(v)
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | none | [`%s/`](%s/%s/) |\n",
			v, s.NRI, s.Mode, strings.Join(s.FailClosed, " + "), strings.Join(s.Unseen, "; "), s.Example, root, s.Example)
	}
	b.WriteString("\n`TestContainerdMatrix` runs these scenarios (`harness.Scenarios`) on every release:\n\n")
	for _, sc := range Scenarios {
		fmt.Fprintf(&b, "- `%s`: %s\n", sc.ID, sc.Title)
	}
	return b.String()
}
