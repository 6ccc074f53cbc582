package policy

import (
	"os"
	"testing"

	"github.com/patchgate/patchgate/internal/hostpath"
)

// The table internal/mountinfo/testdata/kubelet-podvolumes.mountinfo was
// captured on the test machine with a scratch kubelet directory (see
// internal/mountinfo/mountinfo_test.go).
const (
	pvKubelet = "/tmp/pgk-podvol/kubelet"
	pvUID     = "7b3e9c10-2f4a-4d6b-8e1c-5a6b7c8d9e0f"
	pvPod     = pvKubelet + "/pods/" + pvUID
)

func podVolumesPolicy(t *testing.T, extra string) *Policy {
	t.Helper()
	p, err := LoadBytes("p.yaml", []byte(header+"metadata: {name: p}\nspec: {defaultAction: enforce, rules: {hostPathMounts: {kubeletDir: "+pvKubelet+extra+"}}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// podVolumeBind returns a tweak that binds src (judged with the mount
// table) onto /v, the way FromSpec does in the hook.
func podVolumeBind(t *testing.T, table, src string, opts ...string) func(w *Workload) {
	m, err := hostpath.NewMounts([]byte(table))
	if err != nil {
		t.Fatal(err)
	}
	return func(w *Workload) {
		w.Pod.UID = pvUID
		mt := Mount{Destination: "/v", Source: src, Resolved: src, Type: "bind", Options: append([]string{"rbind"}, opts...)}
		if k := podKubeletDir(src, pvUID); k != "" {
			b, err := PodMountBackingFunc(fixedTable{m})(src, k)
			if err != nil {
				mt.ResolveError = err.Error()
			}
			mt.Backing = b
		}
		w.Mounts = append(w.Mounts, mt)
	}
}

type fixedTable struct{ m *hostpath.Mounts }

func (f fixedTable) Backing(p, k string) (hostpath.Backing, bool, error) {
	b, err := f.m.Backing(p, k)
	return b, err == nil, err
}

func TestHostPathMountsPodVolumes(t *testing.T) {
	data, err := os.ReadFile("../internal/mountinfo/testdata/kubelet-podvolumes.mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	captured := string(data)
	// Hand tables in the kernel's format for what the machine cannot mount
	// (an NFS server): the root filesystem and one mount.
	const root = "26 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
	nfs := root + "90 26 0:52 / " + pvPod + "/volumes/kubernetes.io~nfs/share rw,relatime shared:60 - nfs4 10.0.0.9:/export rw,vers=4.2,rsize=1048576,wsize=1048576,namlen=255,hard,proto=tcp,timeo=600,retrans=2,sec=sys,clientaddr=10.0.0.5,local_lock=none,addr=10.0.0.9\n"
	// The kubelet's iSCSI plugin: the disk at its global mount, bound
	// into the pod.
	iscsiGlobal := root + "88 26 8:16 / " + pvKubelet + "/plugins/kubernetes.io/iscsi/iface-default/10.0.0.9:3260-iqn.2026-12.io.example:disk-lun-0 rw,relatime - ext4 /dev/sdb rw\n" +
		"89 26 8:16 / " + pvPod + "/volumes/kubernetes.io~iscsi/disk rw,relatime - ext4 /dev/sdb rw\n"
	// A bind of part of a filesystem mounted nowhere else.
	hidden := root + "89 26 8:16 /secret " + pvPod + "/volumes/kubernetes.io~fc/disk rw,relatime - ext4 /dev/sdb rw\n"
	// A plain-emptyDir-like bind of the pod's own directory.
	ownBind := root + "89 26 254:0 " + pvPod + "/volumes/kubernetes.io~empty-dir/a " + pvPod + "/volumes/foo~bar/b rw,relatime - ext4 /dev/vda rw\n"

	const pre = `container "app" must not mount host path: /v (from `
	def := podVolumesPolicy(t, "")
	noCSI := podVolumesPolicy(t, ", kubeletVolumePlugins: [kubernetes.io~empty-dir, kubernetes.io~configmap]")
	for _, tc := range []struct {
		name   string
		p      *Policy
		f      func(w *Workload)
		detail string
	}{
		// The finding: an ext4 image on a loop device at an iSCSI volume.
		{"iscsi ext4 loop", def, podVolumeBind(t, captured, pvPod+"/volumes/kubernetes.io~iscsi/disk"),
			pre + pvPod + `/volumes/kubernetes.io~iscsi/disk, a ext4 filesystem of /dev/loop0 mounted in the pod's directory at ` + pvPod + `/volumes/kubernetes.io~iscsi/disk (kubelet volume plugin kubernetes.io~iscsi), not the pod's own) (mounts)`},
		// A directory inside it is the same filesystem (no mount point).
		{"iscsi subdirectory", def, podVolumeBind(t, captured, pvPod+"/volumes/kubernetes.io~iscsi/disk/lost+found"),
			pre + pvPod + `/volumes/kubernetes.io~iscsi/disk/lost+found, a ext4 filesystem of /dev/loop0 mounted in the pod's directory at ` + pvPod + `/volumes/kubernetes.io~iscsi/disk (kubelet volume plugin kubernetes.io~iscsi), not the pod's own) (mounts)`},
		{"iscsi through kubelet's global mount", def, podVolumeBind(t, iscsiGlobal, pvPod+"/volumes/kubernetes.io~iscsi/disk"),
			pre + pvPod + `/volumes/kubernetes.io~iscsi/disk, a ext4 filesystem of /dev/sdb, shows ` + pvKubelet + `/plugins/kubernetes.io/iscsi/iface-default/10.0.0.9:3260-iqn.2026-12.io.example:disk-lun-0) (mounts)`},
		{"nfs", def, podVolumeBind(t, nfs, pvPod+"/volumes/kubernetes.io~nfs/share", "rro"),
			pre + pvPod + `/volumes/kubernetes.io~nfs/share, a nfs4 filesystem of 10.0.0.9:/export mounted in the pod's directory at ` + pvPod + `/volumes/kubernetes.io~nfs/share (kubelet volume plugin kubernetes.io~nfs), not the pod's own) (mounts)`},
		// A bind of /etc placed in the pod's directory is /etc.
		{"bind of /etc", def, podVolumeBind(t, captured, pvPod+"/volumes/kubernetes.io~hostpathlike/etc"),
			pre + pvPod + `/volumes/kubernetes.io~hostpathlike/etc, a ext4 filesystem of /dev/vda, shows /etc, contains protected /etc/patchgate) (mounts)`},
		{"untraceable", def, podVolumeBind(t, hidden, pvPod+"/volumes/kubernetes.io~fc/disk"),
			pre + pvPod + `/volumes/kubernetes.io~fc/disk: cannot resolve: bind source is a mount whose origin cannot be judged: ` + pvPod + `/volumes/kubernetes.io~fc/disk is a mount of "/secret" on 8:16, which is mounted nowhere else) (mounts)`},
		{"no mount table", def, func(w *Workload) {
			w.Pod.UID = pvUID
			w.Mounts = append(w.Mounts, Mount{Destination: "/v", Source: pvPod + "/volumes/kubernetes.io~rbd/x", Type: "bind", Options: []string{"rbind"}})
		}, pre + pvPod + `/volumes/kubernetes.io~rbd/x, a kubernetes.io~rbd volume whose backing mount is not known (no mount table)) (mounts)`},
		// CSI: trusted by default, judged by what backs it without.
		{"csi, default", def, podVolumeBind(t, captured, pvPod+"/volumes/kubernetes.io~csi/pv-data/mount"), ""},
		{"csi, not listed", noCSI, podVolumeBind(t, captured, pvPod+"/volumes/kubernetes.io~csi/pv-data/mount"),
			pre + pvPod + `/volumes/kubernetes.io~csi/pv-data/mount, a ext4 filesystem of /dev/loop1, shows ` + pvKubelet + `/plugins/kubernetes.io/csi/pv/pv-data/globalmount) (mounts)`},
		// Controls.
		{"configMap tmpfs", noCSI, podVolumeBind(t, captured, pvPod+"/volumes/kubernetes.io~configmap/cfg"), ""},
		{"emptyDir medium Memory, not listed", noCSI, podVolumeBind(t, captured, pvPod+"/volumes/kubernetes.io~empty-dir/mem"), ""},
		{"plain emptyDir, not listed", podVolumesPolicy(t, ", kubeletVolumePlugins: []"), podVolumeBind(t, captured, pvPod+"/volumes/kubernetes.io~empty-dir/scratch"), ""},
		{"etc-hosts", podVolumesPolicy(t, ", kubeletVolumePlugins: []"), podVolumeBind(t, captured, pvPod+"/etc-hosts-dir"), ""},
		{"bind of the pod's own directory", def, podVolumeBind(t, ownBind, pvPod+"/volumes/foo~bar/b"), ""},
	} {
		v, bad := tweak(t, tc.p, RuleHostPathMounts, tc.f)
		if (tc.detail != "") != bad || (bad && v.Detail != tc.detail) {
			t.Errorf("%s: violated=%v\n got  %s\n want %s", tc.name, bad, v.Detail, tc.detail)
		}
	}
}

func TestHostPathMountsKubeletVolumePluginsParameter(t *testing.T) {
	for _, body := range []string{"[a/b]", "[..]", `[""]`} {
		if _, err := LoadBytes("p.yaml", []byte(header+"metadata: {name: p}\nspec: {rules: {hostPathMounts: {kubeletVolumePlugins: "+body+"}}}\n")); err == nil {
			t.Errorf("%s: loaded", body)
		}
	}
}
