package policy

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/containerd/v2/contrib/seccomp"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestSeccomp(t *testing.T) {
	testRuleOnFixtures(t, RuleSeccomp, []ruleFixtureCase{
		{"baseline", ""},
		{"seccomp-fail", `container "app" must not run seccomp unconfined (linux.seccomp is absent)`},
		{"privileged-fail", `container "app" must not run seccomp unconfined (linux.seccomp is absent)`},
	})
	testRuleDeferred(t, RuleSeccomp, FieldSeccomp)
}

// seccompWorkload is the baseline fixture with linux.seccomp replaced.
func seccompWorkload(t *testing.T, sc *specs.LinuxSeccomp) *Workload {
	t.Helper()
	spec := loadFixtureFile(t, filepath.Join(specsDir, "baseline", "config.json"))
	spec.Linux.Seccomp = sc
	w, err := FromSpec(spec, nil, FromSpecOptions{Container: ContainerIdentity{Name: "c"}})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func errnoRule(args []specs.LinuxSeccompArg, names ...string) specs.LinuxSyscall {
	return specs.LinuxSyscall{Names: names, Action: specs.ActErrno, Args: args}
}

// newUserFlag is the condition "clone's flags contain CLONE_NEWUSER";
// noNewUser the condition "they do not" (as containerd's clone rule).
var (
	newUserFlag = []specs.LinuxSeccompArg{{Index: 0, Value: cloneNewUser, ValueTwo: cloneNewUser, Op: specs.OpMaskedEqual}}
	noNewUser   = []specs.LinuxSeccompArg{{Index: 0, Value: cloneNewUser | 0x00020000, ValueTwo: 0, Op: specs.OpMaskedEqual}}
)

// TestSeccompBypasses: a filter counts for what it blocks. Each bypass the
// review found, and a control that passes.
func TestSeccompBypasses(t *testing.T) {
	all := slices.Clone(defaultSeccompMustBlock)
	allList := quoteList(all)
	// The real calls, and a rule that blocks clone with CLONE_NEWUSER.
	all = slices.DeleteFunc(all, func(s string) bool { return s == seccompCloneNewUser })
	allButBPF := slices.DeleteFunc(slices.Clone(all), func(s string) bool { return s == "bpf" })
	cloneNS := errnoRule(newUserFlag, "clone")
	bpfArg := []specs.LinuxSeccompArg{{Index: 0, Value: 0, Op: specs.OpEqualTo}}
	for _, tc := range []struct {
		name string
		sc   *specs.LinuxSeccomp
		want string // "" passes
	}{
		{"absent", nil, `container "c" must not run seccomp unconfined (linux.seccomp is absent)`},
		{"allow, no rules", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow},
			`container "c" must not run seccomp unconfined (linux.seccomp: defaultAction SCMP_ACT_ALLOW and no rule blocks a system call)`},
		{"allow with one dummy rule", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{errnoRule(nil, "getpid")}},
			`container "c" must block system calls ` + allList + ` (linux.seccomp: defaultAction SCMP_ACT_ALLOW)`},
		{"log", &specs.LinuxSeccomp{DefaultAction: specs.ActLog},
			`container "c" must not run seccomp unconfined (linux.seccomp: defaultAction SCMP_ACT_LOG and no rule blocks a system call)`},
		{"log with one dummy rule", &specs.LinuxSeccomp{DefaultAction: specs.ActLog, Syscalls: []specs.LinuxSyscall{{Names: []string{"getpid"}, Action: specs.ActKillProcess}}},
			`container "c" must block system calls ` + allList + ` (linux.seccomp: defaultAction SCMP_ACT_LOG)`},
		{"trace", &specs.LinuxSeccomp{DefaultAction: specs.ActTrace, Syscalls: []specs.LinuxSyscall{errnoRule(nil, allButBPF...), cloneNS}},
			`container "c" must block system call "bpf" (linux.seccomp: defaultAction SCMP_ACT_TRACE)`},
		{"notify", &specs.LinuxSeccomp{DefaultAction: specs.ActNotify, ListenerPath: "/run/agent.sock", Syscalls: []specs.LinuxSyscall{errnoRule(nil, allButBPF...), cloneNS}},
			`container "c" must block system call "bpf" (linux.seccomp: defaultAction SCMP_ACT_NOTIFY)`},
		{"unknown default action", &specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_NOPE\n", Syscalls: []specs.LinuxSyscall{errnoRule(nil, allButBPF...), cloneNS}},
			`container "c" must block system call "bpf" (linux.seccomp: defaultAction "SCMP_ACT_NOPE\n")`},
		{"allow, bpf blocked only with an argument condition", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
			Syscalls: []specs.LinuxSyscall{errnoRule(nil, allButBPF...), errnoRule(bpfArg, "bpf"), cloneNS}},
			`container "c" must block system call "bpf" (linux.seccomp: defaultAction SCMP_ACT_ALLOW)`},
		{"allow, unshare blocked and allowed", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
			Syscalls: []specs.LinuxSyscall{errnoRule(nil, all...), {Names: []string{"unshare"}, Action: specs.ActAllow}, cloneNS}},
			`container "c" must block system call "unshare" (linux.seccomp: defaultAction SCMP_ACT_ALLOW)`},
		{"errno, bpf re-opened", &specs.LinuxSeccomp{DefaultAction: specs.ActErrno,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"read", "write", "bpf"}, Action: specs.ActAllow}}},
			`container "c" must block system call "bpf" (linux.seccomp: defaultAction SCMP_ACT_ERRNO, a rule lets it through)`},
		{"errno, keyctl and mount re-opened by conditional and logging rules", &specs.LinuxSeccomp{DefaultAction: specs.ActErrno,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"keyctl"}, Action: specs.ActAllow, Args: bpfArg}, {Names: []string{"mount"}, Action: specs.ActLog}, errnoRule(nil, "mount")}},
			`container "c" must block system calls "keyctl", "mount" (linux.seccomp: defaultAction SCMP_ACT_ERRNO, a rule lets them through)`},
		{"errno, clone allowed for every flag", &specs.LinuxSeccomp{DefaultAction: specs.ActErrno,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"read", "clone"}, Action: specs.ActAllow}}},
			`container "c" must block system call "clone(CLONE_NEWUSER)" (linux.seccomp: defaultAction SCMP_ACT_ERRNO, a rule lets it through)`},
		{"errno, clone allowed with two conditions on the flags (runc ORs them)", &specs.LinuxSeccomp{DefaultAction: specs.ActErrno,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"clone"}, Action: specs.ActAllow, Args: append(slices.Clone(noNewUser), specs.LinuxSeccompArg{Index: 0, Value: 1, Op: specs.OpGreaterThan})}}},
			`container "c" must block system call "clone(CLONE_NEWUSER)" (linux.seccomp: defaultAction SCMP_ACT_ERRNO, a rule lets it through)`},
		{"errno, clone allowed on a condition on another argument", &specs.LinuxSeccomp{DefaultAction: specs.ActErrno,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"clone"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 1, Value: cloneNewUser, Op: specs.OpMaskedEqual}}}}},
			`container "c" must block system call "clone(CLONE_NEWUSER)" (linux.seccomp: defaultAction SCMP_ACT_ERRNO, a rule lets it through)`},
		{"allow, clone blocked only with CLONE_NEWUSER|CLONE_NEWNET", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
			Syscalls: []specs.LinuxSyscall{errnoRule(nil, all...), errnoRule([]specs.LinuxSeccompArg{{Index: 0, Value: cloneNewUser | 0x40000000, ValueTwo: cloneNewUser | 0x40000000, Op: specs.OpMaskedEqual}}, "clone")}},
			`container "c" must block system call "clone(CLONE_NEWUSER)" (linux.seccomp: defaultAction SCMP_ACT_ALLOW)`},
		// Controls.
		{"allow, every call blocked unconditionally", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
			Syscalls: []specs.LinuxSyscall{errnoRule(nil, allButBPF...), {Names: []string{"bpf"}, Action: specs.ActKillThread}, errnoRule(bpfArg, "read"), cloneNS}}, ""},
		{"errno with an allow list, clone without new namespaces", &specs.LinuxSeccomp{DefaultAction: specs.ActErrno,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"read", "write"}, Action: specs.ActAllow}, {Names: []string{"clone"}, Action: specs.ActAllow, Args: noNewUser}, errnoRule(bpfArg, "bpf")}}, ""},
		{"kill process", &specs.LinuxSeccomp{DefaultAction: specs.ActKillProcess}, ""},
		{"trap", &specs.LinuxSeccomp{DefaultAction: specs.ActTrap}, ""},
	} {
		w := seccompWorkload(t, tc.sc)
		v, bad, _ := outcome(t, everyRuleEnforced(t), w, RuleSeccomp)
		switch {
		case tc.want == "" && bad:
			t.Errorf("%s: violated: %s", tc.name, v.Detail)
		case tc.want != "" && v.Detail != tc.want:
			t.Errorf("%s:\n got  %q\n want %q", tc.name, v.Detail, tc.want)
		}
	}
}

// TestSeccompMustBlockParameter: rules.seccomp.mustBlock sets the calls;
// names are checked at load.
func TestSeccompMustBlockParameter(t *testing.T) {
	p, err := LoadBytes("s.yaml", []byte(header+"metadata: {name: s}\nspec: {rules: {seccomp: {mustBlock: [bpf, keyctl, bpf]}}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	w := seccompWorkload(t, &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{errnoRule(nil, "bpf")}})
	v, bad, _ := outcome(t, p, w, RuleSeccomp)
	if want := `container "c" must block system call "keyctl" (linux.seccomp: defaultAction SCMP_ACT_ALLOW)`; !bad || v.Detail != want {
		t.Errorf("got %q, want %q", v.Detail, want)
	}
	w = seccompWorkload(t, &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{errnoRule(nil, "bpf", "keyctl")}})
	if v, bad, _ := outcome(t, p, w, RuleSeccomp); bad {
		t.Errorf("bpf and keyctl blocked: %s", v.Detail)
	}
	// An empty list still refuses a filter that blocks nothing.
	p, err = LoadBytes("s.yaml", []byte(header+"metadata: {name: s}\nspec: {rules: {seccomp: {mustBlock: []}}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, bad, _ := outcome(t, p, seccompWorkload(t, &specs.LinuxSeccomp{DefaultAction: specs.ActLog}), RuleSeccomp); !bad {
		t.Error("SCMP_ACT_LOG with no rules passed with an empty mustBlock")
	}
	for _, bad := range []string{"BPF", "", "bpf ", "open/at", "read"} {
		_, err := LoadBytes("s.yaml", []byte(header+"metadata: {name: s}\nspec: {rules: {seccomp: {mustBlock: [\""+bad+"\"]}}}\n"))
		if err == nil || !strings.Contains(err.Error(), "is not a system call patchgate judges") {
			t.Errorf("mustBlock [%q]: %v", bad, err)
		}
	}
	for _, list := range [][]string{defaultSeccompMustBlock, seccompJudged} {
		if !slices.IsSorted(list) || len(slices.Compact(slices.Clone(list))) != len(list) {
			t.Errorf("not sorted and unique: %v", list)
		}
	}
	for _, name := range defaultSeccompMustBlock {
		if _, ok := slices.BinarySearch(seccompJudged, name); !ok {
			t.Errorf("default mustBlock %q is not judged", name)
		}
	}
}

// containerdDefaultProfileSpec is containerd's default spec (its default
// capabilities) with opts, and then containerd's RuntimeDefault seccomp
// profile, which depends on the capabilities, generated by containerd's own
// code (contrib/seccomp WithDefaultProfile, v2.4.2).
func containerdDefaultProfileSpec(t *testing.T, opts ...oci.SpecOpts) *specs.Spec {
	t.Helper()
	ctx := namespaces.WithNamespace(context.Background(), "k8s.io")
	opts = append(opts, seccomp.WithDefaultProfile())
	s, err := oci.GenerateSpec(ctx, nil, &containers.Container{ID: "c"}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSeccompDefaultMustBlockAgainstContainerd proves the default of
// rules.seccomp.mustBlock against containerd's real RuntimeDefault profile:
// with containerd's default capabilities every call in it is blocked and the
// rule passes; CAP_SYS_ADMIN makes containerd's profile allow the mount and
// namespace calls, and the rule sees it.
func TestSeccompDefaultMustBlockAgainstContainerd(t *testing.T) {
	spec := containerdDefaultProfileSpec(t)
	if spec.Linux.Seccomp == nil || spec.Linux.Seccomp.DefaultAction != specs.ActErrno {
		t.Fatalf("containerd's default profile: %+v", spec.Linux.Seccomp)
	}
	w, err := FromSpec(spec, nil, FromSpecOptions{Container: ContainerIdentity{Name: "c"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range defaultSeccompMustBlock {
		if !w.Seccomp.blocks(name) {
			t.Errorf("containerd's RuntimeDefault profile does not block %q", name)
		}
	}
	// Independently of the summary: no rule of the real profile lets one of
	// them through, and none is allowed by default.
	for _, r := range spec.Linux.Seccomp.Syscalls {
		for _, n := range r.Names {
			if slices.Contains(defaultSeccompMustBlock, n) && !seccompBlocks(string(r.Action)) {
				t.Errorf("containerd's profile lets %q through with %s", n, r.Action)
			}
		}
	}
	if v, bad, _ := outcome(t, everyRuleEnforced(t), w, RuleSeccomp); bad {
		t.Errorf("containerd's RuntimeDefault profile refused: %s", v.Detail)
	}
	// Judged calls that containerd's profile allows (clone with an argument
	// filter) are not blocked: the summary does not invent blocking. The
	// summary keeps only judged calls.
	for _, name := range w.Seccomp.Exceptions {
		if _, ok := slices.BinarySearch(seccompJudged, name); !ok {
			t.Errorf("exception %q is not a judged call", name)
		}
	}
	for _, name := range []string{"clone", "name_to_handle_at", "personality", "chroot"} {
		if w.Seccomp.blocks(name) {
			t.Errorf("%q judged blocked", name)
		}
	}

	admin := containerdDefaultProfileSpec(t, oci.WithAddedCapabilities([]string{"CAP_SYS_ADMIN"}))
	w, err = FromSpec(admin, nil, FromSpecOptions{Container: ContainerIdentity{Name: "c"}})
	if err != nil {
		t.Fatal(err)
	}
	v, bad, _ := outcome(t, everyRuleEnforced(t), w, RuleSeccomp)
	want := `container "c" must block system calls "bpf", "clone(CLONE_NEWUSER)", "clone3", "fsconfig", "fsmount", "fsopen", "fspick", "mount", "mount_setattr", "move_mount", "open_tree", "perf_event_open", "setns", "umount2", "unshare" (linux.seccomp: defaultAction SCMP_ACT_ERRNO, a rule lets them through)`
	if !bad || v.Detail != want {
		t.Errorf("containerd's profile with CAP_SYS_ADMIN:\n got  %q\n want %q", v.Detail, want)
	}
}
