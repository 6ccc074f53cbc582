package policy

import (
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestRunAsRoot(t *testing.T) {
	testRuleOnFixtures(t, RuleRunAsRoot, []ruleFixtureCase{
		{"baseline", ""},
		{"runAsRoot-pass-userns", ""},
		{"runAsRoot-fail", `container "app" must not run as uid 0 (process.user.uid)`},
		{"runAsRoot-fail-userns-identity", `container "app" must not run as uid 0 mapped to host uid 0 (process.user.uid, linux.uidMappings)`},
	})
	testRuleDeferred(t, RuleRunAsRoot, FieldUser)
}

// TestRunAsRootUserNamespaceMappings: in a user namespace, root on the host
// is any uid or gid mapping that reaches host id 0, not only the process's
// uid; mappings that cannot be seen are judged as root.
func TestRunAsRootUserNamespaceMappings(t *testing.T) {
	p := everyRuleEnforced(t)
	good := []IDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	for _, tc := range []struct {
		name string
		user User
		want string // "" passes
	}{
		{"uid 1 mapped to host 0 (the review's bypass)", User{UID: 1, GID: 1, UserNamespace: true,
			UIDMappings: []IDMapping{{ContainerID: 0, HostID: 100000, Size: 1}, {ContainerID: 1, HostID: 0, Size: 1}, {ContainerID: 2, HostID: 100002, Size: 65534}},
			GIDMappings: good},
			`container "app" must not run as uid 1 mapped to host uid 0 (process.user.uid, linux.uidMappings)`},
		{"uid 1000, but container uid 0 is host root", User{UID: 1000, GID: 1000, UserNamespace: true,
			UIDMappings: []IDMapping{{ContainerID: 0, HostID: 0, Size: 1}, {ContainerID: 1, HostID: 100001, Size: 65535}},
			GIDMappings: good},
			`container "app" must not map container uid 0 to host uid 0 (linux.uidMappings)`},
		{"uid 0 on 200000, uid 1 on host 0", User{UID: 0, UserNamespace: true,
			UIDMappings: []IDMapping{{ContainerID: 1, HostID: 0, Size: 10}, {ContainerID: 0, HostID: 200000, Size: 1}},
			GIDMappings: good},
			`container "app" must not map container uid 1 to host uid 0 (linux.uidMappings)`},
		{"gid mapped to host gid 0", User{UID: 1000, GID: 1000, UserNamespace: true, UIDMappings: good,
			GIDMappings: []IDMapping{{ContainerID: 0, HostID: 100000, Size: 5}, {ContainerID: 5, HostID: 0, Size: 1}}},
			`container "app" must not map container gid 5 to host gid 0 (linux.gidMappings)`},
		{"uid and gid", User{UID: 1000, UserNamespace: true,
			UIDMappings: []IDMapping{{ContainerID: 0, HostID: 0, Size: 65536}}, GIDMappings: []IDMapping{{ContainerID: 0, HostID: 0, Size: 65536}}},
			`container "app" must not map container uid 0 to host uid 0 (linux.uidMappings) or container gid 0 to host gid 0 (linux.gidMappings)`},
		{"range that wraps past 2^32-1", User{UID: 0, UserNamespace: true,
			UIDMappings: []IDMapping{{ContainerID: 0, HostID: 4294967295, Size: 4294967295}}, GIDMappings: good},
			`container "app" must not map container uid 1 to host uid 0 (linux.uidMappings)`},
		{"range that wraps, process elsewhere", User{UID: 0, UserNamespace: true,
			UIDMappings: []IDMapping{{ContainerID: 0, HostID: 100000, Size: 1}, {ContainerID: 10, HostID: 4294967290, Size: 10}}, GIDMappings: good},
			`container "app" must not map container uid 16 to host uid 0 (linux.uidMappings)`},
		{"no mappings visible", User{UID: 1000, UserNamespace: true},
			`container "app" runs as uid 1000 in a user namespace whose mappings are not visible (linux.uidMappings, linux.gidMappings): judged as root`},
		{"gid mappings not visible", User{UID: 1000, UserNamespace: true, UIDMappings: good},
			`container "app" runs as uid 1000 in a user namespace whose mappings are not visible (linux.gidMappings): judged as root`},
		{"process uid not mapped", User{UID: 70000, UserNamespace: true, UIDMappings: good, GIDMappings: good},
			`container "app" runs as uid 70000 in a user namespace whose uid mappings do not map it (linux.uidMappings)`},
		// Controls.
		{"root in a proper user namespace", User{UID: 0, UserNamespace: true, UIDMappings: good, GIDMappings: good}, ""},
		{"uid 1000, several ranges, none on 0", User{UID: 1000, GID: 1000, UserNamespace: true,
			UIDMappings: []IDMapping{{ContainerID: 0, HostID: 100000, Size: 1000}, {ContainerID: 1000, HostID: 1000, Size: 1}},
			GIDMappings: []IDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}, {ContainerID: 70000, HostID: 0, Size: 0}}}, ""},
		{"gid 0 without a user namespace (Pod Security does not judge the group)", User{UID: 1000, GID: 0}, ""},
	} {
		v, bad := tweak(t, p, RuleRunAsRoot, func(w *Workload) { w.User = tc.user })
		switch {
		case tc.want == "" && bad:
			t.Errorf("%s: violated: %s", tc.name, v.Detail)
		case tc.want != "" && v.Detail != tc.want:
			t.Errorf("%s:\n got  %q\n want %q", tc.name, v.Detail, tc.want)
		}
	}
}

// TestRunAsRootUserNamespaceJoinedByPath: a user namespace joined by path
// keeps its own mappings; the spec's are not believed. The host's own
// ({"path": "/proc/1/ns/user"}) with uid 0 "mapped" to 100000 is host root.
func TestRunAsRootUserNamespaceJoinedByPath(t *testing.T) {
	p := everyRuleEnforced(t)
	good := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	spec := func(path string) *specs.Spec {
		s := loadFixtureFile(t, filepath.Join(specsDir, "runAsRoot-pass-userns", "config.json"))
		for i := range s.Linux.Namespaces {
			if s.Linux.Namespaces[i].Type == specs.UserNamespace {
				s.Linux.Namespaces[i].Path = path
			}
		}
		s.Linux.UIDMappings, s.Linux.GIDMappings = good, good
		return s
	}
	sandbox := func(maps []specs.LinuxIDMapping) *specs.Spec {
		s := loadFixtureFile(t, filepath.Join(specsDir, "runAsRoot-pass-userns", "config.json"))
		s.Linux.UIDMappings, s.Linux.GIDMappings = maps, maps
		return s
	}
	hostUserNS := func(typ, path string) (bool, error) { return typ == "user" && path == "/proc/1/ns/user", nil }
	for _, tc := range []struct {
		name    string
		spec    *specs.Spec
		sandbox *specs.Spec
		resolve func(typ, path string) (bool, error)
		want    string
	}{
		{"the host's user namespace, no resolver", spec("/proc/1/ns/user"), nil, nil,
			`container "app" runs as uid 0 in a user namespace whose mappings are not visible (linux.uidMappings, linux.gidMappings): judged as root`},
		{"the host's user namespace, resolved", spec("/proc/1/ns/user"), nil, hostUserNS,
			`container "app" must not run as uid 0 (process.user.uid)`},
		{"the sandbox's user namespace (containerd CRI)", spec("/proc/4242/ns/user"), sandbox(good), hostUserNS, ""},
		{"the sandbox's user namespace maps 0 to 0", spec("/proc/4242/ns/user"), sandbox([]specs.LinuxIDMapping{{ContainerID: 0, HostID: 0, Size: 65536}}), hostUserNS,
			`container "app" must not run as uid 0 mapped to host uid 0 (process.user.uid, linux.uidMappings)`},
	} {
		w, err := FromSpec(tc.spec, tc.sandbox, FromSpecOptions{Container: ContainerIdentity{Name: "app"}, HostNamespace: tc.resolve})
		if err != nil {
			t.Fatal(err)
		}
		v, bad, _ := outcome(t, p, w, RuleRunAsRoot)
		switch {
		case tc.want == "" && bad:
			t.Errorf("%s: violated: %s", tc.name, v.Detail)
		case tc.want != "" && v.Detail != tc.want:
			t.Errorf("%s:\n got  %q\n want %q", tc.name, v.Detail, tc.want)
		}
	}
}
