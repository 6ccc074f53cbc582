package policy

import "fmt"

// Rule seccomp
//
// Why: the runtime's default seccomp profile blocks the system calls behind a
// large share of kernel privilege escalations (keyctl, bpf, userfaultfd,
// unshare of new user namespaces, ...). On a kernel that is behind on patches
// this filter is often all that stands between a container and the bug.
//
// Reads: linux.seccomp (Workload.SeccompUnconfined: absent, or a filter whose
// default action allows every call and that has no syscall rules).
//
// Allowed: any seccomp filter that is not unconfined.
//
// Parameters: none.
var seccompRule = containerRule{
	id:     RuleSeccomp,
	reason: "seccomp unconfined",
	needs:  FieldSeccomp,
	check:  checkSeccomp,
}

func checkSeccomp(_ *compiled, w *Workload) (string, bool) {
	if !w.SeccompUnconfined {
		return "", false
	}
	return fmt.Sprintf("%s must not run seccomp unconfined (linux.seccomp is absent)", subject(w)), true
}
