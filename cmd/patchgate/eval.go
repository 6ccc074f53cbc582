package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/patchgate/patchgate/internal/hostpath"
	"github.com/patchgate/patchgate/internal/specinput"
	"github.com/patchgate/patchgate/policy"
)

func init() {
	register(command{name: "eval", summary: "evaluate an OCI spec against a policy offline", run: runEval})
}

// maxInputSize bounds the spec, sandbox spec and kernel state files.
const maxInputSize = 16 << 20

// mapFlag collects repeated key=value flags.
type mapFlag map[string]string

func (m mapFlag) String() string { return "" }

func (m mapFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("%q is not key=value", s)
	}
	m[k] = v
	return nil
}

func runEval(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("patchgate eval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		policyPath  = fs.String("policy", "", "policy file or directory (policy.yaml + policy.d/ + nodes/); empty: the built-in default policy")
		specPath    = fs.String("spec", "", "the container: its OCI runtime spec (config.json) or `crictl inspect` output (containerd), - for stdin; required")
		sandboxPath = fs.String("sandbox-spec", "", "its pod: the sandbox's OCI runtime spec or `crictl inspectp` output (pod labels and annotations, sysctls, host namespaces), - for stdin")
		statePath   = fs.String("kernel-state", "", "kernel state JSON (patchgate check -o json); without it the kernel state is unknown")
		hostRoot    = fs.String("host-root", "", "read the kernel state from this host root instead of --kernel-state (as patchgate check does), and resolve bind-mount sources' symlinks under it")
		toolsChroot = fs.Bool("tools-chroot", false, "with --host-root: run provider tools inside chroot(--host-root)")
		nodeName    = fs.String("node-name", hostname(), "node name: selects nodes/<name>.yaml in a policy directory")
		output      = fs.String("o", "text", "output format: text or json")
		nowFlag     = fs.String("now", "", "judge the kernel state's age as of this RFC 3339 time (default: now)")
		namespace   = fs.String("namespace", "", "pod namespace, when the spec has no CRI annotations")
		pod         = fs.String("pod", "", "pod name, when the spec has no CRI annotations")
		podUID      = fs.String("pod-uid", "", "pod UID, when the spec has no CRI annotations")
		container   = fs.String("container", "", "container name, when the spec has no CRI annotations")
		image       = fs.String("image", "", "image reference, when the spec has no CRI annotations")
		labels      = mapFlag{}
		podAnn      = mapFlag{}
	)
	fs.Var(labels, "label", "pod label key=value (repeatable)")
	fs.Var(podAnn, "pod-annotation", "pod annotation key=value (repeatable)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitInvalid
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "patchgate eval: unexpected argument %q\n", fs.Arg(0))
		return exitInvalid
	}
	if *specPath == "" {
		fmt.Fprintln(stderr, "patchgate eval: --spec is required")
		return exitInvalid
	}
	if *output != "text" && *output != "json" {
		fmt.Fprintf(stderr, "patchgate eval: -o %q: want text or json\n", *output)
		return exitInvalid
	}
	now := time.Now()
	if *nowFlag != "" {
		t, err := time.Parse(time.RFC3339, *nowFlag)
		if err != nil {
			fmt.Fprintf(stderr, "patchgate eval: --now: %v\n", err)
			return exitInvalid
		}
		now = t
	}

	p, err := loadPolicy(*policyPath, *nodeName)
	if err != nil {
		fmt.Fprintf(stderr, "patchgate eval: %v\n", err)
		return exitInvalid
	}
	if *specPath == "-" && *sandboxPath == "-" {
		fmt.Fprintln(stderr, "patchgate eval: only one of --spec and --sandbox-spec can be - (stdin)")
		return exitInvalid
	}
	ctr, err := readInput(*specPath)
	if err != nil {
		fmt.Fprintf(stderr, "patchgate eval: --spec: %v\n", err)
		return exitInvalid
	}
	var podIn *specinput.Input
	if *sandboxPath != "" {
		if podIn, err = readInput(*sandboxPath); err != nil {
			fmt.Fprintf(stderr, "patchgate eval: --sandbox-spec: %v\n", err)
			return exitInvalid
		}
	}
	var ks *policy.KernelState
	if *statePath != "" && *hostRoot != "" {
		fmt.Fprintln(stderr, "patchgate eval: --kernel-state and --host-root exclude each other")
		return exitInvalid
	}
	if *hostRoot != "" {
		r, err := newKernelReader(p, *hostRoot, *toolsChroot, 30*time.Second, func() time.Time { return now })
		if err != nil {
			fmt.Fprintf(stderr, "patchgate eval: %v\n", err)
			return exitInvalid
		}
		k := r.Read(context.Background())
		ks = &k
	}
	if *statePath != "" {
		data, err := readFile(*statePath)
		if err != nil {
			fmt.Fprintf(stderr, "patchgate eval: --kernel-state: %v\n", err)
			return exitInvalid
		}
		if ks, err = policy.ParseKernelState(data); err != nil {
			fmt.Fprintf(stderr, "patchgate eval: --kernel-state %s: %v\n", *statePath, err)
			return exitInvalid
		}
	}
	opts := policy.FromSpecOptions{
		Source: "eval",
		// eval judges a spec the operator chose, as its runtime would
		// have it judged: the CRI annotations name the pod. (The hook
		// trusts them only with --identity-from; REVIEW AF1.)
		TrustAnnotations: true,
		Pod:              policy.PodIdentity{Namespace: *namespace, Name: *pod, UID: *podUID, Labels: labels, Annotations: podAnn},
		Container:        policy.ContainerIdentity{Name: *container, Image: *image},
	}
	if *hostRoot != "" {
		// Namespace paths in the spec are judged against that host's
		// /proc/1/ns (a live container's spec, judged on its host).
		opts.HostNamespace = policy.HostNamespaceResolver(*hostRoot)
		// Bind sources and overlay directories are judged where their
		// symlinks lead on that host, never leaving it.
		opts.ResolvePath = hostpath.Resolver(*hostRoot)
		// A source that is a mount point there is traced to the host
		// paths that show it, with the mount table of that host's pid 1
		// (the runtime's mount namespace; <root>/proc/self would be
		// eval's own). A --host-root without proc/1/mountinfo (a copy of
		// a host's files) traces nothing.
		mounts := hostpath.NewHostMounts(*hostRoot, filepath.Join(*hostRoot, "proc/1/mountinfo"), true, nil)
		opts.MountOrigins = mounts.Origins
		// A source under a pod's kubelet directory is judged by the mount
		// that backs it there (none without that host's mount table).
		opts.PodMountBacking = policy.PodMountBackingFunc(mounts)
		// An empty AppArmor profile is unconfined where that host enforces
		// AppArmor (the strict side when it cannot be read).
		opts.HostAppArmor, _ = policy.HostAppArmorEnabled(*hostRoot)
		// A named profile is judged by the mode that host loaded it in.
		opts.AppArmorMode = policy.AppArmorModeResolver(*hostRoot)
	}
	w, err := specinput.Workload(ctr, podIn, opts)
	if err != nil {
		fmt.Fprintf(stderr, "patchgate eval: %s: %v\n", *specPath, err)
		return exitInvalid
	}
	d := policy.Evaluate(p, w, ks, now)
	if *output == "json" {
		b, err := json.MarshalIndent(d, "", "  ")
		if err != nil {
			fmt.Fprintf(stderr, "patchgate eval: %v\n", err)
			return exitInvalid
		}
		fmt.Fprintf(stdout, "%s\n", b)
	} else {
		writeInput(stdout, ctr, podIn, w)
		writeDecision(stdout, &d, ks != nil)
	}
	if d.Verdict == policy.Deny {
		return exitDenied
	}
	return exitOK
}

// loadPolicy loads the policy at path, or the built-in default when path is
// empty.
func loadPolicy(path, nodeName string) (*policy.Policy, error) {
	if path == "" {
		return policy.Default(), nil
	}
	return policy.Load(path, nodeName)
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
	defer f.Close()
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

// writeDecision prints a decision for people.
func writeDecision(w io.Writer, d *policy.Decision, haveState bool) {
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
}
