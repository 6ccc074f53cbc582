package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/patchgate/patchgate/hook"
	"github.com/patchgate/patchgate/internal/hostpath"
	"github.com/patchgate/patchgate/internal/specinput"
	"github.com/patchgate/patchgate/policy"
)

func init() {
	register(newEvalCmd)
}

// maxInputSize bounds the spec, sandbox spec and kernel state files.
const maxInputSize = 16 << 20

// mapFlag collects repeated key=value flags.
type mapFlag map[string]string

func (m mapFlag) String() string { return "" }

// Type is the value's name in the help (pflag.Value).
func (m mapFlag) Type() string { return "key=value" }

func (m mapFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("%q is not key=value", s)
	}
	m[k] = v
	return nil
}

// evalFlags are `patchgate eval`'s flags.
type evalFlags struct {
	pol                                                     nodePolicyFlags
	specPath, sandboxPath, statePath, hostRoot, output, now string
	namespace, pod, podUID, container, image                string
	identityFrom                                            string
	toolsChroot                                             bool
	labels, podAnn                                          mapFlag
	// run: --running and its flags (evalrunning.go).
	run runningFlags
}

func newEvalCmd() *cobra.Command {
	f := &evalFlags{labels: mapFlag{}, podAnn: mapFlag{}}
	cmd := &cobra.Command{
		Use:   "eval --spec config.json | eval --running",
		Short: "evaluate an OCI spec, or every container running on this node (--running), against a policy",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return codeErr(runEval(f, cmd.Flags().Changed("node-name"), cmd.OutOrStdout(), cmd.ErrOrStderr()))
		},
	}
	fs := cmd.Flags()
	f.pol.add(cmd, true)
	fs.StringVar(&f.specPath, "spec", "", "the container: its OCI runtime spec (config.json) or crictl inspect output (containerd), - for stdin; required")
	fs.StringVar(&f.sandboxPath, "sandbox-spec", "", "its pod: the sandbox's OCI runtime spec or crictl inspectp output (pod labels and annotations, sysctls, host namespaces), - for stdin")
	fs.StringVar(&f.statePath, "kernel-state", "", "kernel state JSON (patchgate check -o json); without it the kernel state is unknown")
	fs.StringVar(&f.hostRoot, "host-root", "", "read the kernel state from this host root instead of --kernel-state (as patchgate check does), and resolve bind-mount sources' symlinks under it")
	fs.BoolVar(&f.toolsChroot, "tools-chroot", false, "with --host-root: run provider tools inside chroot(--host-root)")
	addOutputFlag(cmd, &f.output)
	fs.StringVar(&f.now, "now", "", "judge the kernel state's age as of this RFC 3339 time, e.g. 2026-11-27T12:00:00Z (default: now)")
	fs.StringVar(&f.identityFrom, "identity-from", hook.IdentityFromNone, "which runtime's annotations in the spec name the pod and container, as patchgate hook --identity-from: none (default; any runtime lets the container's creator write them), containerd or crio. crictl inspect output of a containerd container names its pod by containerd's own annotations in any case; --running goes by where each container was found: containerd's for a task in --containerd-state's k8s.io namespace, CRI-O's for a bundle under --storage-root, none for one found only under --runc-root")
	fs.StringVar(&f.namespace, "namespace", "", "pod namespace, when the input does not name the pod (see --identity-from)")
	fs.StringVar(&f.pod, "pod", "", "pod name, when the input does not name the pod (see --identity-from)")
	fs.StringVar(&f.podUID, "pod-uid", "", "pod UID, when the input does not name the pod (see --identity-from)")
	fs.StringVar(&f.container, "container", "", "container name, when the input does not name the container (see --identity-from)")
	fs.StringVar(&f.image, "image", "", "image reference, when the input does not name the container's image (see --identity-from)")
	fs.Var(f.labels, "label", "pod label key=value (repeatable)")
	fs.Var(f.podAnn, "pod-annotation", "pod annotation key=value (repeatable)")
	addRunningFlags(fs, &f.run)
	return cmd
}

// evalReport is `patchgate eval -o json|yaml`: the decision, and where its
// policy was read.
type evalReport struct {
	policy.Decision
	PolicySource policySource `json:"policySource"`
	// IdentitySource says where the pod's and container's identity came
	// from (which input, and which runtime's annotations if any).
	IdentitySource string `json:"identitySource"`
}

func runEval(f *evalFlags, nodeNameSet bool, stdout, stderr io.Writer) int {
	if f.run.running {
		return runEvalRunning(f, stdout, stderr)
	}
	if f.specPath == "" {
		fmt.Fprintln(stderr, "patchgate eval: --spec is required")
		return exitInvalid
	}
	switch f.identityFrom {
	case hook.IdentityFromNone, hook.IdentityFromContainerd, hook.IdentityFromCRIO:
	default:
		fmt.Fprintf(stderr, "patchgate eval: --identity-from %q: want none, containerd or crio\n", f.identityFrom)
		return exitInvalid
	}
	now := time.Now()
	if f.now != "" {
		t, err := parseNow(f.now)
		if err != nil {
			fmt.Fprintf(stderr, "patchgate eval: %v\n", err)
			return exitInvalid
		}
		now = t
	}

	p, src, err := f.pol.load(nodeNameSet)
	if err != nil {
		fmt.Fprintf(stderr, "patchgate eval: %v\n", err)
		return exitInvalid
	}
	if f.specPath == "-" && f.sandboxPath == "-" {
		fmt.Fprintln(stderr, "patchgate eval: only one of --spec and --sandbox-spec can be - (stdin)")
		return exitInvalid
	}
	ctr, err := readInput(f.specPath)
	if err != nil {
		fmt.Fprintf(stderr, "patchgate eval: --spec: %v\n", err)
		return exitInvalid
	}
	var podIn *specinput.Input
	if f.sandboxPath != "" {
		if podIn, err = readInput(f.sandboxPath); err != nil {
			fmt.Fprintf(stderr, "patchgate eval: --sandbox-spec: %v\n", err)
			return exitInvalid
		}
	}
	var ks *policy.KernelState
	if f.statePath != "" && f.hostRoot != "" {
		fmt.Fprintln(stderr, "patchgate eval: --kernel-state and --host-root exclude each other")
		return exitInvalid
	}
	if f.hostRoot != "" {
		r, err := newKernelReader(p, f.hostRoot, f.toolsChroot, 30*time.Second, func() time.Time { return now })
		if err != nil {
			fmt.Fprintf(stderr, "patchgate eval: %v\n", err)
			return exitInvalid
		}
		k := r.Read(context.Background())
		ks = &k
	}
	if f.statePath != "" {
		data, err := readFile(f.statePath)
		if err != nil {
			fmt.Fprintf(stderr, "patchgate eval: --kernel-state: %v\n", err)
			return exitInvalid
		}
		if ks, err = policy.ParseKernelState(data); err != nil {
			fmt.Fprintf(stderr, "patchgate eval: --kernel-state %s: %v\n", f.statePath, err)
			return exitInvalid
		}
	}
	opts := policy.FromSpecOptions{
		Source: "eval",
		// The spec's annotations name the pod only as the hook reads them
		// with the same --identity-from (REVIEW AF1, F3): a podman user's
		// --annotation io.kubernetes.pod.namespace=kube-system must not
		// preview an exemption the node would not give.
		Pod:       policy.PodIdentity{Namespace: f.namespace, Name: f.pod, UID: f.podUID, Labels: f.labels, Annotations: f.podAnn},
		Container: policy.ContainerIdentity{Name: f.container, Image: f.image},
	}
	if f.hostRoot != "" {
		// Namespace paths in the spec are judged against that host's
		// /proc/1/ns (a live container's spec, judged on its host).
		opts.HostNamespace = policy.HostNamespaceResolver(f.hostRoot)
		// Bind sources and overlay directories are judged where their
		// symlinks lead on that host, never leaving it.
		opts.ResolvePath = hostpath.Resolver(f.hostRoot)
		// A source that is a mount point there is traced to the host
		// paths that show it, with the mount table of that host's pid 1
		// (the runtime's mount namespace; <root>/proc/self would be
		// eval's own). A --host-root without proc/1/mountinfo (a copy of
		// a host's files) traces nothing.
		mounts := hostpath.NewHostMounts(f.hostRoot, filepath.Join(f.hostRoot, "proc/1/mountinfo"), true, nil)
		opts.MountOrigins = mounts.Origins
		// A source under a pod's kubelet directory is judged by the mount
		// that backs it there (none without that host's mount table).
		opts.PodMountBacking = policy.PodMountBackingFunc(mounts)
		// An empty AppArmor profile is unconfined where that host enforces
		// AppArmor (the strict side when it cannot be read).
		opts.HostAppArmor, _ = policy.HostAppArmorEnabled(f.hostRoot)
		// A named profile is judged by the mode that host loaded it in.
		opts.AppArmorMode = policy.AppArmorModeResolver(f.hostRoot)
	}
	w, identitySrc, err := specinput.Workload(ctr, podIn, f.identityFrom, opts)
	if err != nil {
		fmt.Fprintf(stderr, "patchgate eval: %s: %v\n", f.specPath, err)
		return exitInvalid
	}
	d := policy.Evaluate(p, w, ks, now)
	if f.output != outputText {
		if c := writeStructured(stdout, stderr, "patchgate eval", f.output, evalReport{d, src, identitySrc}); c != exitOK {
			return c
		}
	} else {
		writeInput(stdout, ctr, podIn, w)
		writeDecision(stdout, &d, w, ks != nil)
		writeIdentity(stdout, w, identitySrc)
		fmt.Fprintf(stdout, "policy read from %s\n", src)
	}
	if d.Verdict == policy.Deny {
		return exitDenied
	}
	return exitOK
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return ""
	}
	return h
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, maxInputSize+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	if len(data) > maxInputSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxInputSize)
	}
	return data, nil
}

// stdin is what --spec - reads (tests replace it).
var stdin io.Reader = os.Stdin

// readInput reads an OCI spec or crictl inspect(p) output from path, or
// from stdin for "-".
func readInput(path string) (*specinput.Input, error) {
	if path == "-" {
		in, err := specinput.Load(stdin)
		if err != nil {
			return nil, fmt.Errorf("stdin: %w", err)
		}
		return in, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	in, err := specinput.Load(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return in, nil
}

// writeInput says what was judged, when it came from crictl, and what a
// container's crictl inspect output alone does not carry.
func writeInput(w io.Writer, ctr, pod *specinput.Input, wl *policy.Workload) {
	if ctr.Kind != specinput.KindContainer {
		return
	}
	fmt.Fprintf(w, "container: %s %q in pod %s/%s (crictl inspect)\n", shortID(ctr.ID), ctr.Name, wl.Pod.Namespace, wl.Pod.Name)
	if pod == nil || pod.Kind != specinput.KindPod {
		fmt.Fprintln(w, "pod: labels and annotations not given (pass the pod's crictl inspectp output as --sandbox-spec)")
	}
}

// writeIdentity prints who the workload is and where that came from: an
// exemption by namespace, container or image applies only to what the
// node would take the same way.
func writeIdentity(w io.Writer, wl *policy.Workload, src string) {
	pod := strings.Trim(wl.Pod.Namespace+"/"+wl.Pod.Name, "/")
	if pod == "" {
		pod = "-"
	}
	name, image := wl.Container.Name, wl.Container.Image
	if name == "" {
		name = "-"
	}
	if image == "" {
		image = "-"
	}
	fmt.Fprintf(w, "identity: pod %s, container %s, image %s; from %s\n", pod, name, image, src)
}

// writeDecision prints a decision for people, ending with the one line a
// refused or flagged container's runtime would show (policy.Explain).
func writeDecision(w io.Writer, d *policy.Decision, wl *policy.Workload, haveState bool) {
	fmt.Fprintf(w, "decision: %s\n", d.Verdict)
	fmt.Fprintf(w, "policy: %s %s\n", d.Policy.Name, d.Policy.Digest)
	switch {
	case !haveState:
		fmt.Fprintln(w, "kernel: state not given (--kernel-state), judged unknown")
	case d.KernelBehind:
		fmt.Fprintln(w, "kernel: behind (rules use whenKernelBehind)")
	default:
		fmt.Fprintln(w, "kernel: ok")
	}
	if len(d.Violations) == 0 {
		fmt.Fprintln(w, "violations: none")
	} else {
		fmt.Fprintln(w, "violations:")
		for _, v := range d.Violations {
			fmt.Fprintf(w, "  %-8s %s: %s\n", v.Action, v.Rule, v.Detail)
		}
	}
	if len(d.Deferred) > 0 {
		fmt.Fprintf(w, "deferred (input not seen): %s\n", strings.Join(d.Deferred, ", "))
	}
	if len(d.Exemptions) > 0 {
		fmt.Fprintf(w, "exemptions applied: %s\n", strings.Join(d.Exemptions, ", "))
	}
	switch d.Verdict {
	case policy.Deny:
		fmt.Fprintf(w, "message: %s\n", policy.Explain(d, wl, policy.ActionEnforce))
	case policy.Warn:
		fmt.Fprintf(w, "message: %s\n", policy.Explain(d, wl, policy.ActionWarn))
	}
}
