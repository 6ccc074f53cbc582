package policy

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Rule hostDevices
//
// Why: a host device (a disk, /dev/mem, /dev/kmsg, a GPU) gives direct
// access to hardware or kernel memory below every isolation the kernel
// offers. What the kernel gives a container is decided by the device's type
// and numbers, never by its name: /dev/kmsg renamed /dev/null2 is still
// /dev/kmsg. A device cgroup rule that allows more than a few devices lets
// the container mknod its way to any of them (it has CAP_MKNOD by default),
// and a block device mounted as a filesystem reaches the host's disk
// without any device node at all.
//
// Reads: linux.devices by type and major:minor (Workload.Devices); what
// linux.resources.devices finally allows, applied in order the way runc
// applies it (Workload.DevicesAllowAll, DeviceCgroup, from
// DeviceCgroupAllowed); the mounts that are not bind mounts
// (Workload.Mounts). It needs FieldDevices only: the mounts it reads are
// the ones that are not bind mounts, whose type and source every front end
// that sees the devices lists in full (the NRI plugin leaves FieldMounts
// out when a bind source needs the host to resolve it, which this rule
// does not read; CDI devices hide devices and mounts together).
//
// Allowed: device nodes and device cgroup rules within the runtime's default
// devices (defaultDevNums: c 1:3, 1:5, 1:7, 1:8, 1:9, 5:0, 5:2, 136:*) and
// the numbers in rules.hostDevices.allowed; named pipes; cgroup rules that
// allow only mknod (runc allows that for every device anyway); mounts of
// device-less filesystems whose source is not under /dev.
//
// Parameters: allowed.
var hostDevicesRule = containerRule{
	id:     RuleHostDevices,
	reason: "host devices",
	needs:  FieldDevices,
	check:  checkHostDevices,
	fix:    fixHostDevices,
}

// maxListed caps the items listed in one part of the detail: a privileged
// container has a hundred host devices, and the privileged rule names it.
const maxListed = 8

func checkHostDevices(c *compiled, w *Workload) (string, bool) {
	// The common case (nothing to report) allocates nothing.
	badDev, badRule, badMount := 0, 0, 0
	for i := range w.Devices {
		if !c.deviceNodeAllowed(&w.Devices[i]) {
			badDev++
		}
	}
	for i := range w.DeviceCgroup {
		if !c.cgroupRuleAllowed(&w.DeviceCgroup[i]) {
			badRule++
		}
	}
	for i := range w.Mounts {
		if deviceMount(&w.Mounts[i]) {
			badMount++
		}
	}
	if badDev == 0 && badRule == 0 && badMount == 0 && !w.DevicesAllowAll {
		return "", false
	}

	var parts []string
	if badDev > 0 {
		// Sorted and de-duplicated before formatting: only the listed
		// ones are formatted (a privileged container has a hundred).
		devs := make([]*Device, 0, badDev)
		for i := range w.Devices {
			if d := &w.Devices[i]; !c.deviceNodeAllowed(d) {
				devs = append(devs, d)
			}
		}
		slices.SortFunc(devs, compareDevices)
		devs = slices.CompactFunc(devs, func(a, b *Device) bool { return compareDevices(a, b) == 0 })
		items := make([]string, 0, min(len(devs), maxListed))
		for _, d := range devs[:min(len(devs), maxListed)] {
			items = append(items, strconv.Quote(d.Path)+" "+deviceNumber(d))
		}
		if len(devs) > maxListed {
			parts = append(parts, fmt.Sprintf("%d host devices, first %s (linux.devices)", len(devs), strings.Join(items, ", ")))
		} else {
			parts = append(parts, listPart("host device", "host devices", "host devices", items, "linux.devices"))
		}
	}
	if w.DevicesAllowAll {
		parts = append(parts, "a device cgroup that allows every device (linux.resources.devices)")
	} else if badRule > 0 {
		var items []string
		for i := range w.DeviceCgroup {
			if r := &w.DeviceCgroup[i]; !c.cgroupRuleAllowed(r) {
				items = append(items, cgroupRuleString(r))
			}
		}
		parts = append(parts, listPart("a device cgroup that allows", "a device cgroup that allows", "device cgroup rules wider than the allowed devices", items, "linux.resources.devices"))
	}
	if badMount > 0 {
		var blk, devtmpfs []string
		for i := range w.Mounts {
			if m := &w.Mounts[i]; deviceMount(m) {
				if m.Type == "devtmpfs" {
					devtmpfs = append(devtmpfs, fmt.Sprintf("%q", m.Destination))
				} else {
					blk = append(blk, fmt.Sprintf("%q mounted at %q as %q", m.Source, m.Destination, m.Type))
				}
			}
		}
		if len(blk) > 0 {
			parts = append(parts, listPart("block device", "block devices", "block devices", blk, "mounts"))
		}
		if len(devtmpfs) > 0 {
			parts = append(parts, listPart("the host's devtmpfs mounted at", "the host's devtmpfs mounted at", "devtmpfs mounts", devtmpfs, "mounts"))
		}
	}
	return fmt.Sprintf("%s must not have %s", subject(w), strings.Join(parts, " or ")), true
}

// listPart formats one sorted, capped list of the detail: "<one or many>
// items (field)", or past maxListed "<n> <counted>, first items (field)".
func listPart(one, many, counted string, items []string, field string) string {
	slices.Sort(items)
	items = slices.Compact(items)
	n := len(items)
	if n > maxListed {
		return fmt.Sprintf("%d %s, first %s (%s)", n, counted, strings.Join(items[:maxListed], ", "), field)
	}
	return fmt.Sprintf("%s %s (%s)", plural(n, one, many), strings.Join(items, ", "), field)
}

// deviceNodeAllowed judges one linux.devices entry by type and number.
func (c *compiled) deviceNodeAllowed(d *Device) bool {
	typ, fifo, ok := devTypeByte(d.Type)
	if fifo {
		return true
	}
	return ok && d.Major >= 0 && d.Minor >= 0 && c.deviceAllowed(typ, d.Major, d.Minor)
}

// cgroupRuleAllowed judges one allow exception of the device cgroup: one
// that grants read or write must be within the allowed devices.
func (c *compiled) cgroupRuleAllowed(r *DeviceRule) bool {
	bits, ok := parseAccess(r.Access)
	if ok && bits&(accRead|accWrite) == 0 && bits != 0 {
		return true
	}
	typ, fifo, known := devTypeByte(r.Type)
	return known && !fifo && c.deviceAllowed(typ, r.Major, r.Minor)
}

func compareDevices(a, b *Device) int {
	if c := strings.Compare(a.Path, b.Path); c != 0 {
		return c
	}
	if c := strings.Compare(a.Type, b.Type); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Major, b.Major); c != 0 {
		return c
	}
	return cmp.Compare(a.Minor, b.Minor)
}

func deviceNumber(d *Device) string {
	return d.Type + " " + strconv.FormatInt(d.Major, 10) + ":" + strconv.FormatInt(d.Minor, 10)
}

func cgroupRuleString(r *DeviceRule) string {
	n := func(v int64) string {
		if v < 0 {
			return "*"
		}
		return fmt.Sprint(v)
	}
	return fmt.Sprintf("%s %s:%s %s", r.Type, n(r.Major), n(r.Minor), r.Access)
}

// fixHostDevices: a pod's devices come from a device plugin
// (resources.limits), a DRA claim (resources.claims) or a CDI device; a
// privileged pod's from privileged (folded into that rule). podman: --device
// and --device-cgroup-rule.
func fixHostDevices(_ *Workload, _ *Violation, o origin) string {
	return fixFor(o, "the devices come from a device plugin (resources.limits) or a DRA claim (resources.claims): request none that the policy does not allow (rules.hostDevices.allowed)",
		"run without --device or --device-cgroup-rule for them")
}
