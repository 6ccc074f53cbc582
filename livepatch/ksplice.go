package livepatch

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/patchgate/patchgate/policy"
)

// Ksplice reads Oracle Ksplice Uptrack (uptrack's doShow and printEffective):
//
//	uptrack-show
//	  Installed updates:
//	  [<id>] <name>          ("None" when there is none)
//	  <blank>
//	  Effective kernel version is <version>
//
//	uptrack-show --available
//	  Available updates:
//	  [<id>] <name>          ("None" when there is none)
//	  <blank>
//	  Effective kernel version is <version>
//
// Each installed update becomes a patch named by its ID; CVE IDs in the
// update names become fixed CVEs.
type Ksplice struct{}

// Name implements Provider.
func (Ksplice) Name() string { return ProviderKsplice }

// Installed implements Provider.
func (Ksplice) Installed(env *Env) bool { return env.HasTool("uptrack-show") }

// UptrackUpdate is one "[id] name" line.
type UptrackUpdate struct {
	ID   string
	Name string
}

// UptrackShow is `uptrack-show [--available]` parsed.
type UptrackShow struct {
	// Heading is "Installed updates:" or "Available updates:".
	Heading          string
	Updates          []UptrackUpdate
	EffectiveVersion string
}

var uptrackUpdateRE = regexp.MustCompile(`^\[([a-z0-9]+)\] (.+)$`)

const uptrackEffective = "Effective kernel version is "

// ParseUptrackShow parses the output of uptrack-show or uptrack-show
// --available (with --all both lists appear; both are returned in order).
func ParseUptrackShow(out []byte) (UptrackShow, error) {
	var s UptrackShow
	inList := false
	for i, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		n := i + 1
		switch {
		case line == "Installed updates:" || line == "Available updates:":
			if s.Heading == "" {
				s.Heading = line
			}
			inList = true
		case line == "":
			inList = false
		case strings.HasPrefix(line, uptrackEffective):
			v := strings.TrimSpace(strings.TrimPrefix(line, uptrackEffective))
			if v == "" || strings.ContainsAny(v, " \t") {
				return UptrackShow{}, fmt.Errorf("%w: uptrack-show line %d: effective version %q", ErrParse, n, v)
			}
			s.EffectiveVersion = v
			inList = false
		case inList && line == "None":
		case inList:
			m := uptrackUpdateRE.FindStringSubmatch(line)
			if m == nil {
				return UptrackShow{}, fmt.Errorf("%w: uptrack-show line %d: %q is not \"[id] name\"", ErrParse, n, line)
			}
			s.Updates = append(s.Updates, UptrackUpdate{ID: m[1], Name: m[2]})
		default:
			return UptrackShow{}, fmt.Errorf("%w: uptrack-show line %d: unexpected %q", ErrParse, n, line)
		}
	}
	if s.Heading == "" {
		return UptrackShow{}, fmt.Errorf("%w: uptrack-show printed no \"Installed updates:\" or \"Available updates:\"", ErrParse)
	}
	return s, nil
}

// Read implements Provider.
func (Ksplice) Read(ctx context.Context, env *Env) Report {
	r := Report{Provider: ProviderKsplice, Patches: []policy.Patch{}}
	res, err := env.Run(ctx, "uptrack-show")
	if err == nil && res.ExitCode != 0 {
		err = failure("uptrack-show", nil, res)
	}
	var inst UptrackShow
	if err == nil {
		inst, err = ParseUptrackShow(res.Stdout)
		if err == nil && inst.Heading != "Installed updates:" {
			err = fmt.Errorf("%w: uptrack-show printed %q, want \"Installed updates:\"", ErrParse, inst.Heading)
		}
	}
	if err != nil {
		r.Failed = true
		for _, part := range []string{PartPatches, PartCVEs, PartVersion} {
			r.unknown(part, err.Error())
		}
	} else {
		var cves []string
		for _, u := range inst.Updates {
			r.Patches = append(r.Patches, policy.Patch{Name: u.ID, Enabled: true, Provider: ProviderKsplice})
			cves = append(cves, CVEs(u.Name)...)
		}
		r.FixedCVEs = sortedUnique(cves)
		r.EffectiveVersion = inst.EffectiveVersion
		if r.EffectiveVersion == "" {
			r.unknown(PartVersion, "uptrack-show printed no effective kernel version")
		}
	}

	availArgs := []string{"--available"}
	res, err = env.Run(ctx, "uptrack-show", availArgs...)
	if err == nil && res.ExitCode != 0 {
		err = failure("uptrack-show", availArgs, res)
	}
	var avail UptrackShow
	if err == nil {
		avail, err = ParseUptrackShow(res.Stdout)
		if err == nil && avail.Heading != "Available updates:" {
			err = fmt.Errorf("%w: uptrack-show --available printed %q, want \"Available updates:\"", ErrParse, avail.Heading)
		}
	}
	if err != nil {
		r.unknown(PartUpdates, err.Error())
	} else {
		r.UpdatesPending = boolPtr(len(avail.Updates) > 0)
	}
	return r
}
