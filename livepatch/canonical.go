package livepatch

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/patchgate/patchgate/policy"
)

// Canonical reads Canonical Livepatch:
//
//	canonical-livepatch status --verbose --format json
//	  {"Client-Version": ..., "Status": [{"Kernel": "5.15.0-91.101-generic",
//	   "Running": true, "Livepatch": {"CheckState": "checked", "State": "applied",
//	   "Version": "...", "Fixes": [{"Name": "cve-...", "Patched": true}]},
//	   "Supported": "supported"}], "tier": "..."}
//	  (keys as canonical/ubuntu-pro-client uaclient/livepatch.py decodes them)
//
//	older clients: canonical-livepatch status --verbose (YAML, lowercase keys)
//	  status:
//	  - kernel: 4.4.0-87.110-generic
//	    running: true
//	    livepatch:
//	      checkState: checked
//	      patchState: applied
//	      version: "33.2"
//	      fixes: |-
//	        * CVE-2015-7837 LP: #1509563
//
// The client inserts its patches as kernel modules named lkp_<Distro>_<release>_<n>
// that the sysfs provider sees; this provider contributes the fixed CVEs, the
// patch state and whether the kernel is still covered, and claims the lkp_
// patches in sysfs.
type Canonical struct{}

// CanonicalModulePrefix starts the names of Canonical Livepatch's modules.
const CanonicalModulePrefix = "lkp_"

// Name implements Provider.
func (Canonical) Name() string { return ProviderCanonical }

// Installed implements Provider.
func (Canonical) Installed(env *Env) bool { return env.HasTool("canonical-livepatch") }

// CanonicalStatus is the status entry of the running kernel.
type CanonicalStatus struct {
	Kernel     string
	Running    bool
	CheckState string
	// State is Livepatch.State (JSON) or livepatch.patchState (YAML).
	State     string
	Version   string
	Supported string
	// FixedCVEs are the CVE IDs of the fixes that are patched, upper case.
	FixedCVEs []string
}

type canonicalDoc struct {
	Status []struct {
		Kernel    string `json:"Kernel"`
		Running   *bool  `json:"Running"`
		Supported string `json:"Supported"`
		Livepatch *struct {
			CheckState string          `json:"CheckState"`
			State      string          `json:"State"`
			PatchState string          `json:"patchState"`
			Version    string          `json:"Version"`
			Fixes      json.RawMessage `json:"Fixes"`
		} `json:"Livepatch"`
	} `json:"Status"`
}

type canonicalFix struct {
	Name    string `json:"Name"`
	Patched bool   `json:"Patched"`
}

// ParseCanonicalStatus parses `canonical-livepatch status --verbose` in the
// JSON form or the older YAML form, and returns the entry of the running
// kernel (else the first).
func ParseCanonicalStatus(out []byte) (CanonicalStatus, error) {
	trimmed := bytes.TrimSpace(out)
	if len(trimmed) == 0 {
		return CanonicalStatus{}, fmt.Errorf("%w: canonical-livepatch status printed nothing", ErrParse)
	}
	data := trimmed
	if trimmed[0] != '{' {
		// The older YAML form. Decode it generically and re-encode as JSON;
		// encoding/json matches keys case-insensitively, so "status" and
		// "Status", "checkState" and "CheckState" meet.
		var doc map[string]any
		if err := yaml.Unmarshal(trimmed, &doc); err != nil {
			return CanonicalStatus{}, fmt.Errorf("%w: canonical-livepatch status is neither JSON nor YAML: %v", ErrParse, err)
		}
		j, err := json.Marshal(doc)
		if err != nil {
			return CanonicalStatus{}, fmt.Errorf("%w: canonical-livepatch status: %v", ErrParse, err)
		}
		data = j
	}
	var doc canonicalDoc
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		return CanonicalStatus{}, fmt.Errorf("%w: canonical-livepatch status: %v", ErrParse, err)
	}
	if dec.More() {
		return CanonicalStatus{}, fmt.Errorf("%w: canonical-livepatch status: data after the JSON object", ErrParse)
	}
	if len(doc.Status) == 0 {
		return CanonicalStatus{}, fmt.Errorf("%w: canonical-livepatch status has no Status entry", ErrParse)
	}
	idx := 0
	for i, s := range doc.Status {
		if s.Running != nil && *s.Running {
			idx = i
			break
		}
	}
	s := doc.Status[idx]
	st := CanonicalStatus{Kernel: s.Kernel, Running: s.Running != nil && *s.Running, Supported: s.Supported, FixedCVEs: []string{}}
	if s.Livepatch == nil {
		return st, nil
	}
	lp := s.Livepatch
	st.CheckState, st.Version = lp.CheckState, lp.Version
	st.State = lp.State
	if st.State == "" {
		st.State = lp.PatchState
	}
	fixes := bytes.TrimSpace(lp.Fixes)
	switch {
	case len(fixes) == 0 || string(fixes) == "null":
	case fixes[0] == '"':
		// YAML: one string, "* CVE-... LP: #..." per line.
		var text string
		if err := json.Unmarshal(fixes, &text); err != nil {
			return CanonicalStatus{}, fmt.Errorf("%w: canonical-livepatch fixes: %v", ErrParse, err)
		}
		st.FixedCVEs = CVEs(text)
	case fixes[0] == '[':
		var list []canonicalFix
		if err := json.Unmarshal(fixes, &list); err != nil {
			return CanonicalStatus{}, fmt.Errorf("%w: canonical-livepatch Fixes: %v", ErrParse, err)
		}
		for _, f := range list {
			if f.Patched {
				st.FixedCVEs = append(st.FixedCVEs, CVEs(f.Name)...)
			}
		}
	default:
		return CanonicalStatus{}, fmt.Errorf("%w: canonical-livepatch Fixes is neither a list nor a string", ErrParse)
	}
	st.FixedCVEs = sortedUnique(st.FixedCVEs)
	return st, nil
}

// canonicalInForce reports the states in which the client's patches are in
// force (or none are needed).
func canonicalInForce(state string) bool {
	return state == "applied" || state == "nothing-to-apply"
}

// Read implements Provider.
func (Canonical) Read(ctx context.Context, env *Env) Report {
	r := Report{Provider: ProviderCanonical, Patches: []policy.Patch{}}
	st, err := readCanonical(ctx, env)
	if err != nil {
		// The patches themselves are the kernel's (sysfs); what is lost
		// is what only the client knows.
		r.Failed = true
		r.unknown(PartCVEs, err.Error())
		r.unknown(PartUpdates, err.Error())
		return r
	}
	r.CanonicalState, r.CanonicalSupported = st.State, st.Supported
	// The fixes the client lists count only while its patch is in force:
	// the older YAML form lists them whatever patchState says, so with
	// "apply-failed", "unapplied" or "applying" none of them is fixed.
	if canonicalInForce(st.State) && st.CheckState == "checked" {
		r.FixedCVEs = st.FixedCVEs
	} else if len(st.FixedCVEs) > 0 {
		r.Conflicts = append(r.Conflicts, fmt.Sprintf("canonical-livepatch lists %d fix(es) but its check state is %q and patch state %q: not counted as fixed", len(st.FixedCVEs), st.CheckState, st.State))
	}
	switch {
	case st.Supported == "kernel-upgrade-required" || st.State == "kernel-upgrade-required":
		r.UpdatesPending = boolPtr(true)
	case canonicalInForce(st.State) && st.CheckState == "checked":
		r.UpdatesPending = boolPtr(false)
	default:
		r.unknown(PartUpdates, fmt.Sprintf("canonical-livepatch: check state %q, patch state %q", st.CheckState, st.State))
	}
	return r
}

func readCanonical(ctx context.Context, env *Env) (CanonicalStatus, error) {
	jsonArgs := []string{"status", "--verbose", "--format", "json"}
	res, err := env.Run(ctx, "canonical-livepatch", jsonArgs...)
	if err != nil {
		return CanonicalStatus{}, err
	}
	if res.ExitCode == 0 {
		if st, perr := ParseCanonicalStatus(res.Stdout); perr == nil {
			return st, nil
		}
	}
	// Older clients know no --format and print YAML.
	yamlArgs := []string{"status", "--verbose"}
	res2, err := env.Run(ctx, "canonical-livepatch", yamlArgs...)
	if err != nil {
		return CanonicalStatus{}, err
	}
	if res2.ExitCode != 0 {
		return CanonicalStatus{}, failure("canonical-livepatch", yamlArgs, res2)
	}
	st, err := ParseCanonicalStatus(res2.Stdout)
	if err != nil {
		if res.ExitCode != 0 {
			return CanonicalStatus{}, fmt.Errorf("%v; and %v", failure("canonical-livepatch", jsonArgs, res), err)
		}
		return CanonicalStatus{}, err
	}
	return st, nil
}

// isCanonicalModule reports whether a sysfs patch name is Canonical's.
func isCanonicalModule(name string) bool { return strings.HasPrefix(name, CanonicalModulePrefix) }
