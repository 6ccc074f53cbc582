package policy

import "fmt"

// Rule privilegeEscalation
//
// Why: without no_new_privs a process can gain privileges through execve of a
// setuid binary or a file with file capabilities, for example a setuid root
// helper in the image that then exercises a kernel bug with full
// capabilities. Kubernetes' allowPrivilegeEscalation=false sets it.
//
// Reads: process.noNewPrivileges (Workload.NoNewPrivileges).
//
// Allowed: noNewPrivileges true.
//
// Parameters: none.
var privilegeEscalationRule = containerRule{
	id:     RulePrivilegeEscalation,
	reason: "privilege escalation",
	needs:  FieldNoNewPrivileges,
	check:  checkPrivilegeEscalation,
	fix:    fixPrivilegeEscalation,
}

func checkPrivilegeEscalation(_ *compiled, w *Workload) (string, bool) {
	if w.NoNewPrivileges {
		return "", false
	}
	return fmt.Sprintf("%s must set process.noNewPrivileges=true (allowPrivilegeEscalation=false)", subject(w)), true
}

// fixPrivilegeEscalation: Pod Security's wording (allowPrivilegeEscalation
// != false); podman's no-new-privileges.
func fixPrivilegeEscalation(_ *Workload, _ *Violation, o origin) string {
	return fixFor(o, "must set securityContext.allowPrivilegeEscalation=false", "run with --security-opt no-new-privileges")
}
