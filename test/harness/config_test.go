package harness

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func testConfig() Config {
	return Config{
		Paths:        newPaths("/tmp/pge2e-golden"),
		Runc:         "/usr/sbin/runc",
		CNIBinDirs:   []string{"/usr/lib/cni"},
		BridgeName:   "pge2e0000",
		Subnet:       "192.0.2.0/24",
		LogLevel:     "info",
		SandboxImage: PauseImageRef,
		Snapshotter:  "overlayfs",
		NRI: NRIConfig{
			RequestTimeout:      1500 * time.Millisecond,
			RegistrationTimeout: 3 * time.Second,
			Validator: ValidatorConfig{
				Enable: true, RequiredPlugins: []string{"patchgate"}, RejectOCIHookAdjustment: true,
				TolerateMissingPluginsAnnotation: TolerateMissingPluginsKey,
			},
		},
	}
}

// golden compares got with testdata/name; UPDATE_GOLDEN=1 rewrites the file.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if os.Getenv("UPDATE_GOLDEN") == "1" {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("%s differs (UPDATE_GOLDEN=1 to accept):\n%s", p, got)
	}
}

// The golden config is the one the e2e tests run containerd v2.4.2 with; containerd itself is
// the parser that proves it (test/e2e). This test pins what the harness renders.
func TestConfigTOML(t *testing.T) {
	c := testConfig()
	got, err := c.TOML()
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "containerd.toml", []byte(got))
	for _, host := range []string{"/var/", "/run/", "/etc/", "/opt/"} {
		if strings.Contains(got, `"`+host) {
			t.Errorf("config mentions host path %s", host)
		}
	}
}

func TestConfigTOMLDefaultsOmitted(t *testing.T) {
	c := testConfig()
	c.NRI = NRIConfig{}
	got, err := c.TOML()
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"plugin_request_timeout", "plugin_registration_timeout", "tolerate_missing_plugins_annotation"} {
		if strings.Contains(got, key) {
			t.Errorf("zero NRIConfig renders %s", key)
		}
	}
	if !strings.Contains(got, "    enable = false\n") || !strings.Contains(got, "required_plugins = []\n") {
		t.Errorf("validator not rendered disabled:\n%s", got)
	}
}

func TestConfigTOMLQuoting(t *testing.T) {
	c := testConfig()
	c.NRI.Validator.RequiredPlugins = []string{`we"ird\name`}
	got, err := c.TOML()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got, `required_plugins = ["we\"ird\\name"]`) {
		t.Errorf("quoting: %s", got)
	}
	c.NRI.Validator.RequiredPlugins = []string{"bad\nname"}
	if _, err := c.TOML(); err == nil {
		t.Error("a control character in the config was accepted")
	}
}

func TestCNIConfList(t *testing.T) {
	c := testConfig()
	data, err := c.CNIConfList()
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "cni.conflist", append(data, '\n'))

	// A cluster's pods are the kubelet's to probe: the bridge becomes their gateway.
	c.HostGateway, c.Subnet = true, "198.51.100.0/24"
	if data, err = c.CNIConfList(); err != nil {
		t.Fatal(err)
	}
	var conf struct {
		Plugins []struct {
			IsGateway bool `json:"isGateway"`
			IPMasq    bool `json:"ipMasq"`
		} `json:"plugins"`
	}
	if err := json.Unmarshal(data, &conf); err != nil {
		t.Fatal(err)
	}
	if len(conf.Plugins) != 1 || !conf.Plugins[0].IsGateway || conf.Plugins[0].IPMasq {
		t.Errorf("HostGateway: plugins %+v, want one bridge with isGateway and no ipMasq", conf.Plugins)
	}
	if !strings.Contains(string(data), `"subnet": "198.51.100.0/24"`) {
		t.Errorf("HostGateway: subnet not rendered:\n%s", data)
	}
}

func TestPodAndContainerJSON(t *testing.T) {
	h := &Containerd{Config: testConfig(), CgroupParent: "/pge2e-golden"}
	h.PodLogDir = t.TempDir()
	uid := int64(1000)
	pod, err := h.podJSON(PodConfig{
		Name: "web", Namespace: "team", HostPID: true, Privileged: true, RunAsUser: &uid,
		Labels: map[string]string{"app": "web"}, Annotations: map[string]string{"a": "b"},
		Sysctls: map[string]string{"net.ipv4.ping_group_range": "0 1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	// The log directory is a temp dir; blank it for the golden file.
	pod = []byte(strings.ReplaceAll(string(pod), h.PodLogDir, "LOGDIR"))
	golden(t, "pod.json", append(pod, '\n'))
	hostNet, err := h.podJSON(PodConfig{Name: "hn", HostNetwork: true})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(hostNet, &m); err != nil {
		t.Fatal(err)
	}
	if _, ok := m["hostname"]; ok {
		t.Error("host-network pod sets hostname (runc refuses it)")
	}
	ctr, err := containerJSON(ContainerConfig{
		Name: "app", Command: []string{"/bin/sh", "-c", "true"}, Privileged: true,
		CapAdd: []string{"SYS_ADMIN"}, RunAsUser: &uid, ReadOnlyRoot: true,
		Env:     map[string]string{"K": "V"},
		Mounts:  []Mount{{HostPath: "/", ContainerPath: "/host", Readonly: true}},
		Devices: []Device{{HostPath: "/dev/fuse", ContainerPath: "/dev/fuse", Permissions: "rwm"}},
		Raw:     map[string]any{"working_dir": "/tmp"},
	})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "container.json", append(ctr, '\n'))
	if _, err := h.podJSON(PodConfig{}); err == nil {
		t.Error("pod without a name accepted")
	}
	if _, err := containerJSON(ContainerConfig{Name: "c", CapAdd: []string{"CAP_SYS_ADMIN"}}); err == nil {
		t.Error("CAP_-prefixed CRI capability accepted")
	}
	if _, err := containerJSON(ContainerConfig{}); err == nil {
		t.Error("container without a name accepted")
	}
}

func TestUnescapeMount(t *testing.T) {
	for in, want := range map[string]string{
		`/tmp/a\040b`:  "/tmp/a b",
		`/plain`:       "/plain",
		`/tab\011x`:    "/tab\tx",
		`/short\04`:    `/short\04`,
		`/back\134sl`:  `/back\sl`,
		`/notoct\09x9`: `/notoct\09x9`,
	} {
		if got := unescapeMount(in); got != want {
			t.Errorf("unescapeMount(%q) = %q, want %q", in, got, want)
		}
	}
}

// Each release gets the schema it reads natively (containerd itself proves it: the e2e
// matrix starts every release with it). Golden per release.
func TestConfigTOMLPerRelease(t *testing.T) {
	for _, v := range ContainerdVersions {
		t.Run(v, func(t *testing.T) {
			c := testConfig()
			c.Containerd = v
			c.BaseRuntimeSpec = "/tmp/pge2e-golden/base-spec.json"
			if !HasDefaultValidator(v) {
				c.NRI.Validator = ValidatorConfig{}
			}
			got, err := c.TOML()
			if err != nil {
				t.Fatal(err)
			}
			golden(t, "containerd-"+v+".toml", []byte(got))
			if want := fmt.Sprintf("\nversion = %d\n", ConfigVersion(v)); !strings.Contains(got, want) {
				t.Errorf("no %q", want)
			}
			// base_runtime_spec sits next to runtime_type (under .options it is ignored).
			if !strings.Contains(got, "runtime_type = \"io.containerd.runc.v2\"\n      base_runtime_spec = \"/tmp/pge2e-golden/base-spec.json\"\n") {
				t.Error("base_runtime_spec not next to runtime_type")
			}
			if strings.Contains(got, "default_validator") != HasDefaultValidator(v) {
				t.Errorf("default_validator rendered: %t, release has it: %t", !HasDefaultValidator(v), HasDefaultValidator(v))
			}
			if strings.Contains(got, "socket_dir =") != HasShimSocketDir(v) {
				t.Error("socket_dir rendered for a release without it (or missing)")
			}
			for _, host := range []string{"/var/", "/run/", "/etc/", "/opt/"} {
				if strings.Contains(got, `"`+host) {
					t.Errorf("config mentions host path %s", host)
				}
			}
		})
	}
}

// A setting the release does not have is refused, never silently dropped.
func TestConfigTOMLRefusesValidatorBefore22(t *testing.T) {
	for _, v := range []string{Containerd17, Containerd20, Containerd21} {
		c := testConfig()
		c.Containerd = v
		if _, err := c.TOML(); err == nil || !strings.Contains(err.Error(), "no default validator") {
			t.Errorf("%s: validator config accepted: %v", v, err)
		}
	}
	c := testConfig()
	c.Containerd = "v1.6.0"
	if _, err := c.TOML(); err == nil {
		t.Error("unknown release accepted")
	}
}

func TestConfigVersionOf(t *testing.T) {
	for v, want := range map[string]int{Containerd17: 2, Containerd20: 3, Containerd21: 3, Containerd22: 3, Containerd24: 4} {
		if got := ConfigVersion(v); got != want {
			t.Errorf("ConfigVersion(%s) = %d, want %d", v, got, want)
		}
	}
}
