package policy

import "testing"

// TestHostPathMountsCRIImageVolume: containerd's CRI image volume
// (KEP-4639) under its protected state directory is admitted only
// read-only and in exactly containerd's layout.
func TestHostPathMountsCRIImageVolume(t *testing.T) {
	p := everyRuleEnforced(t)
	const (
		sid = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
		dig = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
		vol = "/run/containerd/io.containerd.grpc.v1.cri/image-volumes/" + sid + "/" + dig
		pre = `container "app" must not mount host path: /img (from `
	)
	bind := func(src string, origins []string, opts ...string) func(w *Workload) {
		return func(w *Workload) {
			w.Mounts = append(w.Mounts, Mount{Destination: "/img", Source: src, Resolved: src, Type: "bind", Options: opts, Origins: origins})
		}
	}
	for _, tc := range []struct {
		name   string
		f      func(w *Workload)
		detail string
	}{
		{"rbind rro", bind(vol, nil, "rbind", "rprivate", "rro"), ""},
		{"bind ro", bind(vol, nil, "bind", "ro"), ""},
		{"var/run spelling", bind("/var/run/containerd/io.containerd.grpc.v1.cri/image-volumes/"+sid+"/"+dig, nil, "rbind", "rro"), ""},
		{"rbind ro only", bind(vol, nil, "rbind", "rprivate", "ro"), pre + vol + `, protected) (mounts)`},
		{"read-write", bind(vol, nil, "rbind", "rw"), pre + vol + `, protected) (mounts)`},
		{"the sandbox's directory", bind("/run/containerd/io.containerd.grpc.v1.cri/image-volumes/"+sid, nil, "rbind", "rro"),
			pre + `/run/containerd/io.containerd.grpc.v1.cri/image-volumes/` + sid + `, protected) (mounts)`},
		{"inside a volume", bind(vol+"/etc", nil, "rbind", "rro"), pre + vol + `/etc, protected) (mounts)`},
		{"not a digest", bind("/run/containerd/io.containerd.grpc.v1.cri/image-volumes/"+sid+"/..", nil, "rbind", "rro"),
			pre + `/run/containerd/io.containerd.grpc.v1.cri/image-volumes/` + sid + `/.., protected) (mounts)`},
		{"upper-case digest", bind("/run/containerd/io.containerd.grpc.v1.cri/image-volumes/"+sid+"/2CF24DBA5FB0A30E26E83B2AC5B9E29E1B161E5C1FA7425E73043362938B9824", nil, "rbind", "rro"),
			pre + `/run/containerd/io.containerd.grpc.v1.cri/image-volumes/` + sid + `/2CF24DBA5FB0A30E26E83B2AC5B9E29E1B161E5C1FA7425E73043362938B9824, protected) (mounts)`},
		{"another CRI directory", bind("/run/containerd/io.containerd.grpc.v1.cri/containers/"+sid+"/"+dig, nil, "rbind", "rro"),
			pre + `/run/containerd/io.containerd.grpc.v1.cri/containers/` + sid + `/` + dig + `, protected) (mounts)`},
		// Another pod's image volume, named in a hostPath volume.
		{"the container's own sandbox", func(w *Workload) {
			w.Pod.SandboxID = sid
			bind(vol, nil, "rbind", "rro")(w)
		}, ""},
		{"another sandbox's volume", func(w *Workload) {
			w.Pod.SandboxID = "0123"
			bind(vol, nil, "rbind", "rro")(w)
		}, pre + vol + `, protected) (mounts)`},
		// A mount there that shows another host path is not containerd's.
		{"shows /etc", bind(vol, []string{"/etc"}, "rbind", "rro"), pre + vol + `, protected) (mounts)`},
	} {
		v, bad := tweak(t, p, RuleHostPathMounts, tc.f)
		if (tc.detail != "") != bad || (bad && v.Detail != tc.detail) {
			t.Errorf("%s: violated=%v\n got  %s\n want %s", tc.name, bad, v.Detail, tc.detail)
		}
	}
	// A runtimeDirs entry naming containerd's state directory.
	q, err := LoadBytes("p.yaml", []byte(header+"metadata: {name: p}\nspec: {defaultAction: enforce, rules: {hostPathMounts: {runtimeDirs: [/srv/ctrd-state]}}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, bad := tweak(t, q, RuleHostPathMounts, bind("/srv/ctrd-state/io.containerd.grpc.v1.cri/image-volumes/"+sid+"/"+dig, nil, "rbind", "rro")); bad {
		t.Error("state dir entry: refused")
	}
	if _, bad := tweak(t, q, RuleHostPathMounts, bind(vol, nil, "rbind", "rro")); !bad {
		t.Error("state dir entry: /run/containerd admitted")
	}
}
