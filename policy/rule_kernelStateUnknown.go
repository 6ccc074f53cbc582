package policy

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Rule kernelStateUnknown
//
// Why: every kernel rule judges the host kernel's live-patch state. State that
// could not be read, or that is older than spec.kernel.maxStateAge, says
// nothing about the kernel now; treating it as "fine" would admit workloads on
// a kernel nobody has checked. This rule makes unknown state visible with its
// own action (spec.kernel.onUnknown, default warn), and counts as the kernel
// being behind for whenKernelBehind.
//
// Reads: KernelState.observedAt, KernelState.unknown, KernelState.updatesPending;
// the whole state being absent (nil).
//
// Allowed: state observed within maxStateAge whose unknown parts are none of
// those a configured kernel rule needs ("patches" for requiredPatches, "cves"
// for requiredCVEs, "version" for minimumVersion, "updates" and a null
// updatesPending for denyWhenUpdatesPending). An unknown part "all" is never
// allowed.
//
// Action: spec.kernel.onUnknown.

const kernelStateUnknownReason = "kernel state unknown"

// kernelStateUnknownRemedy is what makes kernelStateUnknown pass, for Explain.
const kernelStateUnknownRemedy = "patchgate reading the kernel's live-patch state again (patchgate check on the node says what it cannot read)"

// unknownParts says which kernel state parts cannot be judged.
type unknownParts struct {
	all   bool
	parts []string
}

func (u unknownParts) has(part string) bool {
	return u.all || slices.Contains(u.parts, part)
}

// partNeeded reports whether a configured kernel rule reads the part.
func partNeeded(k *KernelSpec, part string) bool {
	switch part {
	case "patches":
		return len(k.RequiredPatches) > 0
	case "cves":
		return len(k.RequiredCVEs) > 0
	case "version":
		return k.MinimumVersion != ""
	case "updates":
		return k.DenyWhenUpdatesPending
	}
	return false
}

// stateUnknown works out what of k cannot be judged, and the violation detail
// ("" when the state is good enough).
func stateUnknown(c *compiled, k *KernelState, now time.Time) (unknownParts, string) {
	if k == nil {
		return unknownParts{all: true}, "kernel live-patch state was not read"
	}
	var u unknownParts
	var reasons []string
	for _, p := range k.Unknown {
		if p.Part == "all" {
			u.all = true
		} else if !partNeeded(c.kernel, p.Part) {
			continue
		}
		if !slices.Contains(u.parts, p.Part) {
			u.parts = append(u.parts, p.Part)
		}
		r := p.Part
		if p.Provider != "" {
			r += " (" + p.Provider + ")"
		}
		if p.Reason != "" {
			r += ": " + p.Reason
		}
		reasons = append(reasons, r)
	}
	if c.kernel.DenyWhenUpdatesPending && k.UpdatesPending == nil && !u.has("updates") {
		u.parts = append(u.parts, "updates")
		reasons = append(reasons, "updates: no provider reports whether updates are pending")
	}
	slices.Sort(reasons)
	var age string
	switch {
	case k.ObservedAt.IsZero():
		age = "kernel live-patch state has no observedAt time"
	case now.Sub(k.ObservedAt) > c.kernel.MaxStateAge.D():
		age = fmt.Sprintf("kernel live-patch state is %s old, more than spec.kernel.maxStateAge %s (observedAt %s)",
			Duration(now.Sub(k.ObservedAt).Round(time.Second)), c.kernel.MaxStateAge, k.ObservedAt.UTC().Format(time.RFC3339))
	}
	switch {
	case age != "" && len(reasons) > 0:
		return unknownParts{all: true}, age + "; unknown: " + strings.Join(reasons, "; ")
	case age != "":
		return unknownParts{all: true}, age
	case len(reasons) > 0:
		return u, "kernel live-patch state unknown: " + strings.Join(reasons, "; ")
	}
	return u, ""
}
