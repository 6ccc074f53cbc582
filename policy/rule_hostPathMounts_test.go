package policy

import "testing"

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
