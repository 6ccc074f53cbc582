package livepatch

import (
	"context"
	"fmt"
	"strings"

	"github.com/patchgate/patchgate/policy"
)

// KLP reads SUSE's klp tool (kernel-livepatch-tools, klp(8)):
//
//	klp status   the overall state: "ready" or "in_progress"
//
// SUSE live patches are ordinary upstream livepatch modules, so the patches
// themselves come from sysfs; klp adds a cross-check of the transition
// state. `klp -v patches` (the CVE list of the active patch) is not read:
// no recording of its output was available to build a parser against (see
// testdata/README.md), and a guessed format would be worse than none, so
// requiredCVEs on a klp node is reported unknown rather than failed.
type KLP struct{}

// ProviderKLP is SUSE's klp.
const ProviderKLP = "klp"

// Name implements Provider.
func (KLP) Name() string { return ProviderKLP }

// Installed implements Provider.
func (KLP) Installed(env *Env) bool { return env.HasTool("klp") }

// ParseKlpStatus parses `klp status`.
func ParseKlpStatus(out []byte) (string, error) {
	s := strings.TrimSpace(string(out))
	switch s {
	case "ready", "in_progress":
		return s, nil
	}
	return "", fmt.Errorf("%w: klp status printed %q, want ready or in_progress", ErrParse, s)
}

// Read implements Provider.
func (KLP) Read(ctx context.Context, env *Env) Report {
	r := Report{Provider: ProviderKLP, Patches: []policy.Patch{}}
	args := []string{"status"}
	res, err := env.Run(ctx, "klp", args...)
	if err == nil && res.ExitCode != 0 {
		err = failure("klp", args, res)
	}
	var st string
	if err == nil {
		st, err = ParseKlpStatus(res.Stdout)
	}
	if err != nil {
		r.Failed = true
		r.unknown(PartPatches, err.Error())
		return r
	}
	r.KlpStatus = st
	r.unknown(PartCVEs, "klp: the CVE list of `klp -v patches` is not read by patchgate")
	return r
}
