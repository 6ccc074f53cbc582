package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// exampleReleases maps examples/containerd/<dir> to the containerd release whose
// `ctr oci spec` (hook/testdata/ctr-oci-spec) its base-spec.json is made from.
var exampleReleases = map[string]string{
	"v1.7": "v1.7.35", "v2.0": "v2.0.14", "v2.1": "v2.1.9", "v2.2": "v2.2.9", "v2.4": "v2.4.2",
}

// Each example base-spec.json is exactly what `patchgate runtime-spec` makes, with its
// defaults, from that release's `ctr oci spec`. Regenerate with UPDATE_GOLDEN=1.
func TestRuntimeSpecExamplesMatch(t *testing.T) {
	for dir, release := range exampleReleases {
		t.Run(dir, func(t *testing.T) {
			in := filepath.Join("..", "..", "hook", "testdata", "ctr-oci-spec", "containerd-"+release+".json")
			if _, err := os.Stat(in); err != nil {
				t.Fatalf("no ctr oci spec captured from containerd %s: %v", release, err)
			}
			var out, errb bytes.Buffer
			if code := dispatch(append([]string{"runtime-spec"}, []string{"--in", in}...), &out, &errb); code != exitOK {
				t.Fatalf("exit %d: %s", code, errb.String())
			}
			if !strings.Contains(errb.String(), "removed process.rlimits") {
				t.Errorf("stderr does not say the rlimits were removed: %q", errb.String())
			}
			example := filepath.Join("..", "..", "examples", "containerd", dir, "base-spec.json")
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
				t.Fatalf("%s differs from `patchgate runtime-spec --in %s` (UPDATE_GOLDEN=1 to accept)", example, in)
			}
		})
	}
}

func TestRuntimeSpecFlags(t *testing.T) {
	in := filepath.Join("..", "..", "hook", "testdata", "ctr-oci-spec", "containerd-v2.4.2.json")
	dir := t.TempDir()
	out := filepath.Join(dir, "base.json")
	var stdout, stderr bytes.Buffer
	code := dispatch([]string{"runtime-spec", "--in", in, "--out", out, "--path", "/opt/pg/patchgate", "--policy", "/srv/policy", "--timeout", "7",
		"--", "--socket=/run/pg/decision.sock"}, &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	h := s.Hooks.CreateRuntime[0]
	if h.Path != "/opt/pg/patchgate" || *h.Timeout != 7 ||
		strings.Join(h.Args, " ") != "/opt/pg/patchgate hook --identity-from=containerd --policy=/srv/policy --socket=/run/pg/decision.sock" {
		t.Fatalf("hook %+v", h)
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v %v", fi.Mode(), err)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"ociVersion":"1.1.0","process":{},"linux":{},"linux":{}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"--in", bad},
		{"--in", filepath.Join(dir, "missing.json")},
		{"--in", in, "--path", "patchgate"},
		{"--in", in, "--policy", "relative"},
		{"--in", in, "--timeout", "0"},
		{"--in", in, "--", "--no-such-flag"},
		{"--in", in, "--out", filepath.Join(dir, "no", "such", "dir", "x.json")},
	} {
		stdout.Reset()
		stderr.Reset()
		if code := dispatch(append([]string{"runtime-spec"}, args...), &stdout, &stderr); code != exitInvalid || stdout.Len() != 0 {
			t.Errorf("%v: exit %d, stdout %q", args, code, stdout.String())
		}
	}
}
