package policy

import (
	"encoding/json"
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestDeviceCgroupAllowed checks the device cgroup model against runc's
// emulator semantics (opencontainers/cgroups devices/devices_emulator.go).
func TestDeviceCgroupAllowed(t *testing.T) {
	for _, tc := range []struct {
		name     string
		rules    []specs.LinuxDeviceCgroup
		allowAll bool
		allowed  []DeviceRule
	}{
		{"none", nil, false, nil},
		{"deny all", []specs.LinuxDeviceCgroup{denyAll}, false, nil},
		{"allow all", []specs.LinuxDeviceCgroup{denyAll, allow("", nil, nil, "rwm")}, true, nil},
		{"allow all by -1", []specs.LinuxDeviceCgroup{allow("a", i64(-1), i64(-1), "rwm")}, true, nil},
		{"allow a with numbers", []specs.LinuxDeviceCgroup{allow("a", i64(1), i64(3), "r")}, true, nil},
		{"allow all then specific", []specs.LinuxDeviceCgroup{allow("a", nil, nil, "rwm"), allow("c", i64(1), i64(3), "rwm")}, true, nil},
		{"reset after allow all", []specs.LinuxDeviceCgroup{allow("a", nil, nil, "rwm"), denyAll, allow("c", i64(1), i64(3), "rwm")}, false,
			[]DeviceRule{{"c", 1, 3, "rwm"}}},
		{"deny a 1:3 is no reset", []specs.LinuxDeviceCgroup{allow("a", nil, nil, "rwm"), deny("a", i64(1), i64(3), "rwm")}, true, nil},
		{"deny a *:* m is no reset", []specs.LinuxDeviceCgroup{allow("a", nil, nil, "rwm"), deny("a", nil, nil, "m")}, true, nil},
		{"wildcards", []specs.LinuxDeviceCgroup{denyAll, allow("b", nil, nil, "rwm"), allow("c", i64(-1), i64(4), "r"), allow("c", i64(1), i64(-3), "w")}, false,
			[]DeviceRule{{"b", -1, -1, "rwm"}, {"c", -1, 4, "r"}, {"c", 1, -1, "w"}}},
		{"exact subtraction", []specs.LinuxDeviceCgroup{denyAll, allow("b", i64(8), i64(0), "rwm"), allow("b", i64(8), i64(0), "r"), deny("b", i64(8), i64(0), "rm")}, false,
			[]DeviceRule{{"b", 8, 0, "w"}}},
		{"wider deny subtracts nothing", []specs.LinuxDeviceCgroup{denyAll, allow("b", i64(8), i64(0), "rwm"), deny("b", nil, nil, "rwm"), deny("b", i64(8), nil, "rwm")}, false,
			[]DeviceRule{{"b", 8, 0, "rwm"}}},
		{"deny with -5 subtracts nothing", []specs.LinuxDeviceCgroup{denyAll, allow("b", i64(8), nil, "rwm"), deny("b", i64(8), i64(-5), "rwm")}, false,
			[]DeviceRule{{"b", 8, -1, "rwm"}}},
		{"unreadable deny subtracts nothing", []specs.LinuxDeviceCgroup{denyAll, allow("b", i64(8), i64(0), "rw"), deny("b", i64(8), i64(0), "rwx")}, false,
			[]DeviceRule{{"b", 8, 0, "rw"}}},
		{"unreadable deny is no reset", []specs.LinuxDeviceCgroup{allow("a", nil, nil, "rw"), deny("a", nil, nil, "")}, true, nil},
		{"empty access allows all access", []specs.LinuxDeviceCgroup{denyAll, allow("c", i64(1), i64(11), "")}, false,
			[]DeviceRule{{"c", 1, 11, "rwm"}}},
		{"fully denied again", []specs.LinuxDeviceCgroup{denyAll, allow("c", i64(1), i64(11), "rw"), deny("c", i64(1), i64(11), "rwm")}, false, nil},
		{"unknown type allows all", []specs.LinuxDeviceCgroup{denyAll, allow("u", i64(1), i64(3), "rwm")}, true, nil},
	} {
		all, got := DeviceCgroupAllowed(tc.rules)
		if all != tc.allowAll || !reflect.DeepEqual(got, tc.allowed) {
			t.Errorf("%s: got %v %+v, want %v %+v", tc.name, all, got, tc.allowAll, tc.allowed)
		}
	}
}

// TestFromSpecDevices: FromSpec fills the device fields from the spec, and
// the Workload keeps them through JSON (the hook sends it to the service).
func TestFromSpecDevices(t *testing.T) {
	s := runcSpec(t)
	withDevice("/dev/null2", "c", 1, 11)(s)
	withCgroup(allow("c", i64(1), i64(11), "rwm"), allow("b", nil, nil, "m"))(s)
	w, err := FromSpec(s, nil, FromSpecOptions{Source: "test"})
	if err != nil {
		t.Fatal(err)
	}
	wantDev := []Device{{Path: "/dev/null2", Type: "c", Major: 1, Minor: 11}}
	wantCg := []DeviceRule{{"c", 1, 11, "rwm"}, {"b", -1, -1, "m"}}
	if w.DevicesAllowAll || !reflect.DeepEqual(w.Devices, wantDev) || !reflect.DeepEqual(w.DeviceCgroup, wantCg) {
		t.Fatalf("got %v %+v %+v", w.DevicesAllowAll, w.Devices, w.DeviceCgroup)
	}
	data, err := json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	var back Workload
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.DeviceCgroup, wantCg) {
		t.Errorf("JSON lost the device cgroup: %s", data)
	}
	// An older sender's allow-all flag alone is still judged.
	var old Workload
	if err := json.Unmarshal([]byte(`{"devicesAllowAll": true}`), &old); err != nil || !old.DevicesAllowAll {
		t.Errorf("devicesAllowAll: %v %v", old.DevicesAllowAll, err)
	}
}
