package main

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The shipped nri.conf decodes strictly and gives the documented settings.
func TestShippedNRIConf(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "nri.conf"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := parseNRIConf(string(b), defaultNRISettings())
	if err != nil {
		t.Fatal(err)
	}
	if s.Policy != "/etc/patchgate" || s.HostRoot != "/" || s.MetricsAddr != "127.0.0.1:9646" || s.HookPath != "/opt/nri/plugins/10-patchgate" {
		t.Errorf("settings = %+v", s)
	}
}

func TestNRIConfErrors(t *testing.T) {
	for _, bad := range []string{
		"polcy: /etc/patchgate\n",     // typo: unknown key
		"hookPath: patchgate\n",       // relative hook path
		"hostRoot: [1]\n",             // wrong type
		"metricsAddr: 0.0.0.0:9646\n", // not loopback
		"policy: /a\npolicy: /b\n",    // duplicate key
	} {
		if _, err := parseNRIConf(bad, defaultNRISettings()); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
	s, err := parseNRIConf("", defaultNRISettings())
	if err != nil || s.Policy != "/etc/patchgate" {
		t.Errorf("empty config: %+v %v", s, err)
	}
}

func FuzzParseNRIConf(f *testing.F) {
	b, _ := os.ReadFile(filepath.Join("..", "..", "nri.conf"))
	f.Add(string(b))
	f.Add("policy: /x\nhookPath: /y\n")
	f.Fuzz(func(t *testing.T, data string) {
		s, err := parseNRIConf(data, defaultNRISettings())
		if err != nil {
			return
		}
		if s.HookPath != "" && !strings.HasPrefix(s.HookPath, "/") {
			t.Fatalf("relative hook path accepted: %q", s.HookPath)
		}
	})
}

func TestNRIFlagErrors(t *testing.T) {
	var out, errb strings.Builder
	if code := dispatch([]string{"nri", "--hook-path", "relative"}, &out, &errb); code != exitInvalid {
		t.Errorf("exit %d for a relative hook path", code)
	}
	if !strings.Contains(errb.String(), "must be absolute") {
		t.Errorf("stderr = %q", errb.String())
	}
	errb.Reset()
	if code := dispatch([]string{"nri", "--idx", "5"}, &out, &errb); code != exitInvalid {
		t.Errorf("exit %d for a bad index", code)
	}
}

// A metrics address that is not loopback needs --metrics-remote (a DaemonSet
// serving Prometheus on the pod IP); nri.conf cannot ask for it.
func TestNRIMetricsRemote(t *testing.T) {
	s := defaultNRISettings()
	s.MetricsAddr = "10.1.2.3:9646"
	if err := s.validate(); err == nil {
		t.Fatal("a pod-IP metrics address was accepted without --metrics-remote")
	}
	s.metricsRemote = true
	if err := s.validate(); err != nil {
		t.Fatalf("with --metrics-remote: %v", err)
	}
	if _, err := parseNRIConf("metricsAddr: 10.1.2.3:9646\nmetricsRemote: true\n", defaultNRISettings()); err == nil {
		t.Error("nri.conf accepted metricsRemote")
	}
	c, err := parseNRIConf("toolsChroot: true\n", defaultNRISettings())
	if err != nil || !c.ToolsChroot {
		t.Errorf("toolsChroot in nri.conf: %+v %v", c, err)
	}
}

func TestNRIConfPaths(t *testing.T) {
	s, err := parseNRIConf("policy: /p\ndecisionSocket: /x/d.sock\nauditSocket: /x/a.sock\nauditLog: /x/audit.log\nstatusFile: /x/s.json\nstateFile: /x/k.json\n", defaultNRISettings())
	if err != nil {
		t.Fatal(err)
	}
	if s.Policy != "/p" || s.decisionSocket != "/x/d.sock" || s.auditSocket != "/x/a.sock" || s.auditLog != "/x/audit.log" ||
		s.statusFile != "/x/s.json" || s.stateFile != "/x/k.json" {
		t.Errorf("settings = %+v", s)
	}
	if _, err := parseNRIConf("stateFile: relative.json\n", defaultNRISettings()); err == nil {
		t.Error("relative state file accepted")
	}
}

// With --policy-copy the injected hook decides alone with the service's
// root-only copy of the policy in force, not with --policy, which in a
// DaemonSet is a path inside the pod.
func TestHookPolicyIsTheCopy(t *testing.T) {
	s := defaultNRISettings()
	s.Policy = "/etc/patchgate"
	if !slices.Contains(s.hookArgs(), "--policy=/etc/patchgate") {
		t.Errorf("hook args %v", s.hookArgs())
	}
	s.policyCopy = "/var/lib/patchgate/policy"
	if args := s.hookArgs(); !slices.Contains(args, "--policy=/var/lib/patchgate/policy") || slices.Contains(args, "--policy=/etc/patchgate") {
		t.Errorf("hook args %v", args)
	}
}

// containerd launches a pre-registered plugin with no arguments and its
// connection in NRI_PLUGIN_SOCKET: that is `patchgate nri` (here it fails
// on the connection it was handed, as nri, not with the usage).
func TestNRILaunchedNoArgs(t *testing.T) {
	t.Setenv("NRI_PLUGIN_SOCKET", "not-a-descriptor")
	var out, errb strings.Builder
	if code := dispatch(nil, &out, &errb); code != exitInvalid {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(errb.String(), `patchgate nri: invalid socket in environment (NRI_PLUGIN_SOCKET="not-a-descriptor")`) {
		t.Fatalf("stderr %q", errb.String())
	}
}

// Every line the daemon writes on stderr has one format: the NRI stub's
// lines go through patchgate's logger (component=nri), as JSON or text.
func TestNRILogFormat(t *testing.T) {
	t.Setenv("NRI_PLUGIN_SOCKET", "not-a-descriptor")
	var out, errb strings.Builder
	if code := dispatch([]string{"nri", "--log-format", "json"}, &out, &errb); code != exitInvalid {
		t.Fatalf("exit %d", code)
	}
	lines := strings.Split(strings.TrimSpace(errb.String()), "\n")
	nri := 0
	for _, l := range lines[:len(lines)-1] { // the last is the exit message
		var e map[string]any
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("not a JSON log line: %q\n%s", l, errb.String())
		}
		if e["component"] == "nri" {
			nri++
		}
	}
	if nri == 0 || !strings.Contains(errb.String(), "Created plugin") {
		t.Fatalf("no NRI stub line through patchgate's logger:\n%s", errb.String())
	}
	errb.Reset()
	dispatch([]string{"nri", "--log-format", "text", "--log-level", "debug"}, &out, &errb)
	if !strings.Contains(errb.String(), `level=info msg="Created plugin`) || !strings.Contains(errb.String(), "component=nri") || strings.Contains(errb.String(), `{"`) {
		t.Fatalf("text format:\n%s", errb.String())
	}
	for _, bad := range [][]string{{"nri", "--log-format", "xml"}, {"serve", "--log-level", "loud"}} {
		errb.Reset()
		if code := dispatch(bad, &out, &errb); code != exitInvalid || !strings.Contains(errb.String(), "want ") {
			t.Errorf("%v: exit %d, stderr %q", bad, code, errb.String())
		}
	}
}

// The hook binary runc runs for every container is refused, before anything
// starts, when someone else could replace it on the host: a writable parent
// seen through --host-root (which `patchgate install` in the DaemonSet
// cannot see) or a writable file. A missing one (or the thin hook's missing
// fallback) is an fs.ErrNotExist, only logged.
func TestNRIRefusesUntrustedHookBinary(t *testing.T) {
	host := t.TempDir()
	bin := filepath.Join(host, "opt", "patchgate", "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"patchgate", "patchgate-hook"} {
		if err := os.WriteFile(filepath.Join(bin, f), []byte("x"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{"/opt/patchgate/bin/patchgate", "/opt/patchgate/bin/patchgate-hook"} {
		if err := checkHookBinary(host, p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	if err := checkHookBinary(host, "/opt/patchgate/bin/gone"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing binary: %v, want fs.ErrNotExist", err)
	}
	for _, tc := range []struct {
		name, path string
		breakIt    func() error
		want       string
	}{
		{"writable /opt", "/opt/patchgate/bin/patchgate", func() error { return os.Chmod(filepath.Join(host, "opt"), 0o777) },
			"hook binary /opt/patchgate/bin/patchgate on the host: directory /opt (on the way to /opt/patchgate/bin/patchgate) is writable by group or others"},
		{"writable binary", "/opt/patchgate/bin/patchgate", func() error { return os.Chmod(filepath.Join(bin, "patchgate"), 0o777) },
			"/opt/patchgate/bin/patchgate is writable by group or others"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.breakIt(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { // the next case starts from a trusted tree
				_ = os.Chmod(filepath.Join(host, "opt"), 0o755)
				_ = os.WriteFile(filepath.Join(bin, "patchgate"), []byte("x"), 0o755)
				_ = os.Chmod(filepath.Join(bin, "patchgate"), 0o755)
			})
			var out, errb strings.Builder
			if code := dispatch([]string{"nri", "--host-root", host, "--hook-path", tc.path}, &out, &errb); code != exitInvalid || !strings.Contains(errb.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errb.String(), exitInvalid, tc.want)
			}
		})
	}
	if err := os.Remove(filepath.Join(bin, "patchgate")); err != nil {
		t.Fatal(err)
	}
	if err := checkHookBinary(host, "/opt/patchgate/bin/patchgate-hook"); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "hook binary /opt/patchgate/bin/patchgate on the host") {
		t.Errorf("the thin hook's missing fallback: %v, want fs.ErrNotExist naming it", err)
	}
}
