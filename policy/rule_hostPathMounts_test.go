package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/patchgate/patchgate/internal/hostpath"
)

func TestHostPathMounts(t *testing.T) {
	testRuleOnFixtures(t, RuleHostPathMounts, []ruleFixtureCase{
		{"baseline", ""},
		{"hostPathMounts-pass-runtime", ""},
		{"hostPathMounts-fail", `container "app" must not mount host paths: /host/etc (from /etc, contains protected /etc/patchgate), /var/run/docker.sock (from /var/run/docker.sock, protected) (mounts)`},
		{"hostPathMounts-fail-control-plane", `container "app" must not mount host paths: /ctrd (from /var/lib/containerd, protected), /host-usr (from /usr, contains protected /usr/local/bin/patchgate), /logs (from /var/log/app), /nri (from /var/run/nri, protected), /pg (from /run/patchgate, protected) (mounts)`},
		{"hostPathMounts-fail-filesystems", `container "app" must not mount host paths: /cg (cgroup, not read-only), /hostsys (sysfs outside /sys), /mnt (filesystem type "ext4" from /dev/sda1 cannot be judged), /ov (overlay lowerdir /usr, contains protected /usr/local/bin/patchgate; upperdir /etc, contains protected /etc/patchgate; workdir /var/tmp/w) (mounts)`},
		{"procMount-fail-second-proc", ""},
	})
	testRuleDeferred(t, RuleHostPathMounts, FieldMounts)

	p := everyRuleEnforced(t)
	bind := func(dst, src string, opts ...string) func(w *Workload) {
		return func(w *Workload) {
			w.Mounts = append(w.Mounts, Mount{Destination: dst, Source: src, Type: "bind", Options: append([]string{"rbind"}, opts...)})
		}
	}
	fsm := func(dst, typ, src string, opts ...string) func(w *Workload) {
		return func(w *Workload) {
			w.Mounts = append(w.Mounts, Mount{Destination: dst, Source: src, Type: typ, Options: opts})
		}
	}
	const pre = `container "app" must not mount host path: `
	for _, tc := range []struct {
		name   string
		f      func(w *Workload)
		detail string
	}{
		// The review's bypasses: none of these is allowed by default.
		{"patchgate's run dir", bind("/pg", "/run/patchgate"), pre + `/pg (from /run/patchgate, protected) (mounts)`},
		{"patchgate's decision socket via /var/run", bind("/s", "/var/run/patchgate/decision.sock"), pre + `/s (from /var/run/patchgate/decision.sock, protected) (mounts)`},
		{"NRI socket dir", bind("/nri", "/var/run/nri"), pre + `/nri (from /var/run/nri, protected) (mounts)`},
		{"containerd state", bind("/c", "/var/lib/containerd"), pre + `/c (from /var/lib/containerd, protected) (mounts)`},
		{"containerd socket", bind("/c.sock", "/run/containerd/containerd.sock"), pre + `/c.sock (from /run/containerd/containerd.sock, protected) (mounts)`},
		{"/usr", bind("/u", "/usr", "ro"), pre + `/u (from /usr, contains protected /usr/local/bin/patchgate) (mounts)`},
		{"/lib/modules", bind("/m", "/lib/modules", "ro"), pre + `/m (from /lib/modules) (mounts)`},
		{"cron spool", bind("/cron", "/var/spool/cron"), pre + `/cron (from /var/spool/cron) (mounts)`},
		{"root", bind("/host", "/"), pre + `/host (from /, contains protected /run/patchgate) (mounts)`},
		{"/var", bind("/v", "/var"), pre + `/v (from /var, contains protected /var/lib/patchgate) (mounts)`},
		{"/run", bind("/r", "/run"), pre + `/r (from /run, contains protected /run/patchgate) (mounts)`},
		{"unrelated path", bind("/d", "/srv/data"), pre + `/d (from /srv/data) (mounts)`},
		{"unclean", bind("/c", "/etc/ssl/../ssl/certs"), pre + `/c (from /etc/ssl/../ssl/certs) (mounts)`},
		{"bind by option only", fsm("/k", "none", "/var/lib/kubelet", "bind"), pre + `/k (from /var/lib/kubelet, protected) (mounts)`},
		{"another pod's kubelet volume", func(w *Workload) {
			w.Pod.UID = "aaaa"
			bind("/s", "/var/lib/kubelet/pods/bbbb/volumes/kubernetes.io~secret/token")(w)
		}, pre + `/s (from /var/lib/kubelet/pods/bbbb/volumes/kubernetes.io~secret/token, protected) (mounts)`},
		// A hostPath volume of another pod's sandbox directory, onto the
		// destination the runtime binds its own file to (found by the k8se2e
		// attack: another pod's /dev/shm read and written).
		{"another sandbox's /dev/shm", func(w *Workload) {
			w.Pod.SandboxID = fixtureSandboxID
			bind("/dev/shm", "/run/containerd/io.containerd.grpc.v1.cri/sandboxes/bbbb/shm")(w)
		}, pre + `/dev/shm (from /run/containerd/io.containerd.grpc.v1.cri/sandboxes/bbbb/shm, protected) (mounts)`},
		{"another sandbox's resolv.conf", func(w *Workload) {
			w.Pod.SandboxID = fixtureSandboxID
			bind("/etc/resolv.conf", "/var/lib/containerd/io.containerd.grpc.v1.cri/sandboxes/bbbb/resolv.conf")(w)
		}, pre + `/etc/resolv.conf (from /var/lib/containerd/io.containerd.grpc.v1.cri/sandboxes/bbbb/resolv.conf, protected) (mounts)`},
		{"runtime dir onto a non-runtime destination", bind("/state", "/run/containerd/io.containerd.grpc.v1.cri/sandboxes/x/shm"), pre + `/state (from /run/containerd/io.containerd.grpc.v1.cri/sandboxes/x/shm, protected) (mounts)`},
		{"runtime destination, not the runtime's file", bind("/etc/hosts", "/var/lib/containers/storage/overlay"), pre + `/etc/hosts (from /var/lib/containers/storage/overlay, protected) (mounts)`},
		{"an image layer's etc/hosts in the runtime's storage", bind("/etc/hosts", "/var/lib/containers/storage/overlay/0a1b/diff/etc/hosts"), pre + `/etc/hosts (from /var/lib/containers/storage/overlay/0a1b/diff/etc/hosts, protected) (mounts)`},
		{"runtime destination from outside the runtime dirs", bind("/etc/hosts", "/srv/x/hosts"), pre + `/etc/hosts (from /srv/x/hosts) (mounts)`},
		{"relative source, unknown bundle", bind("/hostetc", "../../../../../../../etc", "rw"), pre + `/hostetc (from ../../../../../../../etc: relative to an unknown bundle directory) (mounts)`},
		{"relative source inside an unknown bundle", bind("/d", "data/sub"), pre + `/d (from data/sub: relative to an unknown bundle directory) (mounts)`},
		{"symlink resolved to /etc", func(w *Workload) {
			w.Mounts = append(w.Mounts, Mount{Destination: "/x", Source: "/var/log/app/evil", Resolved: "/etc", Type: "bind", Options: []string{"rbind", "ro"}})
		}, pre + `/x (from /var/log/app/evil, resolves to /etc, contains protected /etc/patchgate) (mounts)`},
		{"source that cannot be resolved", func(w *Workload) {
			w.Mounts = append(w.Mounts, Mount{Destination: "/x", Source: "/srv/loop", ResolveError: "/srv/loop: too many levels of symbolic links", Type: "bind", Options: []string{"rbind"}})
		}, pre + `/x (from /srv/loop: cannot resolve: /srv/loop: too many levels of symbolic links) (mounts)`},
		// Filesystems that are not bind mounts.
		{"writable sysfs", func(w *Workload) {
			for i := range w.Mounts {
				if w.Mounts[i].Type == "sysfs" {
					w.Mounts[i].Options = append(w.Mounts[i].Options, "rw")
				}
			}
		}, pre + `/sys (sysfs, not read-only) (mounts)`},
		{"second sysfs", fsm("/hostsys", "sysfs", "sysfs", "ro"), pre + `/hostsys (sysfs outside /sys) (mounts)`},
		{"writable cgroup", fsm("/sys/fs/cgroup", "cgroup", "cgroup", "nosuid", "rw"), pre + `/sys/fs/cgroup (cgroup, not read-only) (mounts)`},
		{"ext4 of a disk", fsm("/mnt", "ext4", "/dev/sda1"), pre + `/mnt (filesystem type "ext4" from /dev/sda1 cannot be judged) (mounts)`},
		{"nfs", fsm("/n", "nfs", "10.0.0.1:/export", "addr=10.0.0.1"), pre + `/n (filesystem type "nfs" from 10.0.0.1:/export cannot be judged) (mounts)`},
		{"no type", fsm("/n", "", "/srv"), pre + `/n (filesystem type "" from /srv cannot be judged) (mounts)`},
		{"overlay onto a host directory", fsm("/o", "overlay", "overlay", "lowerdir=/srv/l1:/srv/l2", "upperdir=/etc", "workdir=/srv/w"),
			pre + `/o (overlay lowerdir /srv/l1; lowerdir /srv/l2; upperdir /etc, contains protected /etc/patchgate; workdir /srv/w) (mounts)`},
		{"overlay with escapes", fsm("/o", "overlay", "overlay", `lowerdir=/srv/a\:b`), pre + `/o (overlay lowerdir /srv/a\:b cannot be judged (escapes)) (mounts)`},
		{"overlay with a relative dir", fsm("/o", "overlay", "overlay", "upperdir=u"), pre + `/o (overlay upperdir u is relative) (mounts)`},
		// Controls.
		{"proc is procMount's", fsm("/proc", "proc", "proc"), ""},
		{"tmpfs anywhere", fsm("/scratch", "tmpfs", "tmpfs", "size=64m"), ""},
		{"read-only cgroup2", fsm("/sys/fs/cgroup", "cgroup2", "cgroup", "ro"), ""},
		{"overlay with no directories", fsm("/o", "overlay", "overlay", "volatile"), ""},
		{"similar prefix of a protected path", bind("/d", "/run/patchgatex"), pre + `/d (from /run/patchgatex) (mounts)`},
	} {
		v, bad := tweak(t, p, RuleHostPathMounts, tc.f)
		if (tc.detail != "") != bad || (bad && v.Detail != tc.detail) {
			t.Errorf("%s: violated=%v\n got  %s\n want %s", tc.name, bad, v.Detail, tc.detail)
		}
	}
}

// allowed: an allow-list with read-only entries; read-only means what runc
// makes of the options.
func TestHostPathMountsAllowed(t *testing.T) {
	p, err := LoadBytes("allowed.yaml", []byte(header+`metadata: {name: allowed}
spec:
  rules:
    hostPathMounts:
      allowed:
        - {path: /srv/data}
        - {path: /var/log/app, readOnly: true}
        - {path: /etc/ssl/certs, readOnly: true}
      denied: [/srv/data/secret]
`))
	if err != nil {
		t.Fatal(err)
	}
	const pre = `container "app" must not mount host path: `
	for _, tc := range []struct {
		src, typ string
		opts     []string
		detail   string
	}{
		{"/srv/data/pub", "bind", []string{"rbind", "rw"}, ""},
		{"/srv/data/x/../y", "bind", []string{"rbind", "rw"}, ""},
		{"/srv/database", "bind", []string{"rbind", "rw"}, pre + `/m (from /srv/database) (mounts)`},
		{"/srv", "bind", []string{"rbind", "ro"}, pre + `/m (from /srv, contains denied /srv/data/secret) (mounts)`},
		{"/srv/other", "bind", []string{"rbind", "ro"}, pre + `/m (from /srv/other) (mounts)`},
		{"/srv/data/secret/k", "bind", []string{"rbind", "rro"}, pre + `/m (from /srv/data/secret/k, denied) (mounts)`},
		{"/srv/data", "bind", []string{"rbind", "rro"}, pre + `/m (from /srv/data, contains denied /srv/data/secret) (mounts)`},
		{"/var/log/app", "bind", []string{"bind", "ro"}, ""},
		{"/var/log/app/x", "bind", []string{"rbind", "rro"}, ""},
		{"/var/log/app", "rbind", []string{"rro"}, ""},
		{"/var/log/app", "bind", []string{"rbind", "ro"}, pre + `/m (from /var/log/app, not read-only: rbind with ro leaves submounts writable, use rro) (mounts)`},
		{"/var/log/app", "rbind", []string{"ro"}, pre + `/m (from /var/log/app, not read-only: rbind with ro leaves submounts writable, use rro) (mounts)`},
		{"/var/log/app", "bind", []string{"bind", "ro", "rw"}, pre + `/m (from /var/log/app, not read-only) (mounts)`},
		{"/var/log/app", "bind", []string{"rbind", "rro", "rrw", "ro"}, pre + `/m (from /var/log/app, not read-only: rbind with ro leaves submounts writable, use rro) (mounts)`},
		{"/var/log/app", "bind", []string{"bind", "rw", "rro"}, ""},
		{"/var/log/app", "bind", []string{"rbind"}, pre + `/m (from /var/log/app, not read-only) (mounts)`},
		// overlay: lower read, upper and work written.
		{"overlay", "overlay", []string{"lowerdir=/etc/ssl/certs:/srv/data/l", "upperdir=/srv/data/u", "workdir=/srv/data/w"}, ""},
		{"overlay", "overlay", []string{"lowerdir=/srv/data/l", "upperdir=/var/log/app/u", "workdir=/srv/data/w"}, pre + `/m (overlay upperdir /var/log/app/u, allowed read-only only) (mounts)`},
	} {
		v, bad := tweak(t, p, RuleHostPathMounts, func(w *Workload) {
			w.Mounts = append(w.Mounts, Mount{Destination: "/m", Source: tc.src, Type: tc.typ, Options: tc.opts})
		})
		if (tc.detail != "") != bad || (bad && v.Detail != tc.detail) {
			t.Errorf("%s %s %v: violated=%v\n got  %s\n want %s", tc.typ, tc.src, tc.opts, bad, v.Detail, tc.detail)
		}
	}
}

// Allowing a directory never allows what it contains that is protected.
func TestHostPathMountsAllowedNeverProtected(t *testing.T) {
	p, err := LoadBytes("var.yaml", []byte(header+"metadata: {name: var}\nspec: {rules: {hostPathMounts: {allowed: [{path: /var/tmp/..}]}}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	const pre = `container "app" must not mount host path: `
	for _, tc := range []struct {
		src, typ string
		opts     []string
		detail   string
	}{
		// /var is allowed (spelled /var/tmp/..).
		{"/var/tmp", "bind", []string{"rbind"}, ""},
		{"/var", "bind", []string{"rbind", "rro"}, pre + `/m (from /var, contains protected /var/lib/patchgate) (mounts)`},
		{"/var/run/patchgate", "bind", []string{"rbind", "rro"}, pre + `/m (from /var/run/patchgate, protected) (mounts)`},
		{"/var/lib/kubelet/pods/x/volumes", "bind", []string{"rbind", "rro"}, pre + `/m (from /var/lib/kubelet/pods/x/volumes, protected) (mounts)`},
		{"/var/run/nri/nri.sock", "bind", []string{"bind"}, pre + `/m (from /var/run/nri/nri.sock, protected) (mounts)`},
	} {
		v, bad := tweak(t, p, RuleHostPathMounts, func(w *Workload) {
			w.Mounts = append(w.Mounts, Mount{Destination: "/m", Source: tc.src, Type: tc.typ, Options: tc.opts})
		})
		if (tc.detail != "") != bad || (bad && v.Detail != tc.detail) {
			t.Errorf("%s %s %v: violated=%v\n got  %s\n want %s", tc.typ, tc.src, tc.opts, bad, v.Detail, tc.detail)
		}
	}
}

func TestRuntimeLayout(t *testing.T) {
	for dir, want := range map[string]bool{
		"4f0c2d1e": true,
		"io.containerd.grpc.v1.cri/sandboxes/4f0c2d1e": true,
		"overlay-containers/471d/userdata":             true,
		"storage/vfs-containers/471d/userdata":         true,
		"..":                                           false,
		"overlay/0a1b/diff/etc":                        false,
		"io.containerd.grpc.v1.cri/sandboxes/a/b":      false,
		"-containers/471d/userdata":                    false,
		"overlay-containers//userdata":                 false,
		"overlay-containers/471d/userdata/x":           false,
	} {
		if got := runtimeLayout(dir); got != want {
			t.Errorf("runtimeLayout(%q) = %v, want %v", dir, got, want)
		}
	}
}

// The parameters that could widen the rule are checked at load: a
// protected path cannot be allowed, and allowReadOnly: true (which used to
// admit read-only mounts of denied paths) is an error, not a silent change.
func TestHostPathMountsParameters(t *testing.T) {
	for _, tc := range []struct{ body, err string }{
		{"{allowed: [{path: /run/patchgate/x}]}", `allowed[0].path: "/run/patchgate/x" lies in /run/patchgate, which no policy can allow`},
		{"{allowed: [{path: /var/run/nri, readOnly: true}]}", `allowed[0].path: "/var/run/nri" lies in /run/nri`},
		{"{allowed: [{path: relative}]}", `allowed[0].path: "relative" must be an absolute path`},
		{"{allowed: [{path: /srv, readonly: true}]}", `unknown key`},
		{"{allowReadOnly: true}", `allowReadOnly: true is no longer supported`},
		{"{allowReadOnly: false, denied: [/etc]}", ""},
		{"{allowed: [{path: /var}]}", ""},
	} {
		_, err := LoadBytes("p.yaml", []byte(header+"metadata: {name: p}\nspec: {rules: {hostPathMounts: "+tc.body+"}}\n"))
		if (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: %v, want %q", tc.body, err, tc.err)
		}
	}
}

// A relative bind source is resolved against the bundle FromSpec is given
// and judged as the host path it names (REVIEW A1).
func TestHostPathMountsRelativeSourceWithBundle(t *testing.T) {
	p := everyRuleEnforced(t)
	for _, tc := range []struct {
		src, bundle string
		detail      string
	}{
		{"../../../../../../../etc", "/run/containerd/io.containerd.runtime.v2.task/k8s.io/abc",
			`container "c" must not mount host path: /hostetc (from /etc, contains protected /etc/patchgate) (mounts)`},
		{"../../../../etc", "/b/u/n/d", `container "c" must not mount host path: /hostetc (from /etc, contains protected /etc/patchgate) (mounts)`},
		{"data", "/b/u/n/d", `container "c" must not mount host path: /hostetc (from /b/u/n/d/data) (mounts)`},
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
		if got == nil || got.Detail != tc.detail {
			t.Errorf("%s in %s: violation %+v, want %q", tc.src, tc.bundle, got, tc.detail)
		}
	}
}

// FromSpec with a resolver judges the path a symlink leads to: a link to
// /etc inside an allowed directory is refused, as /etc itself is; the
// kernel's ".." after a link is followed, not cleaned away.
func TestHostPathMountsSymlinks(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"etc", "var/log/app/real", "run/patchgate", "bundle"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{
		"var/log/app/evil": "/etc",
		"var/log/app/sock": "../../../run/patchgate",
		"var/log/app/loop": "loop",
		"var/log/app/up":   "real/../..",
		"bundle/vol":       "/var/log/app/evil",
	} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	p, err := LoadBytes("a.yaml", []byte(header+"metadata: {name: a}\nspec: {rules: {hostPathMounts: {allowed: [{path: /var/log/app}, {path: /srv}]}}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	const pre = `container "c" must not mount host path: `
	for _, tc := range []struct{ typ, src, opt, detail string }{
		{"bind", "/var/log/app/evil", "", pre + `/m (from /var/log/app/evil, resolves to /etc, contains protected /etc/patchgate) (mounts)`},
		{"bind", "/var/log/app/sock", "", pre + `/m (from /var/log/app/sock, resolves to /run/patchgate, protected) (mounts)`},
		{"bind", "/var/log/app/loop", "", pre + `/m (from /var/log/app/loop: cannot resolve: /var/log/app/loop: too many levels of symbolic links) (mounts)`},
		{"bind", "/var/log/app/evil/..", "", pre + `/m (from /var/log/app/evil/.., resolves to /, contains protected /run/patchgate) (mounts)`},
		{"bind", "/var/log/app/up", "", pre + `/m (from /var/log/app/up, resolves to /var/log, contains protected /var/log/patchgate) (mounts)`},
		{"bind", "vol", "", pre + `/m (from /bundle/vol, resolves to /etc, contains protected /etc/patchgate) (mounts)`},
		{"overlay", "overlay", "upperdir=/var/log/app/evil", pre + `/m (overlay upperdir /etc, contains protected /etc/patchgate) (mounts)`},
		// Controls.
		{"bind", "/var/log/app/real", "", ""},
		{"bind", "/srv/not-there-yet", "", ""},
		{"overlay", "overlay", "upperdir=/var/log/app/real", ""},
	} {
		opts := []string{"rbind"}
		if tc.typ == "overlay" {
			opts = []string{tc.opt}
		}
		spec := &specs.Spec{
			Process: &specs.Process{},
			Linux:   &specs.Linux{},
			Mounts:  []specs.Mount{{Destination: "/m", Type: tc.typ, Source: tc.src, Options: opts}},
		}
		w, err := FromSpec(spec, nil, FromSpecOptions{Bundle: "/bundle", Container: ContainerIdentity{Name: "c"}, ResolvePath: hostpath.Resolver(root)})
		if err != nil {
			t.Fatal(err)
		}
		v, bad, _ := outcome(t, p, w, RuleHostPathMounts)
		if (tc.detail != "") != bad || (bad && v.Detail != tc.detail) {
			t.Errorf("%s %s: violated=%v\n got  %s\n want %s", tc.typ, tc.src, bad, v.Detail, tc.detail)
		}
	}
}
