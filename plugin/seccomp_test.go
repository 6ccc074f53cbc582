package plugin

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/contrib/seccomp"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/nri/pkg/api"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/patchgate/patchgate/hook"
	"github.com/patchgate/patchgate/policy"
)

// TestSeccompPolicyJudgedByWhatItBlocks: NRI's seccompPolicy is the spec's
// linux.seccomp (api.FromOCILinuxSeccomp is how the runtime fills it). The
// NRI view reduces it exactly as policy.FromSpec reduces the spec, and the
// seccomp rule judges what the filter blocks: containerd's real RuntimeDefault
// profile passes, an allow-by-default filter with one dummy rule does not.
func TestSeccompPolicyJudgedByWhatItBlocks(t *testing.T) {
	ctx := namespaces.WithNamespace(context.Background(), "k8s.io")
	spec, err := oci.GenerateSpec(ctx, nil, &containers.Container{ID: "c"}, seccomp.WithDefaultProfile())
	if err != nil {
		t.Fatal(err)
	}
	fromSpec, err := policy.FromSpec(spec, nil, policy.FromSpecOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p := policy.Default()
	k := &policy.KernelState{Release: "6.1.0-18-amd64", ObservedAt: time.Now()}
	for _, tc := range []struct {
		name   string
		sc     *specs.LinuxSeccomp
		detail string
	}{
		{"containerd RuntimeDefault", spec.Linux.Seccomp, ""},
		{"allow with a dummy rule", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"getpid"}, Action: specs.ActErrno}}}, `must block system calls "add_key", "bpf", `},
		{"errno with bpf allowed", &specs.LinuxSeccomp{DefaultAction: specs.ActErrno,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"bpf", "read"}, Action: specs.ActAllow}}}, `must block system call "bpf" (linux.seccomp: defaultAction SCMP_ACT_ERRNO, a rule lets it through)`},
	} {
		pod, ctr := loadCapture(t, "default-kubelet")
		ctr.Linux.SeccompPolicy = api.FromOCILinuxSeccomp(tc.sc)
		w, err := ContainerWorkload(pod, ctr, hook.IdentityFromContainerd)
		if err != nil {
			t.Fatal(err)
		}
		if tc.detail == "" && !reflect.DeepEqual(w.Seccomp, fromSpec.Seccomp) {
			t.Errorf("%s: NRI summary %+v, spec summary %+v", tc.name, w.Seccomp, fromSpec.Seccomp)
		}
		var got string
		for _, v := range policy.Evaluate(p, w, k, time.Now()).Violations {
			if v.Rule == policy.RuleSeccomp {
				got = v.Detail
			}
		}
		if (tc.detail == "") != (got == "") || !strings.Contains(got, tc.detail) {
			t.Errorf("%s: seccomp violation %q, want one containing %q", tc.name, got, tc.detail)
		}
	}
}
