package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// npdConfig is Node Problem Detector's custom plugin monitor configuration
// (kubernetes/node-problem-detector, pkg/custompluginmonitor/types and
// config/custom-plugin-monitor.json), decoded strictly so a misspelt key in
// the example fails.
type npdConfig struct {
	Plugin       string `json:"plugin"`
	PluginConfig struct {
		InvokeInterval                        string `json:"invoke_interval"`
		Timeout                               string `json:"timeout"`
		MaxOutputLength                       int    `json:"max_output_length"`
		Concurrency                           int    `json:"concurrency"`
		EnableMessageChangeBasedConditionUpdt bool   `json:"enable_message_change_based_condition_update"`
	} `json:"pluginConfig"`
	Source           string `json:"source"`
	MetricsReporting bool   `json:"metricsReporting"`
	Conditions       []struct {
		Type    string `json:"type"`
		Reason  string `json:"reason"`
		Message string `json:"message"`
	} `json:"conditions"`
	Rules []struct {
		Type      string   `json:"type"`
		Condition string   `json:"condition"`
		Reason    string   `json:"reason"`
		Path      string   `json:"path"`
		Args      []string `json:"args"`
		Timeout   string   `json:"timeout"`
	} `json:"rules"`
}

// replaceFlag returns args with the value of flag replaced, or the flag
// removed when value is "" (a boolean flag).
func replaceFlag(t *testing.T, args []string, flag, value string) []string {
	t.Helper()
	out := append([]string(nil), args...)
	i := slices.Index(out, flag)
	if i < 0 {
		t.Fatalf("example has no %s in %v", flag, args)
	}
	if value == "" {
		return slices.Delete(out, i, i+1)
	}
	out[i+1] = value
	return out
}

func TestNPDExample(t *testing.T) {
	data, err := os.ReadFile("../../examples/npd/patchgate-livepatch-monitor.json")
	if err != nil {
		t.Fatal(err)
	}
	var cfg npdConfig
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		t.Fatalf("examples/npd: %v", err)
	}
	if cfg.Plugin != "custom" || len(cfg.Rules) != 1 || len(cfg.Conditions) != 1 || cfg.Rules[0].Condition != cfg.Conditions[0].Type {
		t.Fatalf("examples/npd: %+v", cfg)
	}
	for _, d := range []string{cfg.PluginConfig.InvokeInterval, cfg.PluginConfig.Timeout, cfg.Rules[0].Timeout} {
		if _, err := time.ParseDuration(d); err != nil {
			t.Errorf("duration %q: %v", d, err)
		}
	}
	rule := cfg.Rules[0]
	if filepath.Base(rule.Path) != "patchgate" || rule.Args[0] != "check" || !slices.Contains(rule.Args, "-q") {
		t.Fatalf("rule: %+v", rule)
	}
	// NPD's custom plugin protocol: exit 0 OK, 1 NonOK, 2 Unknown; stdout
	// is the condition message. Run the example's argv on fixture hosts
	// (their tools are scripts, so no chroot).
	cvePolicy := writePolicy(t, "  kernel:\n    requiredCVEs: [CVE-2024-1086]\n")
	for _, c := range []struct {
		host, policy string
		want         int
	}{
		{"debian12-enabled", kernelAware, 0},
		{"debian12-transition", kernelAware, 1},
		// The Canonical client is not enabled: the CVEs are unknown.
		{"ubuntu22-canonical-disabled", cvePolicy, 2},
	} {
		args := replaceFlag(t, rule.Args, "--policy", c.policy)
		args = replaceFlag(t, args, "--host-root", hostTree(c.host))
		args = replaceFlag(t, args, "--tools-chroot", "")
		code, out, errs := runCmd(t, args...)
		if code != c.want || strings.Count(out, "\n") != 1 || errs != "" {
			t.Errorf("%s: exit %d (want %d) stdout %q stderr %q", c.host, code, c.want, out, errs)
		}
	}
}

func TestNFDExample(t *testing.T) {
	data, err := os.ReadFile("../../examples/nfd/patchgate-nfd.service")
	if err != nil {
		t.Fatal(err)
	}
	var argv []string
	var success []string
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "ExecStart="); ok {
			argv = strings.Fields(v)
		}
		if v, ok := strings.CutPrefix(line, "SuccessExitStatus="); ok {
			success = strings.Fields(v)
		}
	}
	if len(argv) < 2 || filepath.Base(argv[0]) != "patchgate" || argv[1] != "check" {
		t.Fatalf("ExecStart = %v", argv)
	}
	if !slices.Equal(success, []string{"1", "2"}) {
		t.Errorf("SuccessExitStatus = %v: behind (1) and unknown (2) still write the feature file", success)
	}
	i := slices.Index(argv, "--nfd-features")
	if i < 0 || filepath.Dir(argv[i+1]) != "/etc/kubernetes/node-feature-discovery/features.d" {
		t.Fatalf("--nfd-features in %v", argv)
	}
	feat := filepath.Join(t.TempDir(), "patchgate")
	args := replaceFlag(t, argv[1:], "--nfd-features", feat)
	args = replaceFlag(t, args, "--policy", kernelAware)
	args = append(args, "--host-root", hostTree("debian12-transition"))
	code, _, errs := runCmd(t, args...)
	if code != 1 {
		t.Errorf("exit %d: %s", code, errs)
	}
	b, err := os.ReadFile(feat)
	if err != nil {
		t.Fatal(err)
	}
	// Every line is <name>=<value> as nfd-worker's local source reads it.
	for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		name, value, ok := strings.Cut(line, "=")
		if !ok || !strings.HasPrefix(name, "patchgate.livepatch.") || value == "" || len(value) > 63 {
			t.Errorf("feature line %q", line)
		}
	}
	if !strings.Contains(string(b), "patchgate.livepatch.compliant=false\n") {
		t.Errorf("feature file:\n%s", b)
	}
}
