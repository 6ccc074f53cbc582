package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/patchgate/patchgate/hook"
)

// The shipped example is exactly what the command prints with its defaults.
// Regenerate with UPDATE_GOLDEN=1.
func TestHooksConfigExampleMatches(t *testing.T) {
	const example = "../../examples/hooks.d/patchgate.json"
	var out, errb bytes.Buffer
	if code := runHooksConfig(nil, &out, &errb); code != exitOK {
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
	code := runHooksConfig([]string{"--path", "/opt/pg/patchgate", "--stage", "createContainer", "--identity-from", "crio", "--", "--policy", "/srv/p.yaml"}, &out, &errb)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var cfg hook.HooksDConfig
	if err := json.Unmarshal(out.Bytes(), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Hook.Path != "/opt/pg/patchgate" || cfg.Stages[0] != "createContainer" ||
		strings.Join(cfg.Hook.Args, " ") != "patchgate hook --identity-from=crio --policy /srv/p.yaml" {
		t.Fatalf("got %+v", cfg)
	}
	for _, bad := range [][]string{{"--path", "patchgate"}, {"--path", "/a/../b"}, {"--stage", "poststop"}, {"--nope"},
		{"--", "--bogus-flag"}, {"--", "--policy", "relative/policy.yaml"}, {"--", "--nri-judged", "nonsense"}, {"--", "extra-arg"},
		{"--identity-from", "podman"}, {"--", "--identity-from", "bogus"}} {
		out.Reset()
		errb.Reset()
		if code := runHooksConfig(bad, &out, &errb); code != exitInvalid || out.Len() != 0 {
			t.Errorf("%v: exit %d, stdout %q", bad, code, out.String())
		}
	}
}
