//go:build e2e

package hooke2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The hostDevices bypasses of issue 10, run with real runc: a host device
// is refused whatever the container calls it, a device cgroup rule wider
// than the default devices is refused the way runc reads it, and a block
// device mounted as a filesystem is refused. runc creates the device nodes,
// sets up the mounts (the ext4 one really mounts a loop device) and writes
// the device cgroup before it runs the createRuntime hook, so each refusal
// comes after runc did what the spec asked. Each has a control that runs.

// addDevice adds a device node to linux.devices.
func addDevice(path, typ string, major, minor int) func(map[string]any) {
	return func(s map[string]any) {
		lx := s["linux"].(map[string]any)
		list, _ := lx["devices"].([]any)
		lx["devices"] = append(list, map[string]any{"path": path, "type": typ, "major": major, "minor": minor, "fileMode": 0o600, "uid": 0, "gid": 0})
	}
}

// setDeviceCgroup replaces linux.resources.devices: deny all, then rules.
func setDeviceCgroup(rules ...map[string]any) func(map[string]any) {
	return func(s map[string]any) {
		lx := s["linux"].(map[string]any)
		res, _ := lx["resources"].(map[string]any)
		if res == nil {
			res = map[string]any{}
			lx["resources"] = res
		}
		list := []any{map[string]any{"allow": false, "access": "rwm"}}
		for _, r := range rules {
			list = append(list, r)
		}
		res["devices"] = list
	}
}

// addMount appends a mount.
func addMount(typ, source, dest string, opts ...string) func(map[string]any) {
	return func(s map[string]any) {
		s["mounts"] = append(s["mounts"].([]any), map[string]any{"type": typ, "source": source, "destination": dest, "options": opts})
	}
}

func tweaks(fs ...func(map[string]any)) func(map[string]any) {
	return func(s map[string]any) {
		for _, f := range fs {
			f(s)
		}
	}
}

// loopExt4 makes a small ext4 image, attaches it to a free loop device and
// returns the device's path; the device is detached at cleanup.
func loopExt4(t *testing.T) string {
	t.Helper()
	_, err := os.Stat("/dev/loop-control")
	need(t, err == nil, "/dev/loop-control (loop devices)")
	needTools(t, "losetup", "mkfs.ext4")
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, make([]byte, 4<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := run(context.Background(), "mkfs.ext4", "-q", "-F", img); err != nil {
		t.Fatalf("mkfs.ext4: %v: %s", err, out)
	}
	out, err := run(context.Background(), "losetup", "--find", "--show", img)
	if err != nil {
		t.Fatalf("losetup: %v: %s", err, out)
	}
	dev := strings.TrimSpace(out)
	if !strings.HasPrefix(dev, "/dev/loop") {
		t.Fatalf("losetup printed %q", out)
	}
	t.Cleanup(func() {
		if out, err := run(context.Background(), "losetup", "--detach", dev); err != nil {
			t.Errorf("losetup --detach %s: %v: %s", dev, err, out)
		}
	})
	return dev
}

func TestRuncHostDevices(t *testing.T) {
	needTools(t, "runc")
	loop := loopExt4(t)
	for _, mode := range []string{"service-down", "service-up"} {
		t.Run(mode, func(t *testing.T) {
			e := newEnv(t)
			if mode == "service-up" {
				e.startService()
				e.useHookBin = true
			}
			rfs := rootfs(t)
			user := setUser(1000)
			cases := []runcCase{
				// Controls: runc's own devices under other names, the
				// default cgroup rules, a device-less mount.
				{name: "compliant", tweak: user},
				{name: "zero named /dev/zero2", tweak: tweaks(user, addDevice("/dev/zero2", "c", 1, 5),
					setDeviceCgroup(map[string]any{"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm"}))},
				{name: "mknod-only wildcard", tweak: tweaks(user, setDeviceCgroup(map[string]any{"allow": true, "type": "b", "access": "m"}))},
				{name: "tmpfs at /mnt", tweak: tweaks(user, addMount("tmpfs", "tmpfs", "/mnt", "nosuid", "nodev"))},

				{name: "kmsg named /dev/tty0", tweak: tweaks(user, addDevice("/dev/tty0", "c", 1, 11)),
					want: []string{"[hostDevices]", `host device "/dev/tty0" c 1:11 (linux.devices)`}},
				{name: "kmsg named /dev/null2", tweak: tweaks(user, addDevice("/dev/null2", "c", 1, 11)),
					want: []string{"[hostDevices]", `host device "/dev/null2" c 1:11 (linux.devices)`}},
				{name: "sda named /dev/tty", tweak: tweaks(user, addDevice("/dev/tty", "b", 8, 0)),
					want: []string{"[hostDevices]", `host device "/dev/tty" b 8:0 (linux.devices)`}},
				{name: "cgroup a -1:-1 rwm", tweak: tweaks(user, setDeviceCgroup(map[string]any{"allow": true, "type": "a", "major": -1, "minor": -1, "access": "rwm"})),
					want: []string{"[hostDevices]", "a device cgroup that allows every device (linux.resources.devices)"}},
				{name: "cgroup b *:* rwm", tweak: tweaks(user, setDeviceCgroup(map[string]any{"allow": true, "type": "b", "access": "rwm"})),
					want: []string{"[hostDevices]", "a device cgroup that allows b *:* rwm (linux.resources.devices)"}},
				{name: "ext4 of " + loop, tweak: tweaks(user, addMount("ext4", loop, "/mnt", "nosuid", "nodev")),
					want: []string{"[hostDevices]", fmt.Sprintf(`block device %q mounted at "/mnt" as "ext4" (mounts)`, loop)}},
			}
			audited := map[string]string{}
			for i, tc := range cases {
				id := fmt.Sprintf("pg-dev-%d-%d", i, time.Now().UnixNano())
				out, err := e.runcRun(t, e.runcBundle(t, rfs, tc.tweak), id)
				checkRefusal(t, tc.name, out, err, tc.want)
				if tc.want != nil {
					audited[id] = tc.name
				}
			}
			e.finish(mode, len(audited))
			e.expectAudited(audited)
		})
	}
}
