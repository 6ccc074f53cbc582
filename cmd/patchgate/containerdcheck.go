package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/patchgate/patchgate/internal/containerdconf"
	"github.com/patchgate/patchgate/policy"
)

// containerdCheck is `patchgate check`'s reading of the node's containerd
// config: whether the NRI default validator's required_plugins names
// patchgate, so that containerd refuses containers while patchgate is not
// registered (internal/containerdconf). Warning is set when it does not,
// or when that cannot be told; it is also in checkReport.Warnings.
type containerdCheck struct {
	containerdconf.Report
	// NoValidator: the runtime patchgate is connected to has no NRI
	// validator (NRI v0.8.0: containerd 1.7, 2.0, 2.1), so no
	// required_plugins either; the base-spec hook is what fails closed.
	NoValidator bool   `json:"runtimeWithoutValidator,omitempty"`
	Warning     string `json:"warning,omitempty"`
	// UnlistedDirs are the CRI sandboxes directories below containerd's
	// root and state (from its config, else its defaults) that the
	// policy's spec.rules.hostPathMounts.runtimeDirs does not name;
	// DirsWarning says what that does. Both are empty when the config
	// could not be read.
	UnlistedDirs []string `json:"unlistedRuntimeDirs,omitempty"`
	DirsWarning  string   `json:"runtimeDirsWarning,omitempty"`
}

// checkContainerd reads the node's containerd config under hostRoot. The
// plugin's name is the one the running service registered (its status
// file), else name. st may be nil (no service status).
func checkContainerd(hostRoot, path, name string, st *serviceStatus, p *policy.Policy) *containerdCheck {
	usesContainerd := false
	if st != nil && st.Status != nil && st.Status.Runtime != nil {
		r := st.Status.Runtime
		if _, n, ok := strings.Cut(r.Plugin, "-"); ok && n != "" {
			name = n
		}
		usesContainerd = r.Runtime == "containerd"
	}
	c := &containerdCheck{Report: containerdconf.Check(hostRoot, path, name)}
	if st != nil && st.Status != nil && st.Status.Runtime != nil {
		r := st.Status.Runtime
		c.NoValidator = r.Mode == "CreateContainer" || r.NRIVersion == "v0.8.0"
	}
	if c.Status != containerdconf.Unknown {
		for _, d := range []string{c.Root, c.State} {
			if !p.ContainerdDirListed(d) {
				c.UnlistedDirs = append(c.UnlistedDirs, d+"/io.containerd.grpc.v1.cri/sandboxes")
			}
		}
	}
	if len(c.UnlistedDirs) > 0 {
		c.DirsWarning = fmt.Sprintf("spec.rules.hostPathMounts.runtimeDirs does not name containerd's %s: the /etc/hosts, /etc/hostname, /etc/resolv.conf and /dev/shm containerd binds from there into every pod are judged as host paths, so an enforcing hostPathMounts rule refuses every pod; add them to runtimeDirs (docs/policy.md)", strings.Join(c.UnlistedDirs, " and "))
	}
	switch c.Status {
	case containerdconf.Missing:
		if !c.NoValidator {
			c.Warning = fmt.Sprintf("containerd does not require NRI plugin %q (%s): while patchgate is not registered, containers are created without its judgement unless patchgate's base-spec hook judges them; set required_plugins (docs/operations.md)", c.Plugin, c.Reason)
		}
	case containerdconf.Unknown:
		c.Warning = fmt.Sprintf("cannot tell whether containerd requires NRI plugin %q: %s", c.Plugin, c.Reason)
	case containerdconf.Absent:
		if usesContainerd {
			c.Warning = fmt.Sprintf("containerd does not require NRI plugin %q: %s", c.Plugin, c.Reason)
		}
	}
	return c
}

// writeContainerdCheck prints the containerd config's part of check's text
// output.
func writeContainerdCheck(w io.Writer, c *containerdCheck) {
	files := ""
	if len(c.Files) > 1 {
		files = " (read " + strings.Join(c.Files, ", ") + ")"
	}
	switch {
	case c.Status == containerdconf.OK:
		fmt.Fprintf(w, "containerd config  required_plugins names %q, default validator enabled: containerd refuses containers while it is not registered%s\n", c.Plugin, files)
	case c.NoValidator && c.Status == containerdconf.Missing:
		fmt.Fprintf(w, "containerd config  no required_plugins: this containerd's NRI (v0.8.0) has no validator; patchgate's base-spec hook is what fails closed%s\n", files)
	case c.Warning != "":
		fmt.Fprintf(w, "containerd config  WARNING: %s%s\n", c.Warning, files)
	default:
		fmt.Fprintf(w, "containerd config  %s\n", c.Reason)
	}
	if c.DirsWarning != "" {
		fmt.Fprintf(w, "containerd dirs    WARNING: %s\n", c.DirsWarning)
	}
}
