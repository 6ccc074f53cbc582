package policy

import "testing"

// TestHostPathMountsSubPath: a bind source in the pod's own
// volume-subpaths directory is judged by the host paths that show it
// (Mount.Origins, which the hook reads from the host's mount table), not by
// its name.
func TestHostPathMountsSubPath(t *testing.T) {
	p := everyRuleEnforced(t)
	const (
		pod  = "/var/lib/kubelet/pods/uid-1"
		sub  = pod + "/volume-subpaths/v/app/0"
		sub2 = pod + "/volume-subpaths/v/app/1"
		pre  = `container "app" must not mount host path: `
	)
	bind := func(dst, src string, origins []string, tied int, opts ...string) func(w *Workload) {
		return func(w *Workload) {
			w.Pod.UID = "uid-1"
			w.Mounts = append(w.Mounts, Mount{Destination: dst, Source: src, Resolved: src, Type: "bind",
				Options: append([]string{"rbind"}, opts...), Origins: origins, OriginsTied: tied})
		}
	}
	for _, tc := range []struct {
		name   string
		f      func(w *Workload)
		detail string
	}{
		// hostPath / with subPath etc.
		{"hostPath / subPath etc", bind("/a", sub, []string{"/etc"}, 1, "rro"),
			pre + `/a (from ` + sub + `, shows /etc, contains protected /etc/patchgate) (mounts)`},
		// hostPath / with subPath ".": the whole root filesystem.
		{"hostPath / subPath .", bind("/a", sub, []string{"/"}, 1),
			pre + `/a (from ` + sub + `, shows /, contains protected /run/patchgate) (mounts)`},
		{"hostPath /srv subPath data", bind("/a", sub, []string{"/srv/data"}, 1),
			pre + `/a (from ` + sub + `, shows /srv/data) (mounts)`},
		// Another container's subPath bind of /etc shows /etc/ssh too:
		// a sibling bind in volume-subpaths is never the pod's own.
		{"nested subPath of a sibling's /etc", bind("/a", sub2, []string{"/etc/ssh", sub + "/ssh"}, 1),
			pre + `/a (from ` + sub2 + `, shows /etc/ssh) (mounts)`},
		{"a filesystem seen at two host paths", bind("/a", sub, []string{"/data/etc", "/srv/etc"}, 2),
			pre + `/a (from ` + sub + `, shows a filesystem seen at more than one host path: /data/etc, /srv/etc) (mounts)`},
		{"origins not known", bind("/a", sub, nil, 0),
			pre + `/a (from ` + sub + `, a subPath mount whose origin is not known (no mount table)) (mounts)`},
		{"origin cannot be traced", func(w *Workload) {
			w.Pod.UID = "uid-1"
			w.Mounts = append(w.Mounts, Mount{Destination: "/a", Source: sub, Type: "bind", Options: []string{"rbind"},
				ResolveError: "bind source is a mount whose origin cannot be judged: x"})
		}, pre + `/a (from ` + sub + `: cannot resolve: bind source is a mount whose origin cannot be judged: x) (mounts)`},
		// Controls: the pod's own volumes with a subPath.
		{"emptyDir subPath", bind("/a", sub, []string{pod + "/volumes/kubernetes.io~empty-dir/scratch/data"}, 1), ""},
		{"configMap subPath", bind("/a", sub, []string{pod + "/volumes/kubernetes.io~configmap/cfg/..2026_12_02/app.conf"}, 1), ""},
		// A PVC's subdirectory: seen through the CSI staging mount and the
		// pod's own publish mount, with the same root.
		{"PVC subPath", bind("/a", sub, []string{"/var/lib/kubelet/plugins/kubernetes.io/csi/x/globalmount/data", pod + "/volumes/kubernetes.io~csi/pvc-1/mount/data"}, 2), ""},
		// The pod's own volume mount (not a subPath) is judged by name,
		// whatever else shows it (a CSI staging mount).
		{"PVC volume", bind("/a", pod+"/volumes/kubernetes.io~csi/pvc-1/mount", []string{"/var/lib/kubelet/plugins/kubernetes.io/csi/x/globalmount"}, 1), ""},
		// A subPath of an inline iSCSI or NFS volume is that filesystem
		// (Backing: the subPath bind mount), whatever its origin's name.
		{"iSCSI volume subPath", func(w *Workload) {
			bind("/a", sub, []string{pod + "/volumes/kubernetes.io~iscsi/disk/data"}, 1)(w)
			w.Mounts[len(w.Mounts)-1].Backing = &MountBacking{KubeletDir: "/var/lib/kubelet", MountPoint: sub, FSType: "ext4", Source: "/dev/loop0", Root: "/data"}
		}, pre + `/a (from ` + sub + `, a subPath of a ext4 filesystem of /dev/loop0 (kubelet volume plugin kubernetes.io~iscsi), not the pod's own) (mounts)`},
		{"NFS volume subPath, no mount table", bind("/a", sub, []string{pod + "/volumes/kubernetes.io~nfs/share/data"}, 1),
			pre + `/a (from ` + sub + `, a subPath of a kubernetes.io~nfs volume whose backing mount is not known (no mount table)) (mounts)`},
		{"subPath of a plain directory in another plugin's dir", func(w *Workload) {
			bind("/a", sub, []string{pod + "/volumes/foo~bar/v/data"}, 1)(w)
			w.Mounts[len(w.Mounts)-1].Backing = &MountBacking{KubeletDir: "/var/lib/kubelet", MountPoint: sub, FSType: "ext4", Source: "/dev/vda", Root: pod + "/volumes/foo~bar/v/data", KubeletFS: true}
		}, ""},
		// Origins of a source outside the pod directory are not used.
		{"another pod's subPath", func(w *Workload) {
			bind("/a", "/var/lib/kubelet/pods/uid-2/volume-subpaths/v/app/0", []string{"/var/lib/kubelet/pods/uid-2/volumes/kubernetes.io~empty-dir/d"}, 1)(w)
		}, pre + `/a (from /var/lib/kubelet/pods/uid-2/volume-subpaths/v/app/0, protected) (mounts)`},
	} {
		v, bad := tweak(t, p, RuleHostPathMounts, tc.f)
		if (tc.detail != "") != bad || (bad && v.Detail != tc.detail) {
			t.Errorf("%s: violated=%v\n got  %s\n want %s", tc.name, bad, v.Detail, tc.detail)
		}
	}
}
