package policy

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
)

// Rule seccomp
//
// Why: the runtime's default seccomp profile blocks the system calls behind a
// large share of kernel privilege escalations (keyctl, bpf, userfaultfd,
// io_uring, unshare of new user namespaces, ...). On a kernel that is behind
// on patches this filter is often all that stands between a container and the
// bug. A filter that exists but lets those calls through (defaultAction
// SCMP_ACT_ALLOW with one dummy rule, SCMP_ACT_LOG, ...) confines nothing
// that matters, so the rule judges what the filter blocks, not whether one
// is there.
//
// Reads: linux.seccomp (Workload.SeccompUnconfined and Workload.Seccomp, which
// SummarizeSeccomp builds from the spec or from NRI's seccompPolicy).
//
// What blocks: the actions SCMP_ACT_ERRNO, SCMP_ACT_KILL,
// SCMP_ACT_KILL_THREAD, SCMP_ACT_KILL_PROCESS and SCMP_ACT_TRAP make a call
// fail before the kernel runs it. SCMP_ACT_ALLOW and SCMP_ACT_LOG run it;
// SCMP_ACT_TRACE lets a ptrace tracer (which the container may be itself)
// run it, and SCMP_ACT_NOTIFY a user-space agent; any other action is not
// understood. Those count as letting the call through (runtime-spec
// config-linux.md "seccomp"; runc libcontainer/seccomp). A call is blocked
// when no rule that lets it through names it (a rule with argument
// conditions lets some calls through, which is enough), and either the
// default action blocks or a rule without argument conditions blocks it. A
// conditional blocking rule blocks only the calls whose arguments match, so
// under an allowing default it does not count. When two rules name the same
// call with different actions, the one that lets it through wins (libseccomp
// either refuses the second rule or merges the two; patchgate does not bet
// on which).
//
// Allowed: a filter that blocks every call in rules.seccomp.mustBlock, and
// blocks at least one call. The set is the same whatever the default action:
// under a blocking default an explicit allow re-opens a call.
//
// Parameters: mustBlock (default: the kernel-attack-surface calls that
// containerd's RuntimeDefault profile blocks for a container with the default
// capabilities; defaultSeccompMustBlock).
var seccompRule = containerRule{
	id:     RuleSeccomp,
	reason: "seccomp unconfined",
	needs:  FieldSeccomp,
	check:  checkSeccomp,
	fix:    fixSeccomp,
}

// defaultSeccompMustBlock is the default of rules.seccomp.mustBlock: system
// calls that open kernel attack surface (new user and mount namespaces, eBPF,
// perf, keyrings, userfaultfd, io_uring, module and kexec loading, the new
// mount API, file handles) and that the RuntimeDefault profile of containerd
// v2.4.2 (contrib/seccomp/seccomp_default.go DefaultProfile) blocks for a
// container with containerd's default capabilities: none of them is in its
// allow list, they are allowed there only with CAP_SYS_ADMIN, CAP_BPF,
// CAP_PERFMON, CAP_SYS_MODULE or CAP_DAC_READ_SEARCH, and clone3 fails with
// ENOSYS. clone(CLONE_NEWUSER) is clone creating a user namespace, which
// containerd blocks with an argument filter on clone's flags (see
// seccompCloneNewUser). TestSeccompDefaultMustBlockAgainstContainerd proves
// it against that code. Left out on purpose: plain clone, and ptrace and
// process_vm_*, which containerd allows on kernels from 4.8. Sorted.
var defaultSeccompMustBlock = []string{
	"add_key",
	"bpf",
	"clone(CLONE_NEWUSER)",
	"clone3",
	"delete_module",
	"finit_module",
	"fsconfig",
	"fsmount",
	"fsopen",
	"fspick",
	"init_module",
	"io_uring_enter",
	"io_uring_register",
	"io_uring_setup",
	"kexec_file_load",
	"kexec_load",
	"keyctl",
	"mount",
	"mount_setattr",
	"move_mount",
	"open_by_handle_at",
	"open_tree",
	"perf_event_open",
	"pivot_root",
	"request_key",
	"setns",
	"umount2",
	"unshare",
	"userfaultfd",
}

// seccompJudged are the system calls rules.seccomp.mustBlock may name: the
// ones that open kernel attack surface or act on the host, taken from
// containerd v2.4.2 contrib/seccomp/seccomp_default.go (the calls it leaves
// out of its allow list, allows only with a capability, or allows only with
// an argument filter). A summary keeps only these, so the rule's cost does
// not grow with a profile's allow list. Sorted.
var seccompJudged = []string{
	"_sysctl", "acct", "add_key", "adjtimex", "bpf", "chroot", "clock_adjtime", "clock_settime",
	"clone", "clone(CLONE_NEWUSER)", "clone3", "create_module", "delete_module", "fanotify_init", "finit_module",
	"fsconfig", "fsmount", "fsopen", "fspick", "get_kernel_syms", "get_mempolicy", "init_module",
	"io_uring_enter", "io_uring_register", "io_uring_setup", "ioperm", "iopl", "kcmp",
	"kexec_file_load", "kexec_load", "keyctl", "lookup_dcookie", "mbind", "migrate_pages",
	"mount", "mount_setattr", "move_mount", "move_pages", "name_to_handle_at", "nfsservctl",
	"open_by_handle_at", "open_tree", "perf_event_open", "personality", "pidfd_getfd",
	"pivot_root", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace",
	"query_module", "quotactl", "quotactl_fd", "reboot", "request_key", "set_mempolicy",
	"setdomainname", "sethostname", "setns", "settimeofday", "stime", "swapoff", "swapon",
	"sysfs", "syslog", "umount", "umount2", "unshare", "uselib", "userfaultfd", "ustat",
	"vhangup", "vm86", "vm86old",
}

// SeccompSummary is a seccomp filter reduced to what the seccomp rule needs,
// computed once per container by SummarizeSeccomp so that the rule stays
// cheap.
type SeccompSummary struct {
	// DefaultAction is linux.seccomp.defaultAction ("" without a filter).
	DefaultAction string `json:"defaultAction,omitempty"`
	// DefaultBlocks is set when the default action makes a call fail.
	DefaultBlocks bool `json:"defaultBlocks,omitempty"`
	// RuleBlocks is set when some rule without argument conditions blocks a
	// call that no rule lets through (any call, judged or not).
	RuleBlocks bool `json:"ruleBlocks,omitempty"`
	// Exceptions are sorted, unique system call names, of those patchgate
	// judges (seccompJudged): with DefaultBlocks, the calls that some rule
	// lets through (for some arguments at least); otherwise the calls that a
	// rule without argument conditions blocks and no rule lets through.
	Exceptions []string `json:"exceptions,omitempty"`
}

// SeccompSyscall is one linux.seccomp.syscalls entry as SummarizeSeccomp
// reads it.
type SeccompSyscall struct {
	Names  []string
	Action string
	// Args are the entry's argument conditions.
	Args []SeccompArg
}

// SeccompArg is one argument condition (linux.seccomp.syscalls[].args[]).
type SeccompArg struct {
	Index    uint
	Value    uint64
	ValueTwo uint64
	Op       string
}

// seccompCloneNewUser is the pseudo system call "clone with CLONE_NEWUSER":
// a user namespace (and with it CAP_SYS_ADMIN over new mount, network, ...
// namespaces: nf_tables and the other namespaced kernel code). seccomp can
// filter clone's flags (unlike clone3's, which are in memory), and
// containerd's RuntimeDefault allows clone only when
// (flags & (CLONE_NEWNS|CLONE_NEWUSER|...)) == 0. It counts as blocked when
// every rule that lets clone through has exactly one condition on the flags
// argument and that condition is SCMP_CMP_MASKED_EQ with CLONE_NEWUSER in the
// mask and not in the value (several conditions on one argument are ORed by
// runc, so one is required), and either the default action blocks or a
// blocking rule names clone without conditions or with the single condition
// (flags & CLONE_NEWUSER) == CLONE_NEWUSER.
const seccompCloneNewUser = "clone(CLONE_NEWUSER)"

// cloneNewUser is CLONE_NEWUSER (linux/sched.h).
const cloneNewUser = 0x10000000

// cloneFlagsArg is the index of clone's flags argument: the second on s390
// (containerd's seccomp_default.go does the same), the first elsewhere.
func cloneFlagsArg() uint {
	if runtime.GOARCH == "s390" || runtime.GOARCH == "s390x" {
		return 1
	}
	return 0
}

// flagsConds returns the conditions on clone's flags argument.
func flagsConds(r *SeccompSyscall) []SeccompArg {
	var out []SeccompArg
	for _, a := range r.Args {
		if a.Index == cloneFlagsArg() {
			out = append(out, a)
		}
	}
	return out
}

// cloneNewUserBlocked applies seccompCloneNewUser's judgement.
func cloneNewUserBlocked(defaultBlocks bool, syscalls []SeccompSyscall) bool {
	blocked := defaultBlocks
	for i := range syscalls {
		r := &syscalls[i]
		if !slices.Contains(r.Names, "clone") {
			continue
		}
		c := flagsConds(r)
		if !seccompBlocks(r.Action) {
			if len(c) != 1 || c[0].Op != "SCMP_CMP_MASKED_EQ" || c[0].Value&cloneNewUser == 0 || c[0].ValueTwo&cloneNewUser != 0 {
				return false
			}
			continue
		}
		if len(r.Args) == 0 || (len(r.Args) == 1 && len(c) == 1 && c[0].Op == "SCMP_CMP_MASKED_EQ" &&
			c[0].Value == cloneNewUser && c[0].ValueTwo == cloneNewUser) {
			blocked = true
		}
	}
	return blocked
}

// seccompBlocks reports whether a seccomp action makes the call fail before
// the kernel runs it.
func seccompBlocks(action string) bool {
	switch action {
	case "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_TRAP":
		return true
	}
	return false
}

// SummarizeSeccomp reduces a seccomp filter (default action and syscall
// rules) to a SeccompSummary.
func SummarizeSeccomp(defaultAction string, syscalls []SeccompSyscall) SeccompSummary {
	s := SeccompSummary{DefaultAction: defaultAction, DefaultBlocks: seccompBlocks(defaultAction)}
	open := map[string]bool{}
	blocked := map[string]bool{}
	for _, r := range syscalls {
		lets := !seccompBlocks(r.Action)
		for _, n := range r.Names {
			switch {
			case n == "":
			case lets:
				open[n] = true
			case len(r.Args) == 0:
				blocked[n] = true
			}
		}
	}
	for n := range open {
		delete(blocked, n)
	}
	// The pseudo call is judged on its own; no rule names it.
	delete(open, seccompCloneNewUser)
	delete(blocked, seccompCloneNewUser)
	if cloneNewUserBlocked(s.DefaultBlocks, syscalls) {
		blocked[seccompCloneNewUser] = true
	} else {
		open[seccompCloneNewUser] = true
	}
	s.RuleBlocks = len(blocked) > 0
	set := open
	if !s.DefaultBlocks {
		set = blocked
	}
	for n := range set {
		if _, judged := slices.BinarySearch(seccompJudged, n); judged {
			s.Exceptions = append(s.Exceptions, n)
		}
	}
	slices.Sort(s.Exceptions)
	return s
}

// blocks reports whether the filter blocks the system call name.
func (s *SeccompSummary) blocks(name string) bool {
	_, in := slices.BinarySearch(s.Exceptions, name)
	return in != s.DefaultBlocks
}

func checkSeccomp(c *compiled, w *Workload) (string, bool) {
	s := &w.Seccomp
	if w.SeccompUnconfined && s.DefaultAction == "" {
		return fmt.Sprintf("%s must not run seccomp unconfined (linux.seccomp is absent)", subject(w)), true
	}
	if !s.DefaultBlocks && !s.RuleBlocks {
		return fmt.Sprintf("%s must not run seccomp unconfined (linux.seccomp: defaultAction %s and no rule blocks a system call)",
			subject(w), orNone(s.DefaultAction)), true
	}
	// Both lists are sorted and short (a summary keeps only judged calls):
	// walk them together.
	var missing []string
	exc, j := s.Exceptions, 0
	for _, name := range c.seccompMustBlock {
		for j < len(exc) && exc[j] < name {
			j++
		}
		in := j < len(exc) && exc[j] == name
		if in == s.DefaultBlocks {
			missing = append(missing, name)
		}
	}
	if len(missing) == 0 {
		return "", false
	}
	why := ""
	if s.DefaultBlocks {
		why = ", a rule lets " + plural(len(missing), "it", "them") + " through"
	}
	return fmt.Sprintf("%s must block %s %s (linux.seccomp: defaultAction %s%s)",
		subject(w), plural(len(missing), "system call", "system calls"), quoteList(missing), orNone(s.DefaultAction), why), true
}

// orNone prints a seccomp action: as it is when it is a plain name, quoted
// otherwise (empty, or text that is no action).
func orNone(s string) string {
	if s == "" || strings.Trim(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_") != "" {
		return fmt.Sprintf("%q", s)
	}
	return s
}

// fixSeccomp: Pod Security's wording for seccompProfile; a Localhost
// profile must block what rules.seccomp.mustBlock lists. podman:
// --security-opt seccomp=unconfined or a profile that lets them through.
func fixSeccomp(_ *Workload, _ *Violation, o origin) string {
	return fixFor(o, `must set securityContext.seccompProfile.type to "RuntimeDefault" (or "Localhost" with a profile that blocks them)`,
		"run without --security-opt seccomp=unconfined, with the default profile or one that blocks them")
}
