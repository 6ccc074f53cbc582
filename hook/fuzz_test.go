package hook

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patchgate/patchgate/policy"
)

// FuzzState feeds arbitrary bytes as the runtime state. Whatever is
// accepted must have a clean absolute bundle path and a plain id, and
// classifying and reading that bundle must never panic or escape: the only
// bundle that may yield a spec is the one the fuzzer's base directory holds.
func FuzzState(f *testing.F) {
	for _, p := range []string{
		"testdata/runc/state.json",
		"testdata/podman/default/state.json",
		"testdata/podman/privileged-pod/state.json",
		"testdata/containerd/state.json",
	} {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"ociVersion":"1","id":"c1","status":"creating","bundle":"/run/b/../../etc"}`))
	f.Add([]byte(`{"ociVersion":"1","id":"c1","status":"creating","bundle":"/b","bundle":"/etc"}`))
	f.Add([]byte(`{"ociVersion":"1","id":"c1","status":"creating","bundle":"BASE/link"}`))
	f.Add([]byte(`{"ociVersion":"1","id":"c1","status":"creating","bundle":"BASE/good"}`))

	base := f.TempDir()
	spec, err := os.ReadFile("testdata/runc/config.json")
	if err != nil {
		f.Fatal(err)
	}
	good := filepath.Join(base, "good")
	if err := os.Mkdir(good, 0o700); err != nil {
		f.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(good, "config.json"), spec, 0o600); err != nil {
		f.Fatal(err)
	}
	if err := os.Symlink(good, filepath.Join(base, "link")); err != nil {
		f.Fatal(err)
	}
	evil := filepath.Join(base, "evil")
	if err := os.Mkdir(evil, 0o700); err != nil {
		f.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(good, "config.json"), filepath.Join(evil, "config.json")); err != nil {
		f.Fatal(err)
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		data = []byte(strings.ReplaceAll(string(data), "BASE", base))
		st, err := ParseState(data)
		if err != nil {
			return
		}
		if err := CheckBundlePath(st.Bundle); err != nil {
			t.Fatalf("accepted bundle %q: %v", st.Bundle, err)
		}
		if strings.Contains(st.ID, "/") || st.ID == ".." {
			t.Fatalf("accepted id %q", st.ID)
		}
		_, _ = ClassifyBundle(st.Bundle, st.ID)
		_ = IdentityFrom(st.ID, st.Annotations)
		if strings.HasPrefix(st.Bundle, base) {
			_, _, err := ReadSpec(st.Bundle)
			if err == nil && st.Bundle != good {
				t.Fatalf("read a spec through %q, only %q holds a real one", st.Bundle, good)
			}
		}
	})
}

// FuzzSpec feeds arbitrary config.json bytes.
func FuzzSpec(f *testing.F) {
	for _, p := range []string{"testdata/runc/config.json", "testdata/podman/default/config.json"} {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"ociVersion":"1.0.2","process":{"user":{"uid":1000,"UID":0}},"linux":{}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		spec, err := ParseSpec(data)
		if err != nil {
			return
		}
		if spec.Process == nil || spec.Linux == nil {
			t.Fatal("accepted a spec without process or linux")
		}
		if err := policy.CheckStrictJSON(data); err != nil {
			t.Fatalf("accepted a spec with ambiguous keys: %v", err)
		}
	})
}
