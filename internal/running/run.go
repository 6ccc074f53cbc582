package running

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/patchgate/patchgate/audit"
	"github.com/patchgate/patchgate/policy"
	"github.com/patchgate/patchgate/service"
)

// Config is one `patchgate eval --running`.
type Config struct {
	Options
	// Candidate is the policy previewed, read from CandidatePath.
	Candidate     *policy.Policy
	CandidatePath string
	// InForce is the node's policy, read from InForcePath, or the error
	// reading it (InForceErr): the candidate is still judged.
	InForce     *policy.Policy
	InForcePath string
	InForceErr  error
	// Kernel reads the host's kernel state for a policy (its provider and
	// tools), once per policy.
	Kernel func(ctx context.Context, pol *policy.Policy) *policy.KernelState
	// StatusFile is the node service's status file ("" to skip).
	StatusFile string
	// AuditLog is the audit log to look records up in; "" is the in-force
	// policy's spec.audit.path, else audit.DefaultPath.
	AuditLog string
	Now      time.Time
}

// Run discovers the containers and judges them. An error is one that
// stops the whole run (a state directory that exists but cannot be read);
// a container that cannot be read is a result refused with its error.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Candidate == nil {
		return nil, errors.New("no candidate policy")
	}
	inv, err := Discover(cfg.Options)
	if err != nil {
		return nil, err
	}
	rep := &Report{
		Candidate: PolicyInfo{PolicyRef: ref(cfg.Candidate), Path: cfg.CandidatePath},
		InForce:   PolicyInfo{Path: cfg.InForcePath},
		Sources:   inv.Sources,
		Skipped:   inv.Skipped,
	}
	j := &Judge{HostRoot: cfg.HostRoot, Candidate: cfg.Candidate, Now: cfg.Now}
	if j.Now.IsZero() {
		j.Now = time.Now()
	}
	j.CandidateKernel = cfg.Kernel(ctx, cfg.Candidate)
	if cfg.InForceErr != nil {
		rep.InForce.Error = cfg.InForceErr.Error()
	} else if cfg.InForce != nil {
		rep.InForce.PolicyRef = ref(cfg.InForce)
		j.InForce = cfg.InForce
		j.InForceKernel = j.CandidateKernel
		if cfg.InForce != cfg.Candidate {
			j.InForceKernel = cfg.Kernel(ctx, cfg.InForce)
		}
	}
	rep.InForce.Note = serviceNote(cfg.StatusFile, rep.InForce.Digest)

	rep.AuditLog = cfg.AuditLog
	if rep.AuditLog == "" {
		rep.AuditLog = audit.DefaultPath
		if cfg.InForce != nil && cfg.InForce.Spec.Audit.Path != "" {
			rep.AuditLog = cfg.InForce.Spec.Audit.Path
		}
	}
	logPath := underRoot(hostRootOr(cfg.HostRoot), rep.AuditLog)
	var recs []audit.Record
	if _, err := os.Stat(logPath); errors.Is(err, fs.ErrNotExist) {
		rep.AuditLogError = "no audit log there"
	} else if recs, _, err = audit.ReadAll(ctx, logPath, audit.ReadOptions{SpoolPath: audit.SpoolPathFor(logPath)}); err != nil {
		rep.AuditLogError = err.Error()
	}
	j.Audit = LatestRecords(recs)

	rep.Containers = j.Judge(inv.Found)
	rep.Summary = Summarize(rep.Containers, len(inv.Skipped))
	return rep, nil
}

func ref(p *policy.Policy) policy.PolicyRef {
	return policy.PolicyRef{Name: p.Name(), Digest: p.Digest()}
}

func hostRootOr(r string) string {
	if r == "" {
		return "/"
	}
	return r
}

// serviceNote says whether the node service enforces the policy read as
// the one in force (its status file names the digest it loaded).
func serviceNote(statusFile, digest string) string {
	if statusFile == "" {
		return ""
	}
	st, err := service.ReadStatusFile(statusFile)
	switch {
	case errors.Is(err, service.ErrNoStatus):
		return "no node service status at " + statusFile
	case err != nil:
		return fmt.Sprintf("node service status %s: %v", statusFile, err)
	case st.Policy.Digest == "":
		return "the node service reports no policy"
	}
	if same, why := st.Policy.Enforces(digest); !same {
		return fmt.Sprintf("the node service reports policy %q (%s), not this one: %s", st.Policy.Name, st.Policy.Digest, why)
	}
	return "the node service enforces it"
}
