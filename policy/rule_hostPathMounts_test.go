package policy

import (
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestHostPathMounts(t *testing.T) {
	testRuleOnFixtures(t, RuleHostPathMounts, []ruleFixtureCase{
		{"baseline", ""},
		{"hostPathMounts-pass-runtime", ""},
		{"hostPathMounts-fail", `container "app" must not bind-mount denied host paths: /host/etc (from /etc), /var/run/docker.sock (from /var/run/docker.sock) (mounts)`},
	})
	testRuleDeferred(t, RuleHostPathMounts, FieldMounts)

	p := everyRuleEnforced(t)
	bind := func(dst, src string, opts ...string) func(w *Workload) {
		return func(w *Workload) {
			w.Mounts = append(w.Mounts, Mount{Destination: dst, Source: src, Type: "bind", Options: append([]string{"rbind"}, opts...)})
		}
	}
	for _, tc := range []struct {
		name   string
		f      func(w *Workload)
		detail string
	}{
		{"root", bind("/host", "/"), `container "app" must not bind-mount denied host path: /host (from /) (mounts)`},
		{"parent of a denied path", bind("/v", "/var/lib"), `container "app" must not bind-mount denied host path: /v (from /var/lib) (mounts)`},
		{"inside a denied path", bind("/c", "/etc/ssl/../ssl/certs"), `container "app" must not bind-mount denied host path: /c (from /etc/ssl/../ssl/certs) (mounts)`},
		{"/run is /var/run", bind("/sock", "/run/docker.sock"), `container "app" must not bind-mount denied host path: /sock (from /run/docker.sock) (mounts)`},
		{"bind by option only", func(w *Workload) {
			w.Mounts = append(w.Mounts, Mount{Destination: "/k", Source: "/var/lib/kubelet", Type: "none", Options: []string{"bind"}})
		}, `container "app" must not bind-mount denied host path: /k (from /var/lib/kubelet) (mounts)`},
		{"another pod's kubelet volume", func(w *Workload) {
			w.Pod.UID = "aaaa"
			bind("/s", "/var/lib/kubelet/pods/bbbb/volumes/kubernetes.io~secret/token")(w)
		}, `container "app" must not bind-mount denied host path: /s (from /var/lib/kubelet/pods/bbbb/volumes/kubernetes.io~secret/token) (mounts)`},
		{"runtime dir onto a non-runtime destination", bind("/state", "/run/containerd/io.containerd.grpc.v1.cri/sandboxes/x/shm"), `container "app" must not bind-mount denied host path: /state (from /run/containerd/io.containerd.grpc.v1.cri/sandboxes/x/shm) (mounts)`},
		{"read-only still denied by default", bind("/e", "/etc", "ro"), `container "app" must not bind-mount denied host path: /e (from /etc) (mounts)`},
		{"relative source leaving an unknown bundle", bind("/hostetc", "../../../../../../../etc", "rw"), `container "app" must not bind-mount denied host path: /hostetc (from ../../../../../../../etc: relative to an unknown bundle directory and leaves it) (mounts)`},
		{"relative source that is just ..", bind("/up", ".."), `container "app" must not bind-mount denied host path: /up (from ..: relative to an unknown bundle directory and leaves it) (mounts)`},
		{"relative source climbing back in", bind("/d", "data/../../x"), `container "app" must not bind-mount denied host path: /d (from data/../../x: relative to an unknown bundle directory and leaves it) (mounts)`},
		{"relative source inside the bundle", bind("/d", "data/sub"), ""},
		{"unrelated path", bind("/d", "/srv/data"), ""},
		{"similar prefix", bind("/d", "/etcetera"), ""},
		{"proc filesystem is not a bind", func(w *Workload) {
			w.Mounts = append(w.Mounts, Mount{Destination: "/proc", Source: "proc", Type: "proc"})
		}, ""},
	} {
		v, bad := tweak(t, p, RuleHostPathMounts, tc.f)
		if (tc.detail != "") != bad || (bad && v.Detail != tc.detail) {
			t.Errorf("%s: violated=%v %q, want %q", tc.name, bad, v.Detail, tc.detail)
		}
	}
	ro, err := LoadBytes("ro.yaml", []byte(header+"metadata: {name: ro}\nspec: {rules: {hostPathMounts: {allowReadOnly: true}}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, bad := tweak(t, ro, RuleHostPathMounts, bind("/e", "/etc", "ro")); bad {
		t.Error("allowReadOnly: a read-only bind of /etc was denied")
	}
	if _, bad := tweak(t, ro, RuleHostPathMounts, bind("/e", "/etc", "rw")); !bad {
		t.Error("allowReadOnly: a read-write bind of /etc was allowed")
	}
}

// A relative bind source is resolved against the bundle FromSpec is given
// and judged as the host path it names (REVIEW A1).
func TestHostPathMountsRelativeSourceWithBundle(t *testing.T) {
	p := everyRuleEnforced(t)
	for _, tc := range []struct {
		src, bundle string
		bad         bool
		detail      string
	}{
		{"../../../../../../../etc", "/run/containerd/io.containerd.runtime.v2.task/k8s.io/abc", true,
			`container "c" must not bind-mount denied host path: /hostetc (from /etc) (mounts)`},
		{"../../../../etc", "/b/u/n/d", true, `container "c" must not bind-mount denied host path: /hostetc (from /etc) (mounts)`},
		{"data", "/b/u/n/d", false, ""},
		{"../../srv", "/b/u/n/d", false, ""},
	} {
		spec := &specs.Spec{
			Process: &specs.Process{},
			Linux:   &specs.Linux{Seccomp: &specs.LinuxSeccomp{DefaultAction: specs.ActErrno}},
			Mounts:  []specs.Mount{{Destination: "/hostetc", Type: "bind", Source: tc.src, Options: []string{"rbind", "rw"}}},
		}
		w, err := FromSpec(spec, nil, FromSpecOptions{Bundle: tc.bundle, Container: ContainerIdentity{Name: "c"}})
		if err != nil {
			t.Fatal(err)
		}
		d := Evaluate(p, w, nil, time.Now())
		var got *Violation
		for i := range d.Violations {
			if d.Violations[i].Rule == RuleHostPathMounts {
				got = &d.Violations[i]
			}
		}
		if (got != nil) != tc.bad || (got != nil && got.Detail != tc.detail) {
			t.Errorf("%s in %s: violation %+v, want bad=%v %q", tc.src, tc.bundle, got, tc.bad, tc.detail)
		}
	}
}
