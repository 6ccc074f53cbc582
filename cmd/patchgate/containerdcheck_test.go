package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/internal/containerdconf"
	"github.com/patchgate/patchgate/service"
)

// hostWithContainerd is a fixture host whose /etc/containerd/config.toml
// is body ("" for none).
func hostWithContainerd(t *testing.T, body string) string {
	t.Helper()
	root := copyHost(t, "debian12-enabled")
	if body != "" {
		dir := filepath.Join(root, "etc", "containerd")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func shipped(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "examples", "containerd", rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func statusWith(t *testing.T, r *service.RuntimeConnection) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "status.json")
	if err := service.WriteStatusFile(path, service.Status{PID: 1, UpdatedAt: time.Now(), Runtime: r}); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCheckContainerdRequiredPlugins(t *testing.T) {
	connected24 := &service.RuntimeConnection{State: "connected", Mode: "validator", Plugin: "50-patchgate", Runtime: "containerd", RuntimeVersion: "v2.4.2", NRIVersion: "v0.12.3"}
	for _, tc := range []struct {
		name     string
		config   string
		runtime  *service.RuntimeConnection
		status   string
		warning  string // "" for none
		textLine string
	}{
		{"2.4 snippet", shipped(t, "v2.4/patchgate.toml"), connected24, containerdconf.OK, "",
			`containerd config  required_plugins names "patchgate", default validator enabled`},
		{"no default validator on a 2.4 node", shipped(t, "v2.0/patchgate.toml"), connected24, containerdconf.Missing,
			`containerd does not require NRI plugin "patchgate" (no [plugins."io.containerd.nri.v1.nri".default_validator] table)`,
			"containerd config  WARNING: containerd does not require"},
		{"the registered name is the one required", strings.Replace(shipped(t, "v2.4/patchgate.toml"), `["patchgate"]`, `["gate"]`, 1),
			&service.RuntimeConnection{State: "connected", Mode: "validator", Plugin: "50-gate", Runtime: "containerd"}, containerdconf.OK, "", `names "gate"`},
		{"NRI v0.8: nothing to set", shipped(t, "v2.1/patchgate.toml"),
			&service.RuntimeConnection{State: "connected", Mode: "CreateContainer", Plugin: "99-patchgate", Runtime: "containerd", RuntimeVersion: "v2.1.9", NRIVersion: "v0.8.0"},
			containerdconf.Missing, "", "this containerd's NRI (v0.8.0) has no validator"},
		{"malformed", "version = 4\n[plugins\n", connected24, containerdconf.Unknown,
			`cannot tell whether containerd requires NRI plugin "patchgate": /etc/containerd/config.toml:2:`, "containerd config  WARNING: cannot tell"},
		{"no config on a containerd node", "", connected24, containerdconf.Absent,
			"no containerd config at /etc/containerd/config.toml", "WARNING: containerd does not require"},
		{"no config, no containerd seen", "", nil, containerdconf.Absent, "", "containerd config  no containerd config at"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := hostWithContainerd(t, tc.config)
			status := statusWith(t, tc.runtime)
			_, rep := checkJSON(t, "--host-root", root, "--status-file", status)
			c := rep.Containerd
			if c == nil || c.Status != tc.status {
				t.Fatalf("containerd = %+v, want status %s", c, tc.status)
			}
			switch {
			case tc.warning == "" && (c.Warning != "" || len(rep.Warnings) != 0):
				t.Errorf("warned: %q %q", c.Warning, rep.Warnings)
			case tc.warning != "" && (!strings.Contains(c.Warning, tc.warning) || len(rep.Warnings) != 1 || rep.Warnings[0] != c.Warning):
				t.Errorf("warning %q / %q, want %q", c.Warning, rep.Warnings, tc.warning)
			}
			_, out, _ := runCmd(t, "check", "--now", checkNow, "--host-root", root, "--status-file", status)
			if !strings.Contains(out, tc.textLine) {
				t.Errorf("text lacks %q:\n%s", tc.textLine, out)
			}
		})
	}
	// --containerd-config "" skips it; another path is read under --host-root.
	root := hostWithContainerd(t, "")
	if _, rep := checkJSON(t, "--host-root", root, "--containerd-config", ""); rep.Containerd != nil {
		t.Errorf("not skipped: %+v", rep.Containerd)
	}
	if err := os.WriteFile(filepath.Join(root, "custom.toml"), []byte(shipped(t, "v2.2/patchgate.toml")), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, rep := checkJSON(t, "--host-root", root, "--containerd-config", "/custom.toml"); rep.Containerd == nil || rep.Containerd.Status != containerdconf.OK {
		t.Errorf("custom path: %+v", rep.Containerd)
	}
}

// TestCheckContainerdRuntimeDirs: a containerd with another root and state
// (k3s's) whose CRI sandboxes directories the policy's runtimeDirs does not
// name is warned about, both directories, in JSON and text; naming them, or
// containerd's root and state themselves, silences it.
func TestCheckContainerdRuntimeDirs(t *testing.T) {
	k3s := "root = \"/var/lib/rancher/k3s/agent/containerd\"\nstate = \"/var/run/k3s/containerd\"\n" + shipped(t, "v2.4/patchgate.toml")
	root := hostWithContainerd(t, k3s)
	_, rep := checkJSON(t, "--host-root", root)
	c := rep.Containerd
	want := []string{"/var/lib/rancher/k3s/agent/containerd/io.containerd.grpc.v1.cri/sandboxes", "/var/run/k3s/containerd/io.containerd.grpc.v1.cri/sandboxes"}
	if c == nil || c.Status != containerdconf.OK || strings.Join(c.UnlistedDirs, ",") != strings.Join(want, ",") ||
		!strings.Contains(c.DirsWarning, "refuses every pod") || len(rep.Warnings) != 1 || rep.Warnings[0] != c.DirsWarning {
		t.Fatalf("containerd = %+v, warnings %q; want unlisted %q", c, rep.Warnings, want)
	}
	_, out, _ := runCmd(t, "check", "--now", checkNow, "--host-root", root)
	if !strings.Contains(out, "containerd dirs    WARNING: spec.rules.hostPathMounts.runtimeDirs does not name containerd's "+want[0]+" and "+want[1]) {
		t.Errorf("text lacks the warning:\n%s", out)
	}
	for name, dirs := range map[string]string{
		"sandboxes":      "[" + want[0] + ", /var/run/k3s/containerd/io.containerd.grpc.v1.cri/sandboxes]",
		"root and state": "[/var/lib/rancher/k3s/agent/containerd/, /run/k3s/containerd]",
	} {
		pol := writePolicy(t, "  rules:\n    hostPathMounts:\n      runtimeDirs: "+dirs+"\n")
		if _, rep := checkJSON(t, "--policy", pol, "--host-root", root); rep.Containerd == nil || len(rep.Containerd.UnlistedDirs) != 0 || len(rep.Warnings) != 0 {
			t.Errorf("%s listed: %+v, warnings %q", name, rep.Containerd, rep.Warnings)
		}
	}
	// The defaults: the built-in policy names containerd's default directories.
	if _, rep := checkJSON(t, "--host-root", hostWithContainerd(t, shipped(t, "v2.4/patchgate.toml"))); rep.Containerd == nil || rep.Containerd.DirsWarning != "" {
		t.Errorf("default directories warned: %+v", rep.Containerd)
	}
}
