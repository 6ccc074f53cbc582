package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"

	"github.com/patchgate/patchgate/internal/containerdconf"
	"github.com/patchgate/patchgate/livepatch"
	"github.com/patchgate/patchgate/policy"
)

func init() {
	register(newCheckCmd)
}

// checkReport is the JSON that `patchgate check -o json` prints. "kernel" is
// the KernelState that `patchgate eval --kernel-state` reads.
type checkReport struct {
	Kernel     *policy.KernelState `json:"kernel"`
	Compliant  bool                `json:"compliant"`
	Violations []policy.Violation  `json:"violations"`
	Policy     policy.PolicyRef    `json:"policy"`
	// PolicySource is where the policy was read, and why that one.
	PolicySource policySource `json:"policySource"`
	// Before and Remediation are set with --apply when an update ran.
	Before      *checkVerdict      `json:"before,omitempty"`
	Remediation *livepatch.Outcome `json:"remediation,omitempty"`
	// Service is the node service's status file, when --status-file is set.
	Service *serviceStatus `json:"service,omitempty"`
	// Containerd is the node's containerd config, when --containerd-config
	// is set; Warnings repeats its warning.
	Containerd *containerdCheck `json:"containerd,omitempty"`
	Warnings   []string         `json:"warnings,omitempty"`
}

type checkVerdict struct {
	Kernel     *policy.KernelState `json:"kernel"`
	Compliant  bool                `json:"compliant"`
	Violations []policy.Violation  `json:"violations"`
}

// checkFlags are `patchgate check`'s flags.
type checkFlags struct {
	pol                                nodePolicyFlags
	hostRoot, output, nfdFeatures, now string
	ctrdConfig, nriName                string
	quiet, apply, toolsChroot          bool
	toolTimeout                        time.Duration
}

func newCheckCmd() *cobra.Command {
	f := &checkFlags{}
	cmd := &cobra.Command{
		Use:   "check",
		Short: "read the host kernel's live-patch state and judge it (exit 0 compliant, 1 behind, 2 unreadable)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return codeErr(runCheck(f, cmd.Flags().Changed("node-name"), cmd.OutOrStdout(), cmd.ErrOrStderr()))
		},
	}
	fs := cmd.Flags()
	f.pol.add(cmd, false)
	fs.StringVar(&f.hostRoot, "host-root", "/", "the host's root directory (a DaemonSet mounts the node's / somewhere else)")
	addOutputFlag(cmd, &f.output)
	fs.BoolVarP(&f.quiet, "quiet", "q", false, "print only a one-line summary (for Node Problem Detector)")
	fs.BoolVar(&f.apply, "apply", false, "when the kernel is behind, run the live-patch update (spec.remediation.command or the provider's), show its progress and output on stderr, wait for it, and report before and after; SIGINT/SIGTERM leave a provider's update running or stop the site's command, exit 130/143 (docs/operations.md)")
	fs.StringVar(&f.nfdFeatures, "nfd-features", "", "also write a Node Feature Discovery feature file (patchgate.livepatch.compliant, patchgate.livepatch.effective-version)")
	fs.BoolVar(&f.toolsChroot, "tools-chroot", false, "run provider tools inside chroot(--host-root) (DaemonSet; see livepatch/exec.go)")
	fs.DurationVar(&f.toolTimeout, "tool-timeout", 30*time.Second, "timeout of each provider tool run")
	fs.StringVar(&f.now, "now", "", "judge the state as of this RFC 3339 time, e.g. 2026-11-27T12:00:00Z (tests)")
	fs.StringVar(&f.pol.statusFile, "status-file", defaultStatusFile, "node service status file to report (policy reloads, audit log, OCI hook injection), and which names the policy it enforces; \"\" to skip")
	fs.StringVar(&f.ctrdConfig, "containerd-config", containerdconf.DefaultPath, "containerd's config on the node (under --host-root; its imports are followed): warn when its NRI default validator does not require patchgate; \"\" to skip")
	fs.StringVar(&f.nriName, "nri-name", "patchgate", "patchgate's NRI plugin name for the required_plugins check (the running service's name when its status file has one)")
	return cmd
}

func runCheck(f *checkFlags, nodeNameSet bool, stdout, stderr io.Writer) int {
	if f.quiet && f.output != outputText {
		return fail(stderr, "patchgate check: -q prints a one-line summary; it cannot be combined with -o %s\n", f.output)
	}
	now := time.Now
	if f.now != "" {
		t, err := parseNow(f.now)
		if err != nil {
			return fail(stderr, "patchgate check: %v\n", err)
		}
		now = func() time.Time { return t }
	}
	p, src, err := f.pol.load(nodeNameSet)
	if err != nil {
		return fail(stderr, "patchgate check: %v\n", err)
	}
	reader, err := newKernelReader(p, f.hostRoot, f.toolsChroot, f.toolTimeout, now)
	if err != nil {
		return fail(stderr, "patchgate check: %v\n", err)
	}
	mon, err := livepatch.NewMonitor(reader, livepatch.WithLogger(discardLogger()))
	if err != nil {
		return fail(stderr, "patchgate check: %v\n", err)
	}
	ctx := context.Background()
	k := mon.Refresh(ctx)
	rep := checkReport{Policy: policy.PolicyRef{Name: p.Name(), Digest: p.Digest()}, PolicySource: src}
	rep.Kernel, rep.Violations = k, kernelViolations(p, k, now())
	rep.Compliant = len(rep.Violations) == 0

	interrupted := 0
	if f.apply && !rep.Compliant {
		printer := livepatch.ProgressPrinter(stderr)
		progress := printer
		if f.quiet {
			progress = quietProgress(printer)
		}
		rem, err := livepatch.NewRemediator(reader, mon,
			livepatch.WithCommand(p.Spec.Remediation.Command),
			livepatch.WithModules(p.Spec.Kernel.RequiredPatches),
			livepatch.WithRemediationTimeout(remediationTimeout(p)),
			livepatch.WithBackoff(0),
			livepatch.WithRemediationLogger(discardLogger()),
			livepatch.WithBehind(func(k *policy.KernelState) bool { return len(kernelViolations(p, k, now())) > 0 }),
			livepatch.WithProgress(progress),
			livepatch.WithRunLog(livepatch.DefaultRunLogDir),
		)
		if err != nil {
			return fail(stderr, "patchgate check: %v\n", err)
		}
		rep.Before = &checkVerdict{Kernel: rep.Kernel, Compliant: rep.Compliant, Violations: rep.Violations}
		if !f.quiet {
			printer(livepatch.Event{Kind: livepatch.EventNote, Message: "before: " + checkSummary(&rep, checkExitCode(rep.Violations))})
		}
		var o livepatch.Outcome
		o, interrupted = applyUntilSignal(rem)
		rep.Remediation = &o
		k = mon.Snapshot()
		if interrupted != 0 {
			// The run did not re-read the state: read it now, briefly.
			rctx, cancel := context.WithTimeout(ctx, f.toolTimeout)
			k = mon.Refresh(rctx)
			cancel()
		}
		rep.Kernel, rep.Violations = k, kernelViolations(p, k, now())
		rep.Compliant = len(rep.Violations) == 0
		if !f.quiet {
			printer(livepatch.Event{Kind: livepatch.EventNote, Message: "after: " + checkSummary(&rep, checkExitCode(rep.Violations))})
		}
	}

	if f.pol.statusFile != "" {
		st := readServiceStatus(f.pol.statusFile)
		rep.Service = &st
	}
	if f.ctrdConfig != "" {
		abs, _ := filepath.Abs(f.hostRoot) // newKernelReader checked it
		rep.Containerd = checkContainerd(abs, f.ctrdConfig, f.nriName, rep.Service, p)
		for _, w := range []string{rep.Containerd.Warning, rep.Containerd.DirsWarning} {
			if w != "" {
				rep.Warnings = append(rep.Warnings, w)
			}
		}
	}
	verdict := checkExitCode(rep.Violations)
	code := verdict
	if interrupted != 0 {
		code = interrupted
	}
	if f.nfdFeatures != "" {
		if err := writeNFDFeatures(f.nfdFeatures, rep.Compliant, k); err != nil {
			return fail(stderr, "patchgate check: --nfd-features: %v\n", err)
		}
	}
	var out bytes.Buffer
	switch {
	case f.quiet:
		out.WriteString(checkSummary(&rep, verdict) + "\n")
	case f.output != outputText:
		if c := writeStructured(&out, stderr, "patchgate check", f.output, rep); c != exitOK {
			return c
		}
	default:
		writeCheckText(&out, &rep, verdict)
	}
	if _, err := stdout.Write(out.Bytes()); err != nil {
		return fail(stderr, "patchgate check: writing the report: %v\n", err)
	}
	return code
}

// fail prints a message for the user and returns exit code 2.
func fail(stderr io.Writer, format string, a ...any) int {
	if _, err := fmt.Fprintf(stderr, format, a...); err != nil {
		return exitInvalid
	}
	return exitInvalid
}

// table lays out rows in columns two spaces apart.
func table(w *bytes.Buffer, rows [][]string) {
	var width []int
	for _, r := range rows {
		for i, c := range r {
			if i >= len(width) {
				width = append(width, 0)
			}
			width[i] = max(width[i], len(c))
		}
	}
	for _, r := range rows {
		var line strings.Builder
		for i, c := range r {
			line.WriteString(c)
			if i < len(r)-1 {
				line.WriteString(strings.Repeat(" ", width[i]-len(c)+2))
			}
		}
		w.WriteString(strings.TrimRight(line.String(), " ") + "\n")
	}
}

// newKernelReader builds a livepatch.Reader from the policy's spec.kernel
// (provider, tools) and a host root.
func newKernelReader(p *policy.Policy, hostRoot string, chroot bool, toolTimeout time.Duration, now func() time.Time) (*livepatch.Reader, error) {
	if hostRoot == "" {
		hostRoot = "/"
	}
	abs, err := filepath.Abs(hostRoot)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("--host-root: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("--host-root: %s is not a directory", abs)
	}
	return livepatch.NewReader(
		livepatch.WithHostRoot(abs),
		livepatch.WithProvider(p.Spec.Kernel.Provider),
		livepatch.WithTools(p.Spec.Kernel.Tools),
		livepatch.WithChroot(chroot),
		livepatch.WithToolTimeout(toolTimeout),
		livepatch.WithClock(now),
	)
}

func remediationTimeout(p *policy.Policy) time.Duration {
	if d := p.Spec.Remediation.Timeout.D(); d > 0 {
		return d
	}
	return 10 * time.Minute
}

// kernelViolations are the kernel rules' violations (never nil).
func kernelViolations(p *policy.Policy, k *policy.KernelState, now time.Time) []policy.Violation {
	v, _ := policy.EvaluateKernel(p, k, now)
	if v == nil {
		v = []policy.Violation{}
	}
	return v
}

// checkExitCode: 1 when a kernel rule says the kernel is behind, else 2 when
// the state the policy needs could not be read, else 0.
func checkExitCode(violations []policy.Violation) int {
	unknown := false
	for _, v := range violations {
		if v.Rule != policy.RuleKernelStateUnknown {
			return exitDenied
		}
		unknown = true
	}
	if unknown {
		return exitInvalid
	}
	return exitOK
}

func checkSummary(rep *checkReport, code int) string {
	k := rep.Kernel
	version := k.Release
	if k.EffectiveVersion != "" {
		version = k.EffectiveVersion + " (running " + k.Release + ")"
	}
	if version == "" {
		version = "unknown release"
	}
	inForce := 0
	for _, p := range k.Patches {
		if p.InForce() {
			inForce++
		}
	}
	head := fmt.Sprintf("kernel %s, %d live patch(es) in force", version, inForce)
	switch code {
	case exitOK:
		return head + ": compliant"
	case exitDenied:
		return head + ": behind: " + violationReasons(rep.Violations)
	default:
		return head + ": state unknown: " + violationReasons(rep.Violations)
	}
}

func violationReasons(vs []policy.Violation) string {
	var parts []string
	for _, v := range vs {
		parts = append(parts, v.Rule+" ("+v.Detail+")")
	}
	return strings.Join(parts, "; ")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// writeCheckText prints the state as a short table for people.
func writeCheckText(w *bytes.Buffer, rep *checkReport, code int) {
	if rep.Before != nil {
		w.WriteString("== before\n")
		writeKernelTable(w, rep.Before.Kernel)
		writeVerdict(w, rep.Policy, rep.Before.Violations, checkExitCode(rep.Before.Violations))
		o := rep.Remediation
		fmt.Fprintf(w, "\n== remediation: %s", o.Status)
		if o.Reason != "" {
			fmt.Fprintf(w, ": %s", o.Reason)
		}
		w.WriteString("\n")
		for _, c := range o.Commands {
			fmt.Fprintf(w, "   ran: %s\n", strings.Join(c, " "))
		}
		if o.Log != "" {
			fmt.Fprintf(w, "   output: %s\n", o.Log)
		}
		w.WriteString("\n== after\n")
	}
	writeKernelTable(w, rep.Kernel)
	writeVerdict(w, rep.Policy, rep.Violations, code)
	fmt.Fprintf(w, "policy read from %s\n", rep.PolicySource)
	if rep.Service != nil || rep.Containerd != nil {
		fmt.Fprintln(w)
	}
	if rep.Service != nil {
		writeServiceStatus(w, *rep.Service)
	}
	if rep.Containerd != nil {
		writeContainerdCheck(w, rep.Containerd)
	}
}

func writeKernelTable(w *bytes.Buffer, k *policy.KernelState) {
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	pending := "unknown"
	if k.UpdatesPending != nil {
		pending = yesNo(*k.UpdatesPending)
	}
	table(w, [][]string{
		{"release", dash(k.Release)},
		{"effective version", dash(k.EffectiveVersion)},
		{"distro ordering", dash(k.Distro)},
		{"providers", dash(strings.Join(k.Providers, ", "))},
		{"livepatch taint", yesNo(k.LivepatchTainted)},
		{"updates pending", pending},
		{"fixed CVEs", strings.TrimSpace(fmt.Sprintf("%d %s", len(k.FixedCVEs), strings.Join(k.FixedCVEs, " ")))},
		{"observed at", k.ObservedAt.UTC().Format(time.RFC3339)},
	})
	w.WriteString("\n")
	if len(k.Patches) == 0 {
		w.WriteString("no live patches\n")
	} else {
		rows := [][]string{{"PATCH", "PROVIDER", "ENABLED", "TRANSITION", "IN FORCE"}}
		for _, p := range k.Patches {
			rows = append(rows, []string{p.Name, p.Provider, yesNo(p.Enabled), yesNo(p.Transition), yesNo(p.InForce())})
		}
		table(w, rows)
	}
	for _, u := range k.Unknown {
		who := ""
		if u.Provider != "" {
			who = " (" + u.Provider + ")"
		}
		fmt.Fprintf(w, "unknown: %s%s: %s\n", u.Part, who, u.Reason)
	}
	for _, c := range k.Conflicts {
		fmt.Fprintf(w, "conflict: %s\n", c)
	}
}

func writeVerdict(w *bytes.Buffer, ref policy.PolicyRef, vs []policy.Violation, code int) {
	verdict := map[int]string{exitOK: "compliant", exitDenied: "NOT compliant (behind)", exitInvalid: "NOT compliant (state unknown)"}[code]
	fmt.Fprintf(w, "\npolicy %s (%s): %s\n", ref.Name, ref.Digest, verdict)
	for _, v := range vs {
		fmt.Fprintf(w, "  %s [%s] %s: %s\n", v.Rule, v.Action, v.Reason, v.Detail)
	}
}

// writeNFDFeatures writes a Node Feature Discovery local feature file
// (nfd-worker reads /etc/kubernetes/node-feature-discovery/features.d/*;
// each line is <name>[=<value>], labelled feature.node.kubernetes.io/<name>).
// Values are label values: at most 63 of [A-Za-z0-9._-], alphanumeric at
// both ends; other characters of the version become '_'. The file is
// replaced atomically so nfd-worker never reads half of it.
func writeNFDFeatures(path string, compliant bool, k *policy.KernelState) error {
	version := k.EffectiveVersion
	if version == "" {
		version = k.Release
	}
	var b strings.Builder
	fmt.Fprintf(&b, "patchgate.livepatch.compliant=%t\n", compliant)
	if v := labelValue(version); v != "" {
		fmt.Fprintf(&b, "patchgate.livepatch.effective-version=%s\n", v)
	}
	return livepatch.WriteFileAtomic(path, []byte(b.String()), 0o644)
}

func labelValue(s string) string {
	out := []byte(s)
	for i, c := range out {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			out[i] = '_'
		}
	}
	v := string(out)
	if len(v) > 63 {
		v = v[:63]
	}
	return strings.TrimFunc(v, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	})
}

// Exit codes of check --apply interrupted by a signal (128 + the signal's
// number, as a shell reports a command killed by it).
const (
	exitSIGINT  = 128 + int(syscall.SIGINT)  // 130
	exitSIGTERM = 128 + int(syscall.SIGTERM) // 143
)

// applyUntilSignal runs the update, SIGINT and SIGTERM interrupting it as
// livepatch.Remediator.Apply describes, and returns the outcome and, when a
// signal interrupted it, the exit code. Once Apply has returned the signals
// have their default effect again: a further Ctrl-C ends patchgate at once.
func applyUntilSignal(rem *livepatch.Remediator) (livepatch.Outcome, int) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	o := rem.Apply(sigs)
	signal.Stop(sigs)
	switch o.Interrupted {
	case "":
		return o, 0
	case "SIGTERM":
		return o, exitSIGTERM
	}
	return o, exitSIGINT
}

// quietProgress keeps, of an update's progress, only what an interrupt
// does (-q).
func quietProgress(p func(livepatch.Event)) func(livepatch.Event) {
	return func(e livepatch.Event) {
		if e.Kind == livepatch.EventNote {
			p(e)
		}
	}
}

func discardLogger() logrus.FieldLogger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}
