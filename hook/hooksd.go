package hook

import (
	"encoding/json"
	"fmt"
	"path/filepath"
)

// HooksDConfig is one hooks.d file in the containers/common "1.0.0" schema
// (podman, CRI-O: /etc/containers/oci/hooks.d/*.json).
type HooksDConfig struct {
	Version string     `json:"version"`
	Hook    HooksDHook `json:"hook"`
	When    HooksDWhen `json:"when"`
	Stages  []string   `json:"stages"`
}

// HooksDHook is the hook to run; Args[0] is the program name.
type HooksDHook struct {
	Path    string   `json:"path"`
	Args    []string `json:"args,omitempty"`
	Timeout *int     `json:"timeout,omitempty"`
}

// HooksDWhen says when the hook applies.
type HooksDWhen struct {
	Always bool `json:"always"`
}

// Stages a createRuntime-style admission hook can run in. Only stages that
// run before the container process starts can block it.
var hookStages = map[string]bool{"prestart": true, "createRuntime": true, "createContainer": true}

// NewHooksDConfig builds the hooks.d entry that runs `<bin> hook [extra...]`
// in the given stage for every container.
func NewHooksDConfig(bin, stage string, extra []string) (*HooksDConfig, error) {
	if !filepath.IsAbs(bin) || filepath.Clean(bin) != bin {
		return nil, fmt.Errorf("hook path %q must be an absolute, clean path (runtimes do not search PATH)", bin)
	}
	if !hookStages[stage] {
		return nil, fmt.Errorf("stage %q cannot block a container; use createRuntime (or prestart, createContainer)", stage)
	}
	if err := CheckArgs(extra); err != nil {
		return nil, fmt.Errorf("the hook would refuse every container with these flags: %w", err)
	}
	args := append([]string{"patchgate", "hook"}, extra...)
	return &HooksDConfig{
		Version: "1.0.0",
		Hook:    HooksDHook{Path: bin, Args: args},
		When:    HooksDWhen{Always: true},
		Stages:  []string{stage},
	}, nil
}

// Marshal renders the config as indented JSON with a final newline.
func (c *HooksDConfig) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
