package hook

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ctrOCISpecs are `ctr oci spec` outputs captured from each containerd release
// (testdata/ctr-oci-spec/README.md).
func ctrOCISpecs(t testing.TB) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob("testdata/ctr-oci-spec/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no ctr oci spec fixtures: %v", err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimSuffix(filepath.Base(f), ".json")] = data
	}
	return out
}

var testBaseOpts = BaseSpecOptions{Path: "/usr/local/bin/patchgate", Args: []string{"--policy=/etc/patchgate"}, Timeout: 5}

func TestBaseRuntimeSpec(t *testing.T) {
	for name, in := range ctrOCISpecs(t) {
		t.Run(name, func(t *testing.T) {
			out, notes, err := BaseRuntimeSpec(in, testBaseOpts)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseSpec(out)
			if err != nil {
				t.Fatalf("output does not read back: %v", err)
			}
			if len(got.Process.Rlimits) != 0 {
				t.Errorf("rlimits kept: %+v", got.Process.Rlimits)
			}
			var want specs.Spec
			if err := json.Unmarshal(in, &want); err != nil {
				t.Fatal(err)
			}
			if len(want.Process.Rlimits) > 0 && !slices.ContainsFunc(notes, func(n string) bool { return strings.Contains(n, "rlimits") }) {
				t.Errorf("rlimits removed without a note: %q", notes)
			}
			wantHook := specs.Hook{Path: "/usr/local/bin/patchgate", Args: []string{"/usr/local/bin/patchgate", "hook", "--identity-from=containerd", "--policy=/etc/patchgate"}}
			if got.Hooks == nil || len(got.Hooks.CreateRuntime) != 1 {
				t.Fatalf("hooks = %+v", got.Hooks)
			}
			h := got.Hooks.CreateRuntime[0]
			if h.Timeout == nil || *h.Timeout != 5 {
				t.Errorf("timeout %v", h.Timeout)
			}
			h.Timeout = nil
			if !reflect.DeepEqual(h, wantHook) {
				t.Errorf("hook = %+v, want %+v", h, wantHook)
			}
			// Nothing else changed.
			want.Process.Rlimits, want.Linux.Seccomp, want.Process.ApparmorProfile = nil, nil, ""
			got.Hooks = nil
			want.Hooks = nil
			if !reflect.DeepEqual(got, &want) {
				t.Error("base spec differs from the input in more than rlimits, seccomp, AppArmor and the hook")
			}
			// Running it again replaces patchgate's hook instead of adding a second.
			again, notes, err := BaseRuntimeSpec(out, testBaseOpts)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again, out) || !slices.Contains(notes, "replaced patchgate's existing createRuntime hook") {
				t.Errorf("not idempotent (notes %q)", notes)
			}
		})
	}
}

// Another hook in the input is kept; seccomp and AppArmor of the base are removed.
func TestBaseRuntimeSpecKeepsOtherHooks(t *testing.T) {
	in := []byte(`{"ociVersion":"1.1.0","process":{"cwd":"/","apparmorProfile":"x"},"root":{"path":"rootfs"},` +
		`"hooks":{"createRuntime":[{"path":"/usr/bin/other","args":["other","hook"]}]},"linux":{"seccomp":{"defaultAction":"SCMP_ACT_ALLOW"}}}`)
	out, notes, err := BaseRuntimeSpec(in, testBaseOpts)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseSpec(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Hooks.CreateRuntime) != 2 || s.Hooks.CreateRuntime[0].Path != "/usr/bin/other" {
		t.Errorf("hooks %+v", s.Hooks.CreateRuntime)
	}
	if s.Linux.Seccomp != nil || s.Process.ApparmorProfile != "" || len(notes) != 2 {
		t.Errorf("seccomp %+v apparmor %q notes %q", s.Linux.Seccomp, s.Process.ApparmorProfile, notes)
	}
}

func TestBaseRuntimeSpecRefuses(t *testing.T) {
	good := `{"ociVersion":"1.1.0","process":{"cwd":"/"},"linux":{}}`
	if _, _, err := BaseRuntimeSpec([]byte(good), testBaseOpts); err != nil {
		t.Fatalf("minimal spec refused: %v", err)
	}
	for name, in := range map[string]string{
		"not json":          `ociVersion: 1.1.0`,
		"empty":             ``,
		"trailing data":     good + `{}`,
		"duplicate key":     `{"ociVersion":"1.1.0","process":{"cwd":"/"},"linux":{},"linux":{}}`,
		"case-variant key":  `{"ociVersion":"1.1.0","process":{"cwd":"/"},"Process":{"cwd":"/"},"linux":{}}`,
		"unknown field":     `{"ociVersion":"1.1.0","process":{"cwd":"/"},"linux":{"sekcomp":{}}}`,
		"no process":        `{"ociVersion":"1.1.0","linux":{}}`,
		"no linux":          `{"ociVersion":"1.1.0","process":{"cwd":"/"}}`,
		"no version":        `{"process":{"cwd":"/"},"linux":{}}`,
		"array":             `[]`,
		"wrong type":        `{"ociVersion":"1.1.0","process":{"cwd":7},"linux":{}}`,
		"hooks not objects": `{"ociVersion":"1.1.0","process":{"cwd":"/"},"linux":{},"hooks":{"createRuntime":["x"]}}`,
	} {
		if _, _, err := BaseRuntimeSpec([]byte(in), testBaseOpts); !errors.Is(err, ErrBaseSpec) {
			t.Errorf("%s: err = %v, want ErrBaseSpec", name, err)
		}
	}
	for name, o := range map[string]BaseSpecOptions{
		"relative path": {Path: "patchgate", Timeout: 5},
		"unclean path":  {Path: "/usr/local/bin/../bin/patchgate", Timeout: 5},
		"no timeout":    {Path: "/usr/local/bin/patchgate"},
		"bad flag":      {Path: "/usr/local/bin/patchgate", Args: []string{"--bogus"}, Timeout: 5},
		"relative pol":  {Path: "/usr/local/bin/patchgate", Args: []string{"--policy=etc/patchgate"}, Timeout: 5},
		"extra arg":     {Path: "/usr/local/bin/patchgate", Args: []string{"stray"}, Timeout: 5},
	} {
		if _, _, err := BaseRuntimeSpec([]byte(good), o); err == nil {
			t.Errorf("%s: options accepted", name)
		}
	}
}

// FuzzBaseRuntimeSpec: any input is refused or yields a spec that reads back strictly, has
// no rlimits and exactly one patchgate hook, and yields itself again.
func FuzzBaseRuntimeSpec(f *testing.F) {
	for _, in := range ctrOCISpecs(f) {
		f.Add(in)
	}
	f.Add([]byte(`{"ociVersion":"1.1.0","process":{"cwd":"/","rlimits":[{"type":"RLIMIT_NOFILE","hard":1,"soft":1}]},"linux":{}}`))
	f.Add([]byte(`{"ociVersion":"1.1.0","process":{},"linux":{},"hooks":{"createRuntime":[{"path":"/usr/local/bin/patchgate","args":["x","hook"]}]}}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		out, _, err := BaseRuntimeSpec(in, testBaseOpts)
		if err != nil {
			if !errors.Is(err, ErrBaseSpec) {
				t.Fatalf("error is not ErrBaseSpec: %v", err)
			}
			return
		}
		s, err := ParseSpec(out)
		if err != nil {
			t.Fatalf("output does not read back: %v\n%s", err, out)
		}
		n := 0
		for _, h := range s.Hooks.CreateRuntime {
			if IsPatchgateHook(h.Path, h.Args, testBaseOpts.Path) {
				n++
			}
		}
		if n != 1 || len(s.Process.Rlimits) != 0 || s.Linux.Seccomp != nil {
			t.Fatalf("%d patchgate hooks, rlimits %v, seccomp %v", n, s.Process.Rlimits, s.Linux.Seccomp)
		}
		again, _, err := BaseRuntimeSpec(out, testBaseOpts)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("output not stable: %v", err)
		}
	})
}
