package policy

import "testing"

func TestHostDevices(t *testing.T) {
	testRuleOnFixtures(t, RuleHostDevices, []ruleFixtureCase{
		{"baseline", ""},
		{"hostDevices-fail", `container "app" must not have host device "/dev/kmsg" (linux.devices)`},
		{"hostDevices-fail-allowall", `container "app" must not have a device cgroup that allows every device (linux.resources.devices)`},
	})
	testRuleDeferred(t, RuleHostDevices, FieldDevices)
	p := everyRuleEnforced(t)
	if _, bad := tweak(t, p, RuleHostDevices, func(w *Workload) {
		w.Devices = []Device{{Path: "/dev/null", Type: "c", Major: 1, Minor: 3}, {Path: "/dev/pts/0", Type: "c", Major: 136}}
	}); bad {
		t.Error("runc's default devices judged as host devices")
	}
	v, bad := tweak(t, p, RuleHostDevices, func(w *Workload) {
		for _, d := range []string{"/dev/sda", "/dev/sdb", "/dev/sdc", "/dev/sdd", "/dev/sde", "/dev/sdf", "/dev/sdg", "/dev/sdh", "/dev/sdi", "/dev/mem"} {
			w.Devices = append(w.Devices, Device{Path: d, Type: "b"})
		}
		w.DevicesAllowAll = true
	})
	want := `container "app" must not have 10 host devices, first "/dev/mem", "/dev/sda", "/dev/sdb", "/dev/sdc", "/dev/sdd", "/dev/sde", "/dev/sdf", "/dev/sdg" (linux.devices) or a device cgroup that allows every device (linux.resources.devices)`
	if !bad || v.Detail != want {
		t.Errorf("many devices:\n got  %s\n want %s", v.Detail, want)
	}
	gpu, err := LoadBytes("gpu.yaml", []byte(header+"metadata: {name: gpu}\nspec: {rules: {hostDevices: {allowed: [\"/dev/nvidia*\"]}}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, bad := tweak(t, gpu, RuleHostDevices, func(w *Workload) { w.Devices = []Device{{Path: "/dev/nvidia0"}, {Path: "/dev/nvidiactl"}} }); bad {
		t.Error("allowed glob /dev/nvidia* not honoured")
	}
}
