package policy

import (
	"os"
	"path/filepath"
	"testing"
)

// kernelPolicy loads a policy with the given spec.kernel body (YAML flow
// mapping) and kernel action enforce.
func kernelPolicy(t *testing.T, kernel string) *Policy {
	t.Helper()
	p, err := LoadBytes("k.yaml", []byte(header+"metadata: {name: k}\nspec:\n  kernel: "+kernel+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func kernelFixture(t *testing.T, name string) *KernelState {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "kernel", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	k, err := ParseKernelState(data)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// kernelOutcome returns the violation of rule id, if any, and whether the
// kernel is behind.
func kernelOutcome(t *testing.T, p *Policy, k *KernelState, id string) (string, bool, bool) {
	t.Helper()
	vs, behind := EvaluateKernel(p, k, testNow)
	for _, v := range vs {
		if v.Rule == id {
			return v.Detail, true, behind
		}
	}
	return "", false, behind
}
