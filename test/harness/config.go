package harness

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"
)

// Paths is the private layout of one harness instance; every path is under Dir.
type Paths struct {
	Dir           string // the private directory; removed by Cleanup
	Root          string // containerd root (content, snapshots, metadata)
	State         string // containerd state (task bundles live in <State>/io.containerd.runtime.v2.task/<ns>/<id>)
	Temp          string // containerd's temp dir for mounts
	Address       string // containerd gRPC socket (CRI and ctr)
	TTRPCAddress  string
	ShimSocketDir string // shim sockets (plugins."io.containerd.shim.v1.manager".socket_dir)
	RuncRoot      string // runc --root
	NRISocket     string // NRI socket external plugins connect to
	NRIPluginDir  string // NRI plugin_path (pre-registered plugins)
	NRIConfDir    string // NRI plugin_config_path (drop-in configs)
	CNIConfDir    string
	CNIDataDir    string // host-local IPAM state
	CDIDir        string
	OptDir        string
	PodLogDir     string // pods' log_directory parent
	ConfigFile    string // the rendered containerd config
	CrictlConfig  string // crictl --config
	ContainerdLog string // containerd's stdout and stderr
	ImageDir      string // the OCI image-layout tarballs
}

func newPaths(dir string) Paths {
	return Paths{
		Dir:           dir,
		Root:          dir + "/root",
		State:         dir + "/state",
		Temp:          dir + "/tmp",
		Address:       dir + "/containerd.sock",
		TTRPCAddress:  dir + "/containerd.sock.ttrpc",
		ShimSocketDir: dir + "/s",
		RuncRoot:      dir + "/runc",
		NRISocket:     dir + "/nri/nri.sock",
		NRIPluginDir:  dir + "/nri/plugins",
		NRIConfDir:    dir + "/nri/conf.d",
		CNIConfDir:    dir + "/cni/net.d",
		CNIDataDir:    dir + "/cni/data",
		CDIDir:        dir + "/cdi",
		OptDir:        dir + "/opt",
		PodLogDir:     dir + "/pods",
		ConfigFile:    dir + "/containerd.toml",
		CrictlConfig:  dir + "/crictl.yaml",
		ContainerdLog: dir + "/containerd.log",
		ImageDir:      dir + "/images",
	}
}

// NRIConfig is the NRI part of the containerd config.
type NRIConfig struct {
	Disable bool
	// RequestTimeout is plugin_request_timeout; zero keeps containerd's default (2s).
	RequestTimeout time.Duration
	// RegistrationTimeout is plugin_registration_timeout; zero keeps the default (5s).
	RegistrationTimeout time.Duration
	// Validator configures NRI's built-in default validator.
	Validator ValidatorConfig
}

// ValidatorConfig is plugins."io.containerd.nri.v1.nri".default_validator.
type ValidatorConfig struct {
	Enable                  bool
	RequiredPlugins         []string // refuse every create while one of these is not registered
	RejectOCIHookAdjustment bool     // refuse plugins' OCI hook injection
	// TolerateMissingPluginsAnnotation is the pod annotation key that, set to "true", exempts a
	// pod from RequiredPlugins (also "<key>/pod" and "<key>/container.<name>"; NRI
	// pkg/plugin.GetEffectiveAnnotation). NRI has no default: while this is empty, no annotation
	// tolerates a missing plugin. TolerateMissingPluginsKey is the conventional key.
	TolerateMissingPluginsAnnotation string
}

// TolerateMissingPluginsKey is the conventional toleration annotation key (NRI's annotation
// domain, noderesource.dev). It only works when the validator config names it.
const TolerateMissingPluginsKey = "tolerate-missing-nri-plugins.noderesource.dev"

// Config is what the harness renders into containerd's config file.
type Config struct {
	Paths
	// Containerd is the containerd release the config is for (one of ContainerdVersions;
	// empty means ContainerdVersion): 1.7 reads config version 2, 2.0-2.2 version 3, 2.4
	// version 4.
	Containerd string
	// BaseRuntimeSpec is the runc runtime's base_runtime_spec: a JSON OCI spec CRI starts
	// every application container from (not pod sandboxes). Empty: containerd's default.
	BaseRuntimeSpec string
	// Imports are config drop-ins containerd merges over this config (imports = [...]);
	// 1.7 replaces whole plugin sections with an import's, 2.x merges them key by key.
	Imports    []string
	Runc       string // runc binary (runtimes.runc.options.BinaryName)
	CNIBinDirs []string
	BridgeName string // the CNI bridge for pods without host network
	Subnet     string // their IPAM range; the bridge has no address, no gateway and no NAT
	// HostGateway gives the bridge the subnet's first address (CNI isGateway), so the host
	// reaches pod IPs (a kubelet's HTTP probes do); still no NAT and no route beyond the
	// bridge. Use a subnet no host interface is on.
	HostGateway  bool
	LogLevel     string // containerd --log-level
	NRI          NRIConfig
	SandboxImage string // pinned_images.sandbox
	Snapshotter  string // "overlayfs" (default) or "native"
}

// ConfigVersion is the config schema version containerd release v reads natively: 2 for
// 1.7, 3 for 2.0-2.2, 4 for 2.4.
func ConfigVersion(v string) int {
	switch {
	case strings.HasPrefix(v, "v1."):
		return 2
	case versionBefore(v, 2, 4):
		return 3
	default:
		return 4
	}
}

// HasDefaultValidator reports whether containerd release v links an NRI with the default
// validator and required_plugins (NRI >= v0.10, containerd >= 2.2). Older ones ignore the
// config section with a warning ("Ignoring unknown key in TOML").
func HasDefaultValidator(v string) bool { return !versionBefore(v, 2, 2) }

// HasValidation reports whether containerd release v knows NRI's ValidateContainerAdjustment
// event (the same releases as the default validator). Older ones decide in CreateContainer.
func HasValidation(v string) bool { return HasDefaultValidator(v) }

// HasShimSocketDir reports whether containerd release v lets the shim sockets move out of
// /run/containerd/s (plugins."io.containerd.shim.v1.manager".socket_dir, new in 2.4).
func HasShimSocketDir(v string) bool { return !versionBefore(v, 2, 4) }

// versionBefore reports whether release v ("v1.7.35") is older than major.minor. An empty
// v is ContainerdVersion.
func versionBefore(v string, major, minor int) bool {
	if v == "" {
		v = ContainerdVersion
	}
	var ma, mi, pa int
	if _, err := fmt.Sscanf(v, "v%d.%d.%d", &ma, &mi, &pa); err != nil {
		return false
	}
	return ma < major || (ma == major && mi < minor)
}

// TOML renders the config in the schema Containerd reads natively: version 2 for 1.7
// (CRI in plugins."io.containerd.grpc.v1.cri", NRI off unless enabled here), version 3 for
// 2.0-2.2, version 4 for 2.4. Settings a release does not have are refused, not dropped:
// the default validator before 2.2 (containerd would ignore it with a warning and the test
// would run without it).
func (c *Config) TOML() (string, error) {
	version := c.Containerd
	if version == "" {
		version = ContainerdVersion
	}
	if !slices.Contains(ContainerdVersions, version) {
		return "", fmt.Errorf("harness: config: unknown containerd release %q", version)
	}
	v := c.NRI.Validator
	if !HasDefaultValidator(version) && (v.Enable || len(v.RequiredPlugins) > 0 || v.RejectOCIHookAdjustment || v.TolerateMissingPluginsAnnotation != "") {
		return "", fmt.Errorf("harness: config: containerd %s links NRI v0.8.0, which has no default validator or required_plugins", version)
	}
	var b strings.Builder
	var errs []string
	q := func(s string) string {
		for _, r := range s {
			if r < 0x20 || r == 0x7f {
				errs = append(errs, fmt.Sprintf("control character in %q", s))
			}
		}
		return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
	}
	ql := func(ss []string) string {
		parts := make([]string, len(ss))
		for i, s := range ss {
			parts[i] = q(s)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	dur := func(d time.Duration) string { return q(d.String()) }
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	snap := c.Snapshotter
	if snap == "" {
		snap = "overlayfs"
	}
	cv := ConfigVersion(version)

	w(`# Rendered by patchgate test/harness for containerd %s: a private containerd; nothing`, version)
	w(`# below points at the host's /etc, /var/lib/containerd or /run/containerd.`)
	if !HasShimSocketDir(version) {
		w(`# containerd %s has no shim socket_dir: shim sockets go to /run/containerd/s/<sha256 of`, version)
		w(`# this instance's address, namespace and id>, which no other containerd's shims share.`)
	}
	w(`version = %d`, cv)
	w(`root = %s`, q(c.Root))
	w(`state = %s`, q(c.State))
	w(`temp = %s`, q(c.Temp))
	w(`imports = %s`, ql(c.Imports))
	w(``)
	if cv == 4 {
		w(`[plugins."io.containerd.server.v1.grpc"]`)
		w(`  address = %s`, q(c.Address))
		w(`[plugins."io.containerd.server.v1.ttrpc"]`)
		w(`  address = %s`, q(c.TTRPCAddress))
		w(`[plugins."io.containerd.server.v1.debug"]`)
		w(`  address = ""`)
		w(`[plugins."io.containerd.server.v1.metrics"]`)
		w(`  address = ""`)
		w(`[plugins."io.containerd.shim.v1.manager"]`)
		w(`  socket_dir = %s`, q(c.ShimSocketDir))
	} else {
		w(`[grpc]`)
		w(`  address = %s`, q(c.Address))
		w(`[ttrpc]`)
		w(`  address = %s`, q(c.TTRPCAddress))
		w(`[debug]`)
		w(`  address = ""`)
		w(`[metrics]`)
		w(`  address = ""`)
	}
	w(`[plugins."io.containerd.internal.v1.opt"]`)
	w(`  path = %s`, q(c.OptDir))
	if cv >= 3 {
		w(`[plugins."io.containerd.image-verifier.v1.bindir"]`)
		w(`  bin_dir = %s`, q(c.OptDir+"/image-verifier/bin"))
	}
	w(``)
	// The CRI tables: one plugin in version 2, split into images and runtime from version 3.
	runtimePlugin := `plugins."io.containerd.cri.v1.runtime"`
	if cv == 2 {
		runtimePlugin = `plugins."io.containerd.grpc.v1.cri"`
		w(`[%s]`, runtimePlugin)
		w(`  sandbox_image = %s`, q(c.SandboxImage))
		w(`  stream_server_address = "127.0.0.1"`)
		w(`  stream_server_port = "0"`)
	} else {
		w(`[plugins."io.containerd.cri.v1.images"]`)
		w(`  snapshotter = %s`, q(snap))
		w(`  [plugins."io.containerd.cri.v1.images".pinned_images]`)
		w(`    sandbox = %s`, q(c.SandboxImage))
		w(`[%s]`, runtimePlugin)
	}
	w(`  # The sandbox lacks CAP_SYS_RESOURCE; without this runc fails with`)
	w(`  # "can't get final child's PID from pipe: EOF".`)
	w(`  restrict_oom_score_adj = true`)
	w(`  netns_mounts_under_state_dir = true`)
	w(`  cdi_spec_dirs = %s`, ql([]string{c.CDIDir}))
	w(`  [%s.containerd]`, runtimePlugin)
	if cv == 2 {
		w(`    snapshotter = %s`, q(snap))
	}
	w(`    default_runtime_name = "runc"`)
	w(`    [%s.containerd.runtimes.runc]`, runtimePlugin)
	w(`      runtime_type = "io.containerd.runc.v2"`)
	if c.BaseRuntimeSpec != "" {
		// Next to runtime_type; under .options it is silently ignored.
		w(`      base_runtime_spec = %s`, q(c.BaseRuntimeSpec))
	}
	w(`      [%s.containerd.runtimes.runc.options]`, runtimePlugin)
	w(`        BinaryName = %s`, q(c.Runc))
	w(`        Root = %s`, q(c.RuncRoot))
	w(`        SystemdCgroup = false`)
	w(`  [%s.cni]`, runtimePlugin)
	if versionBefore(version, 2, 1) {
		// bin_dirs is new in 2.1; before, one directory.
		w(`    bin_dir = %s`, q(c.firstCNIBinDir()))
	} else {
		w(`    bin_dirs = %s`, ql(c.CNIBinDirs))
	}
	w(`    conf_dir = %s`, q(c.CNIConfDir))
	w(`    max_conf_num = 1`)
	if cv >= 3 {
		w(`[plugins."io.containerd.grpc.v1.cri"]`)
		w(`  stream_server_address = "127.0.0.1"`)
		w(`  stream_server_port = "0"`)
	}
	w(``)
	w(`[plugins."io.containerd.nri.v1.nri"]`)
	if cv == 2 {
		w(`  # NRI is off by default in containerd 1.7.`)
	}
	w(`  disable = %t`, c.NRI.Disable)
	w(`  socket_path = %s`, q(c.NRISocket))
	w(`  plugin_path = %s`, q(c.NRIPluginDir))
	w(`  plugin_config_path = %s`, q(c.NRIConfDir))
	if c.NRI.RequestTimeout > 0 {
		w(`  plugin_request_timeout = %s`, dur(c.NRI.RequestTimeout))
	}
	if c.NRI.RegistrationTimeout > 0 {
		w(`  plugin_registration_timeout = %s`, dur(c.NRI.RegistrationTimeout))
	}
	if HasDefaultValidator(version) {
		w(`  [plugins."io.containerd.nri.v1.nri".default_validator]`)
		w(`    enable = %t`, v.Enable)
		w(`    reject_oci_hook_adjustment = %t`, v.RejectOCIHookAdjustment)
		w(`    required_plugins = %s`, ql(v.RequiredPlugins))
		if v.TolerateMissingPluginsAnnotation != "" {
			w(`    tolerate_missing_plugins_annotation = %s`, q(v.TolerateMissingPluginsAnnotation))
		}
	}
	if len(errs) > 0 {
		return "", fmt.Errorf("harness: config: %s", strings.Join(errs, "; "))
	}
	return b.String(), nil
}

// firstCNIBinDir is the CNI plugin directory for releases that take only one (bin_dir): the
// first of CNIBinDirs that exists, else the first.
func (c *Config) firstCNIBinDir() string {
	for _, d := range c.CNIBinDirs {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			return d
		}
	}
	if len(c.CNIBinDirs) > 0 {
		return c.CNIBinDirs[0]
	}
	return ""
}

// CNIConfList is the private network for pods without host network: a bridge with no address
// on the host (isGateway false), so no host route, no gateway and no NAT, and host-local IPAM
// whose state stays in the private directory.
func (c *Config) CNIConfList() ([]byte, error) {
	return json.MarshalIndent(map[string]any{
		"cniVersion": "1.0.0",
		"name":       c.BridgeName,
		"plugins": []map[string]any{{
			"type":      "bridge",
			"bridge":    c.BridgeName,
			"isGateway": c.HostGateway,
			"ipMasq":    false,
			"ipam": map[string]any{
				"type":    "host-local",
				"dataDir": c.CNIDataDir,
				"ranges":  [][]map[string]string{{{"subnet": c.Subnet}}},
			},
		}},
	}, "", "  ")
}

// crictlConfig is crictl's --config file: endpoints, no pulls, a generous timeout.
func (c *Config) crictlConfig() string {
	return fmt.Sprintf("runtime-endpoint: unix://%s\nimage-endpoint: unix://%s\ntimeout: 30\ndebug: false\npull-image-on-create: false\n", c.Address, c.Address)
}
