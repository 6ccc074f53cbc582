package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/patchgate/patchgate/audit"
	"github.com/patchgate/patchgate/policy"
	"github.com/patchgate/patchgate/service"
)

// Where a command on a node looks for the policy and the service's status
// (variables: tests point them into temporary directories).
var (
	nodePolicyDir     = policy.DefaultDir
	defaultStatusFile = service.DefaultStatusFile
)

// Where the policy a command judged by came from (policySource.From).
const (
	fromFlag    = "flag"     // --policy
	fromService = "service"  // what the node service reports it enforces (its status file)
	fromNode    = "node"     // the node's policy directory, /etc/patchgate
	fromBuiltin = "built-in" // --default-policy
)

// policySource is which policy a command judged by, and why that one; every
// command that reads the node's policy prints it (text and JSON).
type policySource struct {
	// Path is the file or directory read; empty for the built-in default.
	Path string `json:"path,omitempty"`
	// From is flag, service, node or built-in.
	From string `json:"from"`
	// Note says why a nearer source was passed over (e.g. the service's
	// root-only copy could not be read).
	Note string `json:"note,omitempty"`
}

func (s policySource) String() string {
	var d string
	switch s.From {
	case fromFlag:
		d = s.Path + " (--policy)"
	case fromService:
		d = s.Path + " (what the node service enforces)"
	case fromNode:
		d = s.Path + " (the node's policy)"
	default:
		d = "the built-in default policy (--default-policy)"
	}
	if s.Note != "" {
		d += "; " + s.Note
	}
	return d
}

// errNoNodePolicy: the command was to judge by the node's policy and the
// node has none (exit 2).
var errNoNodePolicy = errors.New("no policy on this node")

// nodePolicyFlags choose the policy of check, eval and policy show:
//
//  1. --policy PATH: that file or directory;
//  2. --default-policy: the built-in default policy, said so in the output;
//  3. what the node service enforces, as its status file reports it: the
//     copy of the policy in force it writes (nri --policy-copy) when this
//     user can read it, else the path it loads with its node name, either
//     only when its digest is the one the status names (else exit 2:
//     loadServicePolicy);
//  4. the node's policy directory, /etc/patchgate;
//  5. none: an error (exit 2), never a silent built-in default.
type nodePolicyFlags struct {
	path       string
	builtin    bool
	nodeName   string
	statusFile string
}

// add registers --policy, --default-policy and --node-name; --status-file
// too unless the command has its own (check).
func (f *nodePolicyFlags) add(cmd *cobra.Command, withStatusFile bool) {
	fs := cmd.Flags()
	fs.StringVar(&f.path, "policy", "", "policy file or directory (policy.yaml + policy.d/ + nodes/); default: what the node service enforces, else "+policy.DefaultDir)
	fs.BoolVar(&f.builtin, "default-policy", false, "judge by the built-in default policy instead of the node's")
	nodeNameFlag(fs, &f.nodeName, hostname(), "node name: selects nodes/<name>.yaml in a policy directory", "this host's name")
	if withStatusFile {
		fs.StringVar(&f.statusFile, "status-file", defaultStatusFile, "node service status file, which names the policy the service enforces; \"\" to skip")
	}
	cmd.MarkFlagsMutuallyExclusive("policy", "default-policy")
}

// load returns the policy the flags choose and where it came from.
func (f *nodePolicyFlags) load(nodeNameSet bool) (*policy.Policy, policySource, error) {
	switch {
	case f.path != "":
		p, err := policy.Load(f.path, f.nodeName)
		return p, policySource{Path: f.path, From: fromFlag}, err
	case f.builtin:
		return policy.Default(), policySource{From: fromBuiltin}, nil
	}
	if f.statusFile != "" {
		st, err := service.ReadStatusFile(f.statusFile)
		switch {
		case errors.Is(err, service.ErrNoStatus):
		case err != nil:
			return nil, policySource{}, fmt.Errorf("cannot tell which policy the node service enforces: %w (give --policy)", err)
		case st.Policy.Copy != "" || st.Policy.Path != "":
			return loadServicePolicy(f.statusFile, st.Policy, f.nodeName, nodeNameSet)
		}
	}
	if _, err := os.Stat(nodePolicyDir); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, policySource{}, fmt.Errorf("%w: no node service reports one and %s does not exist; give --policy PATH, or --default-policy to judge by the built-in default policy", errNoNodePolicy, nodePolicyDir)
		}
		return nil, policySource{}, err
	}
	p, err := policy.Load(nodePolicyDir, f.nodeName)
	return p, policySource{Path: nodePolicyDir, From: fromNode}, err
}

// errNotEnforced: the command was to judge by what the node service
// enforces and the policy it could read is not that one (exit 2).
var errNotEnforced = errors.New("cannot read the policy the node service enforces")

// loadServicePolicy reads the policy a running service reports: its copy of
// the policy in force when readable (root-only), else the path it loads,
// with the service's node name. Either is used only when its digest is the
// one the status names: the files at the path may hold a policy the service
// refused (a failed reload keeps the last good one in force), or another
// policy altogether (a DaemonSet loads the ConfigMap inside its pod, not the
// host's directory). A preview of other content is asked for by --policy,
// never given in the service's name.
func loadServicePolicy(statusFile string, st service.PolicyStatus, nodeName string, nodeNameSet bool) (*policy.Policy, policySource, error) {
	enforced := fmt.Sprintf("the node service (%s) enforces policy %q (%s)", statusFile, st.Name, st.Digest)
	if nodeNameSet && nodeName != st.NodeName {
		return nil, policySource{}, fmt.Errorf("%w: %s, read with node name %q, not --node-name %q; to judge by %s for node %q give --policy %s --node-name %s",
			errNotEnforced, enforced, st.NodeName, nodeName, st.Path, nodeName, st.Path, nodeName)
	}
	// reloadNote: the files the service loads no longer load for it; what
	// it enforces is still the policy the status names.
	reloadNote, copyNote := "", ""
	if st.Error != "" {
		reloadNote = "its last reload failed and the policy above stays in force: " + st.Error
	}
	if st.Copy != "" {
		p, err := policy.Load(st.Copy, st.NodeName)
		switch {
		case err == nil:
			if same, _ := st.Enforces(p.Digest()); same {
				return p, policySource{Path: st.Copy, From: fromService, Note: reloadNote}, nil
			}
			copyNote = fmt.Sprintf("its copy %s holds policy %q (%s)", st.Copy, p.Name(), p.Digest())
		case st.Path == "" || !errors.Is(err, fs.ErrPermission) && !errors.Is(err, fs.ErrNotExist):
			return nil, policySource{}, fmt.Errorf("the node service's copy of its policy: %w", err)
		default:
			copyNote = "its copy " + st.Copy + " is not readable here"
		}
	}
	preview := "--policy " + st.Path
	if st.NodeName != "" {
		preview += " --node-name " + st.NodeName
	}
	also := ""
	if copyNote != "" {
		also = "; " + copyNote
	}
	p, err := policy.Load(st.Path, st.NodeName)
	if err != nil {
		why := "the service may read another path (a DaemonSet reads the ConfigMap inside its pod)"
		if reloadNote != "" {
			why = reloadNote
		}
		return nil, policySource{}, fmt.Errorf("%w: %s, and %s cannot be read here: %v; %s%s. To judge by the files anyway, give %s",
			errNotEnforced, enforced, st.Path, err, why, also, preview)
	}
	if same, why := st.Enforces(p.Digest()); !same {
		return nil, policySource{}, fmt.Errorf("%w: %s, but %s now holds policy %q (%s): %s%s. To judge by the files as they are, give %s",
			errNotEnforced, enforced, st.Path, p.Name(), p.Digest(), why, also, preview)
	}
	note := copyNote
	if reloadNote != "" {
		note = strings.TrimPrefix(note+"; "+reloadNote, "; ")
	}
	return p, policySource{Path: st.Path, From: fromService, Note: note}, nil
}

// auditLogFlags choose the log `patchgate audit` reads: --path; else the
// spec.audit.path of --policy; else the log the node service writes (its
// status file); else the node's policy's spec.audit.path; else
// audit.DefaultPath.
type auditLogFlags struct {
	path, policyPath, nodeName, statusFile string
}

// auditLogSource is which log was read and why that one.
type auditLogSource struct {
	Path string `json:"path"`
	// From is flag (--path), policy (--policy's spec.audit.path), service
	// (the log the node service writes), node (/etc/patchgate's
	// spec.audit.path) or default (audit.DefaultPath).
	From string `json:"from"`
}

func (s auditLogSource) String() string {
	why := map[string]string{
		fromFlag:    "--path",
		"policy":    "the --policy's spec.audit.path",
		fromService: "the log the node service writes",
		fromNode:    "the node policy's spec.audit.path",
		"default":   "the default path",
	}[s.From]
	return s.Path + " (" + why + ")"
}

func (f *auditLogFlags) resolve() (auditLogSource, error) {
	if f.path != "" {
		return auditLogSource{Path: f.path, From: fromFlag}, nil
	}
	if f.policyPath != "" {
		pol, err := policy.Load(f.policyPath, f.nodeName)
		if err != nil {
			return auditLogSource{}, err
		}
		return auditLogSource{Path: auditPathOf(pol), From: "policy"}, nil
	}
	if f.statusFile != "" {
		st, err := service.ReadStatusFile(f.statusFile)
		switch {
		case errors.Is(err, service.ErrNoStatus):
		case err != nil:
			return auditLogSource{}, fmt.Errorf("cannot tell which audit log the node service writes: %w (give --path)", err)
		case st.Audit != nil && st.Audit.Path != "":
			return auditLogSource{Path: st.Audit.Path, From: fromService}, nil
		}
	}
	if _, err := os.Stat(nodePolicyDir); err == nil {
		pol, err := policy.Load(nodePolicyDir, f.nodeName)
		if err != nil {
			return auditLogSource{}, err
		}
		return auditLogSource{Path: auditPathOf(pol), From: fromNode}, nil
	}
	return auditLogSource{Path: audit.DefaultPath, From: "default"}, nil
}

func auditPathOf(pol *policy.Policy) string {
	if pol.Spec.Audit.Path != "" {
		return pol.Spec.Audit.Path
	}
	return audit.DefaultPath
}
