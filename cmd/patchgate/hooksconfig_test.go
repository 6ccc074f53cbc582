package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patchgate/patchgate/hook"
)

// The shipped example is exactly what the command prints with its defaults.
// Regenerate with UPDATE_GOLDEN=1.
func TestHooksConfigExampleMatches(t *testing.T) {
	const example = "../../examples/hooks.d/patchgate.json"
	var out, errb bytes.Buffer
	if code := dispatch([]string{"hooks-config"}, &out, &errb); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if os.Getenv("UPDATE_GOLDEN") == "1" {
		if err := os.WriteFile(example, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Fatalf("%s differs from `patchgate hooks-config`:\n%s\nwant:\n%s", example, want, out.String())
	}
	var cfg hook.HooksDConfig
	dec := json.NewDecoder(bytes.NewReader(want))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Version != "1.0.0" || !cfg.When.Always || len(cfg.Stages) != 1 || cfg.Stages[0] != "createRuntime" ||
		cfg.Hook.Path != defaultHookPath || strings.Join(cfg.Hook.Args, " ") != "patchgate hook --identity-from=none" {
		t.Fatalf("example = %+v", cfg)
	}
}

func TestHooksConfigFlags(t *testing.T) {
	var out, errb bytes.Buffer
	code := dispatch(append([]string{"hooks-config"}, []string{"--path", "/opt/pg/patchgate", "--stage", "createContainer", "--identity-from", "containerd", "--", "--policy", "/srv/p.yaml"}...), &out, &errb)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var cfg hook.HooksDConfig
	if err := json.Unmarshal(out.Bytes(), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Hook.Path != "/opt/pg/patchgate" || cfg.Stages[0] != "createContainer" ||
		strings.Join(cfg.Hook.Args, " ") != "patchgate hook --identity-from=containerd --policy /srv/p.yaml" {
		t.Fatalf("got %+v", cfg)
	}
	for _, bad := range [][]string{{"--path", "patchgate"}, {"--path", "/a/../b"}, {"--stage", "poststop"}, {"--nope"},
		{"--", "--bogus-flag"}, {"--", "--policy", "relative/policy.yaml"}, {"--", "--nri-judged", "nonsense"}, {"--", "extra-arg"},
		{"--identity-from", "podman"}, {"--", "--identity-from", "bogus"}} {
		out.Reset()
		errb.Reset()
		if code := dispatch(append([]string{"hooks-config"}, bad...), &out, &errb); code != exitInvalid || out.Len() != 0 {
			t.Errorf("%v: exit %d, stdout %q", bad, code, out.String())
		}
	}
}

// A hook that trusts CRI-O's identity annotations is written only into a
// directory podman does not read: podman lets whoever creates a container
// set those annotations.
func TestHooksConfigCRIODir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "crio-hooks.d")
	var out, errb bytes.Buffer
	if code := dispatch(append([]string{"hooks-config"}, []string{"--identity-from", "crio", "--dir", dir}...), &out, &errb); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	data, err := os.ReadFile(filepath.Join(dir, "patchgate.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg hook.HooksDConfig
	if err := json.Unmarshal(data, &cfg); err != nil || strings.Join(cfg.Hook.Args, " ") != "patchgate hook --identity-from=crio" {
		t.Fatalf("written %s (%v)", data, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "patchgate.json")); err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("mode %v %v", fi.Mode(), err)
	}
	// podman's default directories, directly, through a symlink to one, or
	// through a symlinked parent, are refused before anything is written.
	link := filepath.Join(t.TempDir(), "hooks")
	if err := os.Symlink("/etc/containers/oci/hooks.d", link); err != nil {
		t.Fatal(err)
	}
	parent := filepath.Join(t.TempDir(), "oci")
	if err := os.Symlink("/usr/share/containers/oci", parent); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"/etc/containers/oci/hooks.d", "/usr/share/containers/oci/hooks.d", link, filepath.Join(parent, "hooks.d")} {
		out.Reset()
		errb.Reset()
		code := dispatch(append([]string{"hooks-config"}, []string{"--identity-from", "crio", "--dir", bad}...), &out, &errb)
		if code != exitInvalid || !strings.Contains(errb.String(), "podman reads it too") || !strings.Contains(errb.String(), "hooks_dir") {
			t.Errorf("%s: exit %d %q", bad, code, errb.String())
		}
	}
	// Relative or unclean directories are refused for any mode; none may
	// use podman's directory (that is where podman's hook belongs).
	for _, bad := range []string{"rel/dir", "/a/../b"} {
		if code := dispatch(append([]string{"hooks-config"}, []string{"--dir", bad}...), &out, &errb); code != exitInvalid {
			t.Errorf("--dir %s accepted", bad)
		}
	}
	podmanDir := filepath.Join(t.TempDir(), "hooks.d")
	out.Reset()
	if code := dispatch(append([]string{"hooks-config"}, []string{"--dir", podmanDir}...), &out, &errb); code != exitOK || !strings.Contains(out.String(), "wrote ") {
		t.Fatalf("--dir for none: exit %d %q %q", code, out.String(), errb.String())
	}
}
