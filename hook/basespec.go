package hook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/patchgate/patchgate/policy"
)

// A base runtime spec (containerd CRI's base_runtime_spec) puts patchgate's hook into every
// application container containerd creates, whether or not the NRI plugin is connected: on
// containerd 1.7, 2.0 and 2.1 (NRI v0.8.0, no validator and no required_plugins) it is what
// keeps a crashed or absent plugin from letting containers start unjudged. The hook then
// asks the node service as usual, or decides alone when the service is down.
//
// containerd starts every application container from the base instead of its built-in
// default, and keeps what the base sets that CRI would otherwise leave out: rlimits (a base
// made from `ctr oci spec` gives every container RLIMIT_NOFILE 1024:1024), a seccomp profile
// and an AppArmor profile. BaseRuntimeSpec drops those, so only the hook differs from
// containerd's default.

// ErrBaseSpec marks input BaseRuntimeSpec refuses.
var ErrBaseSpec = errors.New("invalid base runtime spec")

// BaseSpecOptions describe the hook BaseRuntimeSpec adds.
type BaseSpecOptions struct {
	// Path is the patchgate (or patchgate-hook) binary on the host. It must be the NRI
	// plugin's --hook-path, so that the plugin sees its own hook and injects no second one.
	Path string
	// Args are the hook's flags after `hook` (e.g. --policy, --socket); they are checked as
	// the hook would parse them. --identity-from=containerd comes first.
	Args []string
	// Timeout is the OCI hook timeout in seconds (the runtime kills the hook after it).
	Timeout int
}

// BaseRuntimeSpec reads a runtime's default OCI spec (the output of `ctr oci spec` on the
// node) and returns it with process.rlimits, linux.seccomp and process.apparmorProfile
// removed and patchgate's createRuntime hook added: `<Path> hook --identity-from=containerd
// <Args...>`. An existing hook of patchgate's (same path, a "hook" argument) is replaced;
// other hooks are kept. notes says what was removed. Input it cannot read back exactly is
// refused: not JSON, duplicate or case-variant keys, fields the OCI runtime-spec does not
// define (they would be dropped), trailing data, no process or linux section.
func BaseRuntimeSpec(data []byte, o BaseSpecOptions) (out []byte, notes []string, err error) {
	if !filepath.IsAbs(o.Path) || filepath.Clean(o.Path) != o.Path {
		return nil, nil, fmt.Errorf("hook path %q must be an absolute, clean path (runtimes do not search PATH)", o.Path)
	}
	if o.Timeout <= 0 {
		return nil, nil, fmt.Errorf("hook timeout %d must be positive", o.Timeout)
	}
	args := append([]string{o.Path, "hook", "--identity-from=" + IdentityFromContainerd}, o.Args...)
	if err := CheckArgs(args[2:]); err != nil {
		return nil, nil, fmt.Errorf("the hook would refuse every container with these flags: %w", err)
	}
	if len(data) > MaxSpecBytes {
		return nil, nil, fmt.Errorf("%w: more than %d bytes", ErrBaseSpec, MaxSpecBytes)
	}
	// Duplicate and case-variant keys, trailing data: the same strict reading as the hook's.
	if _, err := policy.ParseSpec(data); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrBaseSpec, err)
	}
	var s specs.Spec
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, nil, fmt.Errorf("%w: %v (a field the OCI runtime-spec v%s does not define would be lost)", ErrBaseSpec, err, specs.Version)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, nil, fmt.Errorf("%w: trailing data after the JSON object", ErrBaseSpec)
	}
	if s.Version == "" || s.Process == nil || s.Linux == nil {
		return nil, nil, fmt.Errorf("%w: ociVersion, process and linux are required (is this the output of `ctr oci spec`?)", ErrBaseSpec)
	}
	if len(s.Process.Rlimits) > 0 {
		notes = append(notes, fmt.Sprintf("removed process.rlimits (%d): containerd would give them to every container", len(s.Process.Rlimits)))
		s.Process.Rlimits = nil
	}
	if s.Linux.Seccomp != nil {
		notes = append(notes, "removed linux.seccomp: CRI sets each container's own profile")
		s.Linux.Seccomp = nil
	}
	if s.Process.ApparmorProfile != "" {
		notes = append(notes, "removed process.apparmorProfile: CRI sets each container's own profile")
		s.Process.ApparmorProfile = ""
	}
	if s.Hooks == nil {
		s.Hooks = &specs.Hooks{}
	}
	timeout := o.Timeout
	h := specs.Hook{Path: o.Path, Args: args, Timeout: &timeout}
	s.Hooks.CreateRuntime = slices.DeleteFunc(s.Hooks.CreateRuntime, func(x specs.Hook) bool {
		if IsPatchgateHook(x.Path, x.Args, o.Path) {
			notes = append(notes, "replaced patchgate's existing createRuntime hook")
			return true
		}
		return false
	})
	s.Hooks.CreateRuntime = append(s.Hooks.CreateRuntime, h)
	out, err = json.MarshalIndent(&s, "", "  ")
	if err != nil {
		return nil, nil, err
	}
	return append(out, '\n'), notes, nil
}

// IsPatchgateHook reports whether a hook with this path and args is patchgate's hook at bin:
// the test the NRI plugin makes before injecting its own.
func IsPatchgateHook(path string, args []string, bin string) bool {
	return path == bin && slices.Contains(args, "hook")
}
