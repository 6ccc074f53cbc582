package main

import (
	"context"
	"io"
	"time"

	"github.com/spf13/pflag"

	"github.com/patchgate/patchgate/internal/running"
	"github.com/patchgate/patchgate/policy"
)

// runningFlags are `patchgate eval --running`'s own flags.
type runningFlags struct {
	running                             bool
	inForce, auditLog, ctrdRuncRoot     string
	ctrdStates, runcRoots, storageRoots []string
}

func addRunningFlags(fs *pflag.FlagSet, f *runningFlags) {
	fs.BoolVar(&f.running, "running", false, "judge every container running on this node (containerd, podman, CRI-O, runc) by --policy next to the policy in force; exit 1 if any would be refused")
	fs.StringVar(&f.inForce, "policy-in-force", policy.DefaultDir, "with --running: the node's policy, which the node service enforces")
	fs.StringVar(&f.auditLog, "audit-log", "", "with --running: the audit log with each container's record (default: the in-force policy's spec.audit.path)")
	fs.StringVar(&f.ctrdRuncRoot, "containerd-runc-root", running.DefaultContainerdRuncRoot, "with --running: runc root of containerd's shim when a bundle's options.json names none")
	fs.StringArrayVar(&f.ctrdStates, "containerd-state", []string{running.DefaultContainerdState}, "with --running: containerd state directory (repeatable; \"\" for none)")
	fs.StringArrayVar(&f.runcRoots, "runc-root", []string{running.DefaultRuncRoot}, "with --running: runc --root of podman, CRI-O or runc (repeatable; \"\" for none)")
	fs.StringArrayVar(&f.storageRoots, "storage-root", running.DefaultStorageRoots, "with --running: containers/storage run or graph root of podman or CRI-O (repeatable; \"\" for none)")
}

// runEvalRunning is `patchgate eval --running`: every container running on
// this node judged by the candidate policy (--policy; default the policy
// in force) next to the policy in force (internal/running). Exit 1 when
// the candidate would refuse any (one that cannot be read counts), 2 when
// the run itself fails.
func runEvalRunning(f *evalFlags, stdout, stderr io.Writer) int {
	const who = "patchgate eval --running"
	if f.specPath != "" || f.sandboxPath != "" || f.statePath != "" {
		return fail(stderr, "%s: --spec, --sandbox-spec and --kernel-state judge one spec; --running reads the node's containers and kernel\n", who)
	}
	now := time.Now()
	if f.now != "" {
		t, err := parseNow(f.now)
		if err != nil {
			return fail(stderr, "%s: %v\n", who, err)
		}
		now = t
	}
	hostRoot := f.hostRoot
	if hostRoot == "" {
		hostRoot = "/"
	}
	r := &f.run
	cfg := running.Config{
		Options: running.Options{
			HostRoot: hostRoot, ContainerdStates: r.ctrdStates, ContainerdRuncRoot: r.ctrdRuncRoot,
			RuncRoots: r.runcRoots, StorageRoots: r.storageRoots,
		},
		InForcePath: r.inForce, StatusFile: f.pol.statusFile, AuditLog: r.auditLog, Now: now,
		Kernel: func(ctx context.Context, p *policy.Policy) *policy.KernelState {
			kr, err := newKernelReader(p, hostRoot, f.toolsChroot, 30*time.Second, func() time.Time { return now })
			if err != nil {
				return &policy.KernelState{Unknown: []policy.UnknownPart{{Part: "all", Reason: err.Error()}}}
			}
			k := kr.Read(ctx)
			return &k
		},
	}
	cfg.InForce, cfg.InForceErr = policy.Load(r.inForce, f.pol.nodeName)
	if f.pol.path == "" {
		if cfg.InForceErr != nil {
			return fail(stderr, "%s: no --policy, and the policy in force: %v\n", who, cfg.InForceErr)
		}
		cfg.Candidate, cfg.CandidatePath = cfg.InForce, r.inForce
	} else {
		p, err := policy.Load(f.pol.path, f.pol.nodeName)
		if err != nil {
			return fail(stderr, "%s: --policy: %v\n", who, err)
		}
		cfg.Candidate, cfg.CandidatePath = p, f.pol.path
	}
	rep, err := running.Run(context.Background(), cfg)
	if err != nil {
		return fail(stderr, "%s: %v\n", who, err)
	}
	if f.output != outputText {
		if c := writeStructured(stdout, stderr, who, f.output, rep); c != exitOK {
			return c
		}
	} else if err := rep.WriteText(stdout); err != nil {
		return fail(stderr, "%s: %v\n", who, err)
	}
	if rep.Refused() {
		return exitDenied
	}
	return exitOK
}
