package running

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/patchgate/patchgate/policy"
)

// PolicyInfo names a policy and where it was read from.
type PolicyInfo struct {
	policy.PolicyRef
	Path string `json:"path"`
	// Error is why the policy in force could not be read.
	Error string `json:"error,omitempty"`
	// Note says how it relates to what the node service reports.
	Note string `json:"note,omitempty"`
}

// Report is what `patchgate eval --running` prints (-o json: this).
type Report struct {
	Candidate PolicyInfo `json:"candidate"`
	InForce   PolicyInfo `json:"inForce"`
	// AuditLog is the audit log read for each container's record, and why
	// it could not be ("" when read).
	AuditLog      string    `json:"auditLog,omitempty"`
	AuditLogError string    `json:"auditLogError,omitempty"`
	Sources       []Source  `json:"sources"`
	Containers    []Result  `json:"containers"`
	Skipped       []Skipped `json:"skipped"`
	Summary       Summary   `json:"summary"`
}

// Refused reports whether the candidate refuses any container (including
// one it could not read).
func (r *Report) Refused() bool { return r.Summary.Refuse > 0 }

// WriteText prints the report for people: one line per container, the
// errors, the skipped containers, and the summary line last.
func (r *Report) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "candidate policy: %s\n", policyLine(r.Candidate))
	fmt.Fprintf(w, "policy in force:  %s\n", policyLine(r.InForce))
	switch {
	case r.AuditLogError != "":
		fmt.Fprintf(w, "audit log:        %s: %s\n", r.AuditLog, r.AuditLogError)
	case r.AuditLog != "":
		fmt.Fprintf(w, "audit log:        %s\n", r.AuditLog)
	}
	var src []string
	for _, s := range r.Sources {
		st := "absent"
		if s.Present {
			st = "read"
		}
		src = append(src, fmt.Sprintf("%s %s (%s)", s.Kind, s.Dir, st))
	}
	fmt.Fprintf(w, "sources:          %s\n\n", strings.Join(src, ", "))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RUNTIME\tID\tNAME\tSTATUS\tCANDIDATE\tIN FORCE\tAUDIT RECORD")
	for _, c := range r.Containers {
		rt := c.Runtime
		if c.Namespace != "" {
			rt += "/" + c.Namespace
		}
		name := c.Name
		if c.Sandbox {
			name += " (pod sandbox)"
		}
		inForce := "-"
		if c.InForce != nil {
			inForce = judgedText(*c.InForce)
		}
		rec := "-"
		if c.Audit != nil {
			rec = c.Audit.Action
			if len(c.Audit.Rules) > 0 {
				rec += " " + strings.Join(c.Audit.Rules, ",")
			}
			rec += fmt.Sprintf(" (%s %s)", strings.Join(c.Audit.Sources, "+"), c.Audit.Time.UTC().Format(time.RFC3339))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", safe(rt), shortID(c.ID), dash(safe(name)), c.Status, judgedText(c.Candidate), inForce, safe(rec))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var details []string
	for _, c := range r.Containers {
		if c.Candidate.Error != "" {
			details = append(details, fmt.Sprintf("  %s %s: cannot be judged, counted as refused: %s", c.Runtime, shortID(c.ID), safe(c.Candidate.Error)))
			continue
		}
		if c.Candidate.Message != "" {
			details = append(details, fmt.Sprintf("  %s %s: %s: %s", c.Runtime, shortID(c.ID), c.Candidate.Outcome, safe(c.Candidate.Message)))
		}
	}
	if len(details) > 0 {
		fmt.Fprintln(w, "\nwhy (candidate policy):")
		for _, l := range details {
			fmt.Fprintln(w, l)
		}
	}
	if len(r.Skipped) > 0 {
		fmt.Fprintf(w, "\nnot running, skipped (%d):\n", len(r.Skipped))
		for _, s := range r.Skipped {
			rt := s.Runtime
			if s.Namespace != "" {
				rt += "/" + s.Namespace
			}
			fmt.Fprintf(w, "  %s %s: %s\n", safe(rt), shortID(s.ID), safe(s.Why))
		}
	}
	_, err := fmt.Fprintf(w, "\n%s\n", r.Summary)
	return err
}

func policyLine(p PolicyInfo) string {
	if p.Error != "" {
		return fmt.Sprintf("%s: not read: %s", p.Path, p.Error)
	}
	s := fmt.Sprintf("%q (%s) from %s", p.Name, p.Digest, p.Path)
	if p.Note != "" {
		s += "; " + p.Note
	}
	return s
}

func judgedText(j Judged) string {
	if j.Error != "" {
		return "refuse (unreadable)"
	}
	if len(j.Rules) == 0 {
		return j.Outcome
	}
	return j.Outcome + " " + strings.Join(j.Rules, ",")
}

// shortID is the 12-character form of a 64-hex id, as crictl and podman
// print it.
func shortID(id string) string {
	if len(id) == 64 && strings.Trim(id, "0123456789abcdef") == "" {
		return id[:12]
	}
	return safe(id)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// safe keeps names and details from the runtime's state on one line
// without control characters (they come from the containers' specs).
func safe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}
