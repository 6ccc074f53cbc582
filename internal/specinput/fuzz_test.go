package specinput

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/patchgate/patchgate/policy"
)

// FuzzParse: any input either decodes into an Input with a spec that
// FromSpec can judge, or fails with ErrInvalid; never a panic, and never a
// container without a spec. Combining it with itself as the pod never
// panics either.
func FuzzParse(f *testing.F) {
	for _, pattern := range []string{"../../examples/tests/specs/*.json", "../../policy/testdata/specs/*/*.json", "testdata/*.json"} {
		files, err := filepath.Glob(pattern)
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Add([]byte(`{"status":{},"info":{}}`))
	f.Add([]byte(`{"status":{"id":"a","metadata":{"name":"n"}},"info":{"sandboxID":"b","runtimeSpec":{"process":{},"linux":{}}}}`))
	f.Add([]byte(`{"status":{"id":"a","metadata":{"name":"n","namespace":"x"}},"info":{"runtimeSpec":{"process":{},"linux":{}}}}`))
	f.Add([]byte(`{"process":{},"linux":{}} {}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := Parse(data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			return
		}
		if in.Spec == nil || in.Spec.Process == nil || in.Spec.Linux == nil {
			t.Fatalf("input without a judgeable spec: %+v", in)
		}
		switch in.Kind {
		case KindSpec:
		case KindContainer:
			if in.ID == "" || in.SandboxID == "" || in.Name == "" {
				t.Fatalf("container without id, sandbox or name: %+v", in)
			}
		case KindPod:
			if in.ID == "" || in.Name == "" || (in.Namespace == "" && in.UID == "") {
				t.Fatalf("pod without id, name or namespace: %+v", in)
			}
		default:
			t.Fatalf("kind %q", in.Kind)
		}
		w, _, err := Workload(in, nil, "none", policy.FromSpecOptions{Source: "fuzz"})
		if in.Kind == KindPod {
			if err == nil {
				t.Fatal("a pod judged as a container")
			}
			return
		}
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Workload error does not wrap ErrInvalid: %v", err)
			}
			return
		}
		if w.Seen == 0 {
			t.Fatal("a workload of which nothing was seen")
		}
		if _, _, err := Workload(in, in, "none", policy.FromSpecOptions{Source: "fuzz"}); err != nil && !errors.Is(err, ErrInvalid) {
			t.Fatalf("Workload with itself as the pod: %v", err)
		}
	})
}
